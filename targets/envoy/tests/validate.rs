//! Every generated configuration passes `envoy --mode validate` with
//! unknown fields rejected: the bootstrap, and (as the runtime does) its
//! LDS/CDS resources placed in `static_resources`; the static layout too.

use crate::common;

use common::*;
use gatefold_compiler::target::Options;
use gatefold_target_envoy::Layout;

fn validate(ir: &gatefold_compiler::ir::ValidIr) {
    let envoy = envoy();
    for layout in [Layout::Dynamic, Layout::Static] {
        let out = emit(ir, layout, &Options::default());
        let dir = Scratch::new("validate");
        if let Err(e) = envoy.check(&dir.0, &config(&out)) {
            panic!("{layout:?} output rejected: {e}");
        }
    }
}

fn example(name: &str) -> gatefold_compiler::ir::ValidIr {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    let compiled = gatefold_compiler::compile_path(&path);
    match compiled.ir {
        Some(ir) => ir,
        None => panic!("{name}: {}", compiled.render()),
    }
}

#[test]
fn examples_validate() {
    for name in ["quickstart", "petstore"] {
        validate(&example(name));
    }
}

/// kitchen-sink compiles, validates and serves on Envoy as written, its
/// tenant-routing script included. Its `reporting` upstream,
/// `reports.internal.example`, resolves nowhere: Envoy resolves it at run
/// time (the cluster is left without a host), starts, and the reports
/// route answers 502 as for any unreachable upstream.
#[test]
fn kitchen_sink_validates() {
    let examples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kitchen-sink");
    let dir = Scratch::new("kitchen-sink");
    std::fs::create_dir_all(dir.0.join("keys")).unwrap();
    // The example's key file, with this crate's test key in it: the
    // example's private key is nowhere, and the reports route needs a
    // token it verifies.
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys/rs256-public.pem"),
        dir.0.join("keys/jwt-rs256.pub"),
    )
    .unwrap();
    let text = std::fs::read_to_string(examples.join("gatefold.yaml")).unwrap();
    assert!(
        text.contains("url: https://reports.internal.example:8443"),
        "kitchen-sink no longer names that upstream"
    );
    assert!(
        text.contains("policies: [tenant-routing]"),
        "the script is kept"
    );
    std::fs::write(dir.0.join("gatefold.yaml"), &text).unwrap();
    let compiled = gatefold_compiler::compile_path(&dir.0.join("gatefold.yaml"));
    let Some(ir) = compiled.ir else {
        panic!("{}", compiled.render())
    };
    validate(&ir);
    // And it serves: a route answering itself, from anywhere (its
    // `disable: [ip-filter]`), the JSON 404, and the scripted reports
    // route, whose service token is checked before its script runs and
    // whose upstream is then found unreachable.
    let gw = serve_ir(&ir);
    let health = get(gw.addr, "/healthz", &[]);
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), serde_json::json!({ "status": "ok" }));
    let none = get(gw.addr, "/no/such/route", &[]);
    assert_eq!(
        (none.status, none.json()),
        (404, serde_json::json!({ "error": "no route" }))
    );
    let reports = "/reports/daily?tenant=acme";
    let host = ("host", "reports.example.com");
    let anonymous = get(gw.addr, reports, &[host]);
    assert_eq!(
        (anonymous.status, anonymous.json()),
        (401, serde_json::json!({ "error": "unauthorized" }))
    );
    let bearer = format!("Bearer {}", service_token());
    let unreachable = get(gw.addr, reports, &[host, ("authorization", &bearer)]);
    assert_eq!(
        (unreachable.status, unreachable.json()),
        (502, serde_json::json!({ "error": "bad gateway" }))
    );
}

/// A token kitchen-sink's `service-token` accepts (signed with the key
/// the test puts in its key file), naming the `nightly-reports` consumer.
fn service_token() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": "https://auth.example.com/",
        "aud": "kitchen-sink",
        "sub": "nightly-reports",
        "tenant": "acme",
        "exp": now + 600,
    });
    let pem = include_bytes!("../../reference/tests/keys/rs256-private.pem");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem).unwrap();
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// One spec per kind Envoy carries, each on a route of its own.
#[test]
fn every_supported_kind_validates() {
    validate(&compile(POLICIES));
}

