//! Language 1.1 route features: `match` conditions (the front Lua filter
//! marks the conditions that hold, route entries require the marks) and
//! `preserve-host` (`host_rewrite_header`) are carried out; the conformance
//! suite serves both (`routing/match-conditions`, `routing/preserve-host`).
//! What this target refuses in conditions is refused at compile time.

use crate::common;

use common::*;
use gatefold_compiler::target::{check_features, Feature, Target};
use gatefold_target_envoy::Envoy;

fn ir(text: &str) -> gatefold_compiler::ir::ValidIr {
    let c = gatefold_compiler::compile_str("spec.yaml", text);
    match c.ir {
        Some(ir) => ir,
        None => panic!("{}", c.render()),
    }
}

#[test]
fn match_and_preserve_host_are_carried_out() {
    assert!(Envoy::default().feature(Feature::Conditions).is_exact());
    assert!(Envoy::default().feature(Feature::PreserveHost).is_exact());
    let spec = r#"gatefold: 1
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      v2: { path: /items/*, match: { headers: { x-version: "2" } } }
      items: { path: /items/*, preserve-host: true }
"#;
    assert!(check_features(&Envoy::default(), &ir(spec)).is_empty());
}

/// A preflight meeting a cors-less conditional route's conditions is an
/// ordinary request there; Envoy's preflight entries come before the
/// route entries, so the later route's `cors` would answer it: refused.
#[test]
fn a_conditional_route_without_cors_before_one_with_cors_is_refused() {
    let spec = r#"gatefold: 1
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      beta: { path: /x, match: { headers: { x-beta: "1" } } }
      open: { path: /x, policies: [{ cors: { origins: ["*"] } }] }
"#;
    let diags = Envoy::default().spec_diagnostics(&ir(spec));
    assert!(diags.has_errors());
    let d = diags.iter().next().unwrap();
    assert_eq!(d.code, "unsupported-feature");
    assert!(d.message.contains("a.beta"), "{}", d.message);
    // With cors on the conditional route too, each preflight entry carries
    // its route's conditions: accepted.
    let both = spec.replace(
        r#"match: { headers: { x-beta: "1" } } }"#,
        r#"match: { headers: { x-beta: "1" } }, policies: [{ cors: { origins: ["*"] } }] }"#,
    );
    assert!(!Envoy::default().spec_diagnostics(&ir(&both)).has_errors());
}

#[test]
fn conditions_read_the_first_header_line_and_cannot_be_spoofed() {
    let up = Upstream::start("up");
    let gw = serve(&format!(
        r#"gatefold: 1
gateway: {{ name: t, listen: 8080 }}
upstreams: {{ up: {{ targets: [{{ url: "{}" }}] }} }}
apis:
  a:
    upstream: up
    routes:
      v2: {{ path: /items/*, policies: [{{ rewrite: {{ path: /v2 }} }}], match: {{ headers: {{ x-version: "2" }}, query: {{ "a b": "c&d" }} }} }}
      items: {{ path: /items/* }}
"#,
        up.url()
    ));
    let v2 = get(gw.addr, "/items/1?a%20b=c%26d", &[("x-version", "2")]);
    assert_eq!(v2.seen()["path"], "/v2?a%20b=c%26d");
    // The mark that a condition holds never reaches the upstream.
    let headers = v2.seen()["headers"].clone();
    assert!(
        headers
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("gatefold-cond")),
        "{headers}"
    );
    // The first line counts: Envoy's own matcher would see "2,3" and fail,
    // and "3,2" would pass a regex that tolerated the join.
    let lines = |first: &str, second: &str| {
        let r = send(
            gw.addr,
            "GET",
            "/items/1?a%20b=c%26d",
            &[("x-version", first), ("x-version", second)],
            b"",
        );
        r.seen()["path"].as_str().unwrap().to_string()
    };
    assert_eq!(lines("2", "3"), "/v2?a%20b=c%26d");
    assert_eq!(lines("3", "2"), "/items/1?a%20b=c%26d");
    // A client sending the mark itself gets nothing for it.
    let r = get(
        gw.addr,
        "/items/1",
        &[("gatefold-cond-1", "1"), ("gatefold-cond-2", "1")],
    );
    assert_eq!(r.seen()["path"], "/items/1");
}
