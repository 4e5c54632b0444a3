//! `retry` and an upstream's `retries` as Kong services' `retries`: a
//! service per upstream, timeouts and retries, so routes sharing an
//! upstream but retrying differently go through different services.

use crate::common;

use common::*;
use gatefold_compiler::ir::PolicyKind;

const SPEC: &str = r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams:
  u: { targets: [{ url: "http://127.0.0.1:9001" }], retries: { attempts: 2, on: [connect-failure] } }
  v: { targets: [{ url: "http://127.0.0.1:9002" }] }
apis:
  a:
    upstream: u
    routes:
      base: { path: /base }
      never: { path: /never, policies: [{ retry: { attempts: 0 } }] }
      more: { path: /more, policies: [{ retry: { attempts: 3, on: [connect-failure, reset, timeout, 503] } }] }
      slow: { path: /slow, policies: [{ timeout: { read: 5s } }, { retry: { attempts: 0 } }] }
  b:
    upstream: v
    routes:
      plain: { path: /plain }
      statuses: { path: /statuses, policies: [{ retry: { attempts: 3, on: [502, 503] } }] }
      twice: { path: /twice, policies: [{ retry: { attempts: 2 } }] }
"#;

fn doc() -> serde_json::Value {
    serde_yaml::from_str(&text(&emit(&compile(SPEC)))).unwrap()
}

/// Route name -> (service name, that service's retries).
fn service_of(doc: &serde_json::Value, route: &str) -> (String, u64) {
    let r = doc["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == route)
        .unwrap();
    let name = r["service"]["name"].as_str().unwrap().to_string();
    let s = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name.as_str())
        .unwrap_or_else(|| panic!("no service {name}"));
    (name, s["retries"].as_u64().unwrap())
}

#[test]
fn each_route_gets_a_service_with_its_retries() {
    let doc = doc();
    let got: Vec<(String, u64)> = [
        "a.base",
        "a.never",
        "a.more",
        "a.slow",
        "b.plain",
        "b.statuses",
        "b.twice",
    ]
    .iter()
    .map(|r| service_of(&doc, r))
    .collect();
    let want: Vec<(String, u64)> = [
        // The upstream's `retries`.
        ("u", 2),
        // `attempts: 0` replaces it entirely.
        ("u.retries-0", 0),
        ("u.retries-3", 3),
        ("u.timeout-5000ms-5000ms.retries-0", 0),
        // No retries by default (Kong's own default is 5).
        ("v", 0),
        // Only statuses: Kong cannot retry them; no retries at all.
        ("v", 0),
        ("v.retries-2", 2),
    ]
    .iter()
    .map(|(n, r)| (n.to_string(), *r))
    .collect();
    assert_eq!(got, want);
    // One service per distinct key, no more.
    assert_eq!(doc["services"].as_array().unwrap().len(), 6);
}

#[test]
fn only_retries_that_differ_are_declared() {
    let ir = compile(SPEC);
    let mut gaps: Vec<(String, Option<&str>, bool)> = gaps(&ir)
        .into_iter()
        .filter(|g| g.policy.kind == PolicyKind::Retry)
        .map(|g| (g.policy.to_string(), g.field, g.error))
        .collect();
    gaps.sort();
    assert_eq!(
        gaps,
        vec![
            ("route/a.more/retry".to_string(), Some("attempts"), false),
            ("route/a.more/retry".to_string(), Some("on"), false),
            ("route/b.statuses/retry".to_string(), Some("on"), false),
            ("route/b.twice/retry".to_string(), Some("attempts"), false),
        ]
    );
    // The upstream's `retries { attempts: 2, on: [connect-failure] }`:
    // Kong also retries resets and timeouts; a warning.
    let d = gatefold_target_kong::chain_diagnostics(&ir);
    assert!(!d.has_errors());
    let messages: Vec<&str> = d.iter().map(|x| x.message.as_str()).collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains("`retries` of upstream `u`"),
        "{messages:?}"
    );
}
