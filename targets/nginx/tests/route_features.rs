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
