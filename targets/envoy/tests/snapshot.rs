//! The output for a small spec, reviewed as a snapshot: a change to what
//! the target emits shows up as a diff here. Also: the same IR gives the
//! same bytes (deterministic output).

use crate::common;

use common::*;
use gatefold_compiler::target::Options;
use gatefold_target_envoy::Layout;

const SPEC: &str = r#"
gatefold: 1
gateway: { name: small, listen: 8080 }
upstreams:
  pets: { targets: [{ url: "http://127.0.0.1:9001" }], retries: { attempts: 1 } }
consumers:
  app: { credentials: { key: { env: APP_KEY } } }
apis:
  pets:
    base-path: /pets
    upstream: pets
    policies: [{ key-auth: {} }]
    routes:
      list: { path: /, methods: [GET] }
      get: { path: "/{id}", methods: [GET], policies: [{ ip-filter: { deny: [192.0.2.0/24] } }] }
  docs:
    hosts: [docs.example.com]
    routes:
      home: { path: /, policies: [{ mock: { body: "docs\n" } }] }
"#;

#[test]
fn a_small_spec_emits_this_configuration() {
    let ir = compile(SPEC);
    let out = emit(&ir, Layout::Dynamic, &Options::default());
    for f in &out.files {
        let text = String::from_utf8(f.bytes.clone()).unwrap();
        // The resource files are compact JSON: indented here for review.
        let text = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => serde_json::to_string_pretty(&v).unwrap(),
            Err(_) => text,
        };
        insta::assert_snapshot!(f.path.as_str().replace('/', "__"), text);
    }
    let again = emit(&ir, Layout::Dynamic, &Options::default());
    assert_eq!(
        out.files.iter().map(|f| &f.bytes).collect::<Vec<_>>(),
        again.files.iter().map(|f| &f.bytes).collect::<Vec<_>>()
    );
    assert_eq!(out.manifest.entry.as_str(), "bootstrap.yaml");
    assert_eq!(
        serde_json::to_value(&out.manifest.secrets).unwrap(),
        serde_json::json!([{ "env": "APP_KEY" }])
    );
    // Secrets are read by Envoy from its environment, never written out.
    assert!(out
        .files
        .iter()
        .all(|f| !String::from_utf8_lossy(&f.bytes).contains("app-secret-value")));
}

/// A spec with a rate limit says in its bootstrap that Envoy must run with
/// one worker (the Lua counters are per worker; Envoy has no bootstrap
/// field for it, and gatefold's launcher always passes the flag).
#[test]
fn a_rate_limited_spec_asks_for_one_worker() {
    let bootstrap = |yaml: &str| {
        let out = emit(&compile(yaml), Layout::Dynamic, &Options::default());
        let f = out
            .files
            .iter()
            .find(|f| f.path.as_str() == "bootstrap.yaml");
        String::from_utf8(f.unwrap().bytes.clone()).unwrap()
    };
    let limited = SPEC.replace(
        "policies: [{ key-auth: {} }]",
        "policies: [{ key-auth: {} }, { rate-limit: { requests: 5, per: 1m, key: consumer } }]",
    );
    assert_ne!(limited, SPEC);
    assert!(bootstrap(&limited).contains("envoy --concurrency 1"));
    assert!(!bootstrap(SPEC).contains("--concurrency"));
}
