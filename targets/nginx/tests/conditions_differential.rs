//! `match` conditions (language 1.1) choose the same route on nginx as on
//! the reference gateway: the same requests (header lines repeated, in
//! other cases, with spaces; query parameters repeated, percent-encoded,
//! with `+`, broken escapes, without `=`) sent to both over real sockets
//! get the same answer.

use crate::common;

use common::*;
use gatefold_compiler::target::{Options, Target};
use gatefold_runtime::launch::{Launch, Launched};

const SPEC: &str = r#"
gatefold: 1
apis:
  main:
    routes:
      plain: { path: /r, policies: [{ mock: { status: 200, body: plain } }] }
      v2: { path: /r, match: { headers: { x-version: "2" } }, policies: [{ mock: { status: 200, body: v2 } }] }
      v2-tenant:
        path: /r
        match: { headers: { x-version: "2", x-tenant: "a b" } }
        policies: [{ mock: { status: 200, body: v2-tenant } }]
      json: { path: /r, match: { query: { format: json } }, policies: [{ mock: { status: 200, body: json } }] }
      debug: { path: /r, match: { query: { debug: "" } }, policies: [{ mock: { status: 200, body: debug } }] }
      odd: { path: /r, match: { query: { "a b": "1+1", "p%": "100%" } }, policies: [{ mock: { status: 200, body: odd } }] }
      only-get: { path: /g, methods: [GET], match: { headers: { x-on: "1" } }, policies: [{ mock: { status: 200, body: g } }] }
      post: { path: /g, methods: [POST], policies: [{ mock: { status: 200, body: p } }] }
      lone: { path: /lone, match: { query: { flag: "1" } }, policies: [{ mock: { status: 200, body: lone } }] }
"#;

#[test]
fn conditions_choose_as_the_reference_does() {
    let ir = compile(SPEC);
    let ng = run(&ir, &[]);
    let work = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let output = gatefold_target_reference::Reference.emit(
        &ir,
        &Options {
            listen: Some(listen),
            ..Options::default()
        },
    );
    let launch = Launch::new(
        gatefold_compiler::ir::TargetKind::Reference,
        work.path(),
        listen,
    );
    let reference = Launched::start(launch, &output).unwrap();
    let headers: &[&[(&str, &str)]] = &[
        &[],
        &[("x-version", "2")],
        &[("X-Version", "2")],
        &[("x-version", "2 ")],
        &[("x-version", "20")],
        &[("x-version", "1"), ("x-version", "2")],
        &[("x-version", "2"), ("x-version", "1")],
        &[("x-version", "2"), ("x-tenant", "a b")],
        &[("x-version", "2"), ("x-tenant", "a  b")],
        &[("x-on", "1")],
    ];
    let targets = [
        "/r",
        "/r?format=json",
        "/r?format=%6Ason",
        "/r?format=%6ason",
        "/r?format=xml&format=json",
        "/r?%66ormat=json",
        "/r?format=json%",
        "/r?debug",
        "/r?debug=",
        "/r?debug=0",
        "/r?a%20b=1%2B1&p%25=100%25",
        "/r?a+b=1+1&p%=100%",
        "/r?a%20b=1+1&p%=100%",
        "/r?",
        "/r?&&format=json",
        "/g",
        "/lone",
        "/lone?flag=1",
    ];
    let mut differ = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for h in headers {
        for t in targets {
            for method in ["GET", "POST"] {
                let ask = |addr| {
                    let r = request(addr, method, t, h, b"");
                    (r.status, r.header("allow").map(str::to_string), r.body)
                };
                let want = ask(reference.listen());
                let got = ask(ng.addr);
                seen.insert(if want.0 == 200 {
                    want.2.clone()
                } else {
                    want.0.to_string()
                });
                if want != got {
                    differ.push(format!(
                        "{method} {t} {h:?}: reference {want:?}, nginx {got:?}"
                    ));
                }
            }
        }
    }
    reference.stop().unwrap();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    // Every route won somewhere, and 404 and 405 were answered.
    for body in [
        "plain",
        "v2",
        "v2-tenant",
        "json",
        "debug",
        "odd",
        "g",
        "p",
        "404",
        "405",
    ] {
        assert!(seen.contains(body), "{body} never answered: {seen:?}");
    }
}
