//! Language 1.1 route features (`match`, `preserve-host`) are carried out
//! exactly (Lua condition flags in the dispatch maps; `$http_host`), so a
//! spec using them has no feature gap. Their behaviour over real nginx is
//! the conformance suite's `routing/match-conditions` and
//! `routing/preserve-host`.

use gatefold_compiler::target::{check_features, feature_diagnostics, Feature, Target};
use gatefold_target_nginx::Nginx;

const SPEC: &str = r#"gatefold: 1
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      v2: { path: /items/*, match: { headers: { x-version: "2" } } }
      items: { path: /items/*, preserve-host: true }
      other: { path: /other }
"#;

fn compile(text: &str) -> gatefold_compiler::ir::ValidIr {
    let c = gatefold_compiler::compile_str("spec.yaml", text);
    match c.ir {
        Some(ir) => ir,
        None => panic!("{}", c.render()),
    }
}

#[test]
fn match_and_preserve_host_are_carried_out() {
    assert!(Nginx::default().feature(Feature::Conditions).is_exact());
    assert!(Nginx::default().feature(Feature::PreserveHost).is_exact());
    let ir = compile(SPEC);
    let gaps = check_features(&Nginx::default(), &ir);
    assert!(gaps.is_empty(), "{gaps:?}");
    assert!(!feature_diagnostics(&gaps, &ir).has_errors());
}

#[test]
fn specs_without_them_have_no_feature_gap() {
    let plain = SPEC
        .replace(
            r#", match: { headers: { x-version: "2" } }"#,
            ", methods: [GET]",
        )
        .replace(", preserve-host: true", ", methods: [POST]");
    assert!(check_features(&Nginx::default(), &compile(&plain)).is_empty());
}

/// nginx drops header lines whose name holds `_` (ignore_invalid_headers):
/// a condition on one could never hold, so it is refused at its route.
#[test]
fn a_header_condition_with_an_underscore_is_refused() {
    let spec = SPEC.replace("x-version", "x_version");
    let ir = compile(&spec);
    let diags = Nginx::default().spec_diagnostics(&ir);
    assert!(diags.has_errors());
    let d = diags.iter().next().unwrap();
    assert_eq!(d.code, "unsupported-feature");
    assert!(
        d.message.contains("x_version") && d.message.contains("a.v2"),
        "{}",
        d.message
    );
    assert!(d.span.is_some());
    assert!(!Nginx::default()
        .spec_diagnostics(&compile(SPEC))
        .has_errors());
}

/// Every other place a spec reads a request header by name is refused the
/// same way when the name holds `_`, at that place: the key of `key-auth`
/// (never found: every request 401), a rate-limit key and a balance hash
/// (every request would count as one client), a script's `req.header()`
/// with the name written as a string (always `null`).
#[test]
fn every_header_read_with_an_underscore_is_refused_where_it_is_named() {
    let spec = r#"gatefold: 1
upstreams:
  u: { targets: [{ url: "http://127.0.0.1:9001" }], balance: hash-header:x_user }
consumers:
  c: { credentials: { key: { env: K } } }
apis:
  a:
    upstream: u
    policies:
      - key-auth: { in: header, name: x_api_key }
      - rate-limit: { requests: 3, per: 1m, key: header:x_tenant }
      - script:
          request: |
            if (req.query("q") !== null) { req.setHeader("x-seen", req.header("X_Seen") ?? "none"); }
    routes:
      r: { path: /r }
"#;
    let ir = compile(spec);
    let diags = Nginx::default().spec_diagnostics(&ir);
    let messages: Vec<String> = diags.iter().map(|d| d.message.clone()).collect();
    assert_eq!(messages.len(), 4, "{messages:#?}");
    for (name, place) in [
        ("x_api_key", "the key of policy"),
        ("x_tenant", "the key of policy"),
        ("x_user", "upstream `u`"),
        ("x_seen", "`req.header()` in policy"),
    ] {
        assert!(
            messages
                .iter()
                .any(|m| m.contains(&format!("`{name}`")) && m.contains(place)),
            "{name}: {messages:#?}"
        );
    }
    assert!(diags.iter().all(|d| d.span.is_some()));
    let dashed = spec.replace('_', "-");
    let left: Vec<String> = Nginx::default()
        .spec_diagnostics(&compile(&dashed))
        .iter()
        .map(|d| d.message.clone())
        .collect();
    assert!(left.is_empty(), "{left:#?}");
}
