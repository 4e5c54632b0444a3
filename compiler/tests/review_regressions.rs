//! Regressions from the compiler review: each test pins one fixed bug.
//! Diagnostics that a user sees are snapshotted in `bad-specs/` instead;
//! these cover what a snapshot cannot (speed, hashes, the IR itself).

use gatefold_compiler::compile_str;

fn codes(text: &str) -> Vec<&'static str> {
    let c = compile_str("review.yaml", text);
    c.diagnostics.iter().map(|d| d.code).collect()
}

fn compiles(text: &str) -> gatefold_compiler::ir::ValidIr {
    let c = compile_str("review.yaml", text);
    match c.ir {
        Some(ir) => ir,
        None => panic!("does not compile:\n{}", c.render()),
    }
}

/// Bundles that each include the previous one twice: 2^levels copies of one
/// policy. Expansion stops once a level holds more steps than there are
/// policy kinds, so this returns at once instead of expanding 2^40 steps.
#[test]
fn a_bundle_bomb_stops_at_the_kind_bound() {
    let mut text = String::from("gatefold: 1\npolicies:\n  b0: { cors: { origins: [\"*\"] } }\n");
    for i in 1..=40 {
        text.push_str(&format!("  b{i}: [b{p}, b{p}]\n", p = i - 1));
    }
    text.push_str(
        "gateway: { policies: [b40] }\napis:\n  a:\n    routes:\n      r: { path: /, policies: [{ mock: {} }] }\n",
    );
    let found = codes(&text);
    assert_eq!(
        found.iter().filter(|c| **c == "bundle-too-large").count(),
        1,
        "{found:?}"
    );
    // The repeated kind is reported once, not once per copy.
    assert_eq!(
        found
            .iter()
            .filter(|c| **c == "duplicate-policy-kind")
            .count(),
        1,
        "{found:?}"
    );
}

/// The IR names spec files from the spec's root, not as the path was typed.
#[test]
fn the_ir_does_not_depend_on_how_the_spec_path_is_typed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let plain = root.join("examples/petstore");
    let dotted = root.join("./examples/../examples/petstore/");
    let a = gatefold_compiler::compile_path(&plain)
        .ir
        .expect("compiles");
    let b = gatefold_compiler::compile_path(&dotted)
        .ir
        .expect("compiles");
    assert_eq!(a.sources.files, ["gatefold.yaml"]);
    assert_eq!(a.to_json(), b.to_json());
    let file = gatefold_compiler::compile_path(&plain.join("gatefold.yaml"))
        .ir
        .expect("compiles");
    assert_eq!(file.to_json(), a.to_json());
}

/// A rate limit's counters belong to where it is attached; that is meaning,
/// so it is in the IR (and its hash), not only in the source map.
#[test]
fn rate_limit_scope_is_in_the_ir() {
    use gatefold_compiler::ir::policy::{Policy, RateScope};
    use gatefold_compiler::ir::PolicyKind;
    let scopes = |ir: &gatefold_compiler::ir::ValidIr| -> Vec<(String, RateScope)> {
        ir.routes
            .iter()
            .map(|r| match r.policy(PolicyKind::RateLimit) {
                Some(Policy::RateLimit(l)) => (r.id.to_string(), l.scope.clone()),
                _ => panic!("{} has no rate limit", r.id),
            })
            .collect()
    };
    let route = |s: &str| RateScope::Route(s.parse().unwrap());
    // One limit at the gateway: both routes count together.
    let shared = compiles(
        "gatefold: 1
gateway:
  policies: [{ rate-limit: { requests: 10, per: 1m } }]
apis:
  a:
    routes:
      x: { path: /x, policies: [{ mock: {} }] }
      y: { path: /y, policies: [{ mock: {} }] }
",
    );
    assert_eq!(
        scopes(&shared),
        [
            ("a.x".to_string(), RateScope::Gateway),
            ("a.y".to_string(), RateScope::Gateway)
        ]
    );
    // The same limit on each route: each counts alone.
    let apart = compiles(
        "gatefold: 1
apis:
  a:
    routes:
      x: { path: /x, policies: [{ mock: {} }, { rate-limit: { requests: 10, per: 1m } }] }
      y: { path: /y, policies: [{ mock: {} }, { rate-limit: { requests: 10, per: 1m } }] }
",
    );
    assert_eq!(
        scopes(&apart),
        [
            ("a.x".to_string(), route("a.x")),
            ("a.y".to_string(), route("a.y"))
        ]
    );
    assert_ne!(shared.hash, apart.hash);
    // A named policy attached to two apis counts per api.
    let named = compiles(
        "gatefold: 1
policies:
  limit: { rate-limit: { requests: 10, per: 1m } }
apis:
  a:
    policies: [limit, { mock: {} }]
    routes:
      x: { path: /x }
  b:
    policies: [limit, { mock: {} }]
    routes:
      x: { path: /b/x }
",
    );
    let found = scopes(&named);
    assert!(found.contains(&("a.x".to_string(), RateScope::Api("a".parse().unwrap()))));
    assert!(found.contains(&("b.x".to_string(), RateScope::Api("b".parse().unwrap()))));
}
