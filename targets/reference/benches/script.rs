//! Evaluation of a typical script: the `tenant-routing` script of
//! `../shared/design/scripts.md` (also in `examples/kitchen-sink`), both
//! sides, on a request that carries `x-version: 2` and `?tenant=Acme`, as
//! the reference gateway runs it (`script::run` over a host reading an
//! `http::HeaderMap`, the query decoded as the gateway decodes it).
//!
//! Goal (issue 12): at most 2 µs per request of evaluation.
//!
//! Run: `cargo bench -p gatefold-target-reference --bench script`.
//! Instruction counts: build with `--no-run`, then
//! `valgrind --tool=callgrind BIN callgrind 10000` (each side's evaluation
//! in its own function, for `callgrind_annotate --inclusive=yes`).

use criterion::Criterion;
use gatefold_compiler::ir::policy::Policy;
use gatefold_compiler::ir::script::{Program, ReqField, Side};
use gatefold_target_reference::gateway::policies::script::query_param;
use gatefold_target_reference::script::{run, Host, Outcome, Vars};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::hint::black_box;
use std::time::Duration;

const SPEC: &str = r#"
gatefold: 1
upstreams:
  app: { targets: [{ url: "http://127.0.0.1:9001" }] }
apis:
  reports:
    upstream: app
    routes:
      all:
        path: /*
        policies:
          - script:
              request: |
                const v = req.header("x-version");
                if (v === "2") { req.setHeader("x-upstream-version", "2"); }
                const tenant = req.query("tenant");
                if (!tenant) { return respond(400, { error: "tenant required" }); }
                ctx.tenant = tenant.toLowerCase();
              response: |
                res.setHeader("x-tenant", ctx.tenant ?? "none");
                if (res.status >= 500) { res.setHeader("cache-control", "no-store"); }
"#;

/// One message as the gateway holds it.
struct Message {
    headers: HeaderMap,
    query: Option<String>,
    status: u16,
}

impl Host for Message {
    fn req_field(&self, field: ReqField) -> Option<String> {
        match field {
            ReqField::Method => Some("GET".into()),
            ReqField::Path => Some("/reports/daily".into()),
            ReqField::Ip => Some("127.0.0.1".into()),
            ReqField::Consumer => None,
        }
    }
    fn status(&self) -> u16 {
        self.status
    }
    fn header(&self, _side: Side, name: &str) -> Option<String> {
        let mut values = self.headers.get_all(name).iter();
        let first = values.next()?;
        let mut out = String::from_utf8_lossy(first.as_bytes()).into_owned();
        for v in values {
            out.push_str(", ");
            out.push_str(&String::from_utf8_lossy(v.as_bytes()));
        }
        Some(out)
    }
    fn query(&self, name: &str) -> Option<String> {
        query_param(self.query.as_deref()?, name)
    }
    fn set_header(&mut self, _side: Side, name: &str, value: &str) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.insert(n, v);
        }
    }
    fn remove_header(&mut self, _side: Side, name: &str) {
        self.headers.remove(name);
    }
    fn set_path(&mut self, _path: &str) {}
    fn log(&mut self, _message: &str) {}
}

fn programs() -> (Program, Program) {
    let compiled = gatefold_compiler::compile_str("bench.yaml", SPEC);
    let Some(ir) = compiled.ir.as_ref() else {
        panic!("{}", compiled.render())
    };
    let script = ir
        .policies
        .values()
        .find_map(|i| match &i.policy {
            Policy::Script(s) => Some(s.clone()),
            _ => None,
        })
        .expect("the spec's script");
    (
        script.request.expect("a request side"),
        script.response.expect("a response side"),
    )
}

fn request() -> Message {
    let mut headers = HeaderMap::new();
    for (n, v) in [
        ("host", "api.example.com"),
        ("user-agent", "bench/1.0"),
        ("accept", "application/json"),
        ("x-version", "2"),
    ] {
        headers.insert(n, HeaderValue::from_static(v));
    }
    Message {
        headers,
        query: Some("tenant=Acme&day=2026-11-30".into()),
        status: 0,
    }
}

fn response() -> Message {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("content-length", HeaderValue::from_static("42"));
    Message {
        headers,
        query: None,
        status: 200,
    }
}

/// Both sides of one request: the request script, then the response
/// script with the `ctx` it left.
#[inline(never)]
fn both(req: &Program, resp: &Program, rq: &mut Message, rs: &mut Message) {
    let mut vars = Vars::new();
    let out = run(req, rq, &mut vars).expect("the request side runs");
    assert_eq!(out, Outcome::Continue);
    run(resp, rs, &mut vars).expect("the response side runs");
    black_box(&vars);
}

fn main() {
    let (req, resp) = programs();
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    if args.next().as_deref() == Some("callgrind") {
        let n: usize = args.next().map_or(10_000, |n| n.parse().expect("a count"));
        for _ in 0..n {
            let (mut rq, mut rs) = (request(), response());
            both(&req, &resp, &mut rq, &mut rs);
        }
        return;
    }
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3));
    c.bench_function("script/tenant-routing (request + response)", |b| {
        b.iter_batched_ref(
            || (request(), response()),
            |(rq, rs)| both(&req, &resp, rq, rs),
            criterion::BatchSize::SmallInput,
        )
    });
    c.final_summary();
}