pub const POLICIES: &str = r#"
gatefold: 1
gateway: { name: kinds, listen: 8080 }
upstreams:
  a:
    targets: [{ url: "http://127.0.0.1:9001", weight: 2 }, { url: "http://localhost:9002" }]
    balance: least-request
    health: { path: /healthz, interval: 5s, timeout: 1s }
    retries: { attempts: 2, on: [connect-failure, 503, timeout] }
  b:
    targets: [{ url: "https://example.com" }]
    balance: hash-header:x-user
consumers:
  alice: { groups: [staff], credentials: { key: { env: ALICE_KEY }, basic: { user: alice, password: { env: ALICE_PW } } } }
apis:
  hosted:
    hosts: [api.example.com, "*.example.org"]
    upstream: a
    routes:
      only: { path: /only, methods: [GET] }
      rewrite: { path: "/rw/{id}", policies: [{ rewrite: { path: "/items/{id}" } }] }
  main:
    upstream: a
    base-path: /m
    strip-base-path: true
    routes:
      ip: { path: /ip, policies: [{ ip-filter: { allow: [10.0.0.0/8, "::1"], deny: [10.9.9.9] } }] }
      cors: { path: /cors, methods: [GET, POST], policies: [{ cors: { origins: [https://app.example], credentials: true, max-age: 10m, expose: [x-a] } }] }
      size: { path: /size, policies: [{ request-size-limit: { max: 10KiB } }] }
      key: { path: /key, policies: [{ key-auth: { in: query, name: k } }] }
      basic: { path: /basic, policies: [{ basic-auth: { realm: staff } }, { acl: { allow: [staff] } }] }
      rate: { path: /rate, policies: [{ key-auth: {} }, { rate-limit: { requests: 3, per: 1m, key: consumer } }] }
      dep: { path: /dep, policies: [{ deprecation: { since: "2025-01-01", sunset: "2026-06-30", link: "https://docs.example/x" } }] }
      mock: { path: /mock, policies: [{ mock: { status: 418, headers: { x-m: "1" }, body: "tea\n" } }] }
      redirect: { path: "/r/{id}", policies: [{ redirect: { to: "https://new.example:8443/items/{id}", status: 308 } }] }
      headers: { path: /h, policies: [{ request-headers: { set: { host: up.example, x-a: "1" }, add: { x-b: "2" }, remove: [x-c] } }, { response-headers: { set: { x-d: "3" }, remove: [x-powered-by] } }] }
      timeout: { path: /t, methods: [GET, POST], policies: [{ timeout: { connect: 1s, read: 1500ms } }, { retry: { attempts: 1, on: [timeout, 502] } }] }
      split: { path: /split/*, policies: [{ traffic-split: { to: [{ upstream: a, weight: 9 }, { upstream: b, weight: 1 }] } }] }
"#;

/// Every Lua source the script filter carries (its default, each route's
/// scripts): `"source_code"` / `"default_source_code"` inline strings of
/// the script filter's configs, found anywhere in a parsed file.
fn script_sources(v: &serde_yaml::Value, out: &mut Vec<String>) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, v) in m {
                if k.as_str() == Some("source_code") {
                    if let Some(s) = v.get("inline_string").and_then(|s| s.as_str()) {
                        out.push(s.to_string());
                    }
                }
                script_sources(v, out);
            }
        }
        serde_yaml::Value::Sequence(s) => s.iter().for_each(|v| script_sources(v, out)),
        _ => {}
    }
}

/// examples/scripts (five scripts, both sides) validates, and each route's
/// script source is Lua that LuaJIT compiles (`luajit -bl`).
#[test]
fn scripts_validate_and_compile_as_lua() {
    let ir = example("scripts");
    validate(&ir);
    let out = emit(&ir, Layout::Static, &Options::default());
    let mut sources = Vec::new();
    for f in &out.files {
        if let Ok(v) = serde_yaml::from_slice::<serde_yaml::Value>(&f.bytes) {
            script_sources(&v, &mut sources);
        }
    }
    let scripts: Vec<_> = sources
        .iter()
        .filter(|s| s.contains("gatefold: the script of this route"))
        .collect();
    assert!(
        scripts.len() >= 5,
        "one source per route with a script, found {}",
        scripts.len()
    );
    let luajit = gatefold_runtime::Luajit::locate().unwrap();
    let dir = Scratch::new("scripts-lua");
    for (i, s) in scripts.iter().enumerate() {
        let path = dir.0.join(format!("route-{i}.lua"));
        std::fs::write(&path, s).unwrap();
        luajit
            .check(&path)
            .unwrap_or_else(|e| panic!("route source {i}: {e}\n{s}"));
    }
}
