//! Language 1.1 route features this target does not carry out yet (`match`)
//! are refused at compile time, never ignored: a route whose conditions
//! were dropped would take requests meant for another. `preserve-host` is
//! carried out (`host_rewrite_header`; served in the conformance suite).

use gatefold_compiler::target::{check_features, feature_diagnostics, Feature, Target};
use gatefold_target_envoy::Envoy;

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
fn match_is_refused_and_preserve_host_is_not() {
    assert!(!Envoy::default().feature(Feature::Conditions).is_exact());
    assert!(Envoy::default().feature(Feature::PreserveHost).is_exact());
    let ir = compile(SPEC);
    let gaps = check_features(&Envoy::default(), &ir);
    let found: Vec<(Feature, Vec<String>)> = gaps
        .iter()
        .map(|g| (g.feature, g.routes.iter().map(|r| r.to_string()).collect()))
        .collect();
    assert_eq!(found, [(Feature::Conditions, vec!["a.v2".to_string()])]);
    let diags = feature_diagnostics(&gaps, &ir);
    assert!(diags.has_errors());
    assert!(diags
        .iter()
        .all(|d| d.code == "unsupported-feature" && d.span.is_some()));
}

#[test]
fn specs_without_them_have_no_feature_gap() {
    let plain = SPEC
        .replace(
            r#", match: { headers: { x-version: "2" } }"#,
            ", methods: [GET]",
        )
        .replace(", preserve-host: true", ", methods: [POST]");
    assert!(check_features(&Envoy::default(), &compile(&plain)).is_empty());
}
