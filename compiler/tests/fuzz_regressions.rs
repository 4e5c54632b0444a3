//! Inputs found by fuzzing and by hand while hardening the front end, kept
//! so that they stay fixed. Each must compile (to an IR or to diagnostics)
//! without panicking, and the YAML-level ones must be refused with the right
//! code.

use gatefold_compiler::compile_str;
use std::sync::mpsc;
use std::time::Duration;

/// Generous bound for inputs that were once slow (seconds to minutes) and
/// now take milliseconds: a busy machine stays far below it, and a
/// regression fails here instead of hanging the suite.
const QUICKLY: Duration = Duration::from_secs(20);

/// Runs `f` on its own thread and fails if it does not finish within [`QUICKLY`].
fn quickly<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    // The default thread stack, as the test threads have: a deep recursion
    // must still overflow here.
    std::thread::Builder::new()
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn");
    match rx.recv_timeout(QUICKLY) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} took longer than {QUICKLY:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

/// Compiles `text` and exercises everything a CLI run would (rendering the
/// diagnostics, writing the IR); returns the diagnostic codes.
fn codes(text: &str) -> Vec<&'static str> {
    let c = compile_str("regression.yaml", text);
    let _ = c.render();
    let _ = c.diagnostics.to_json(&c.sources);
    if let Some(ir) = &c.ir {
        let _ = ir.to_json();
    }
    c.diagnostics.iter().map(|d| d.code).collect()
}

/// "Billion laughs": ten levels of ten aliases, 10^10 nodes if expanded.
fn billion_laughs() -> String {
    let mut text = String::from(
        "gatefold: 1\nlol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*lol{}", i - 1); 10].join(", ");
        text.push_str(&format!("lol{i}: &lol{i} [{refs}]\n"));
    }
    text
}

#[test]
fn billion_laughs_is_refused_as_an_alias_bomb() {
    assert_eq!(codes(&billion_laughs()), ["yaml-alias-bomb"]);
}

#[test]
fn alias_bomb_through_merge_keys_is_refused() {
    // Each level merges the previous one twice under new keys: the
    // mappings double in size at every level.
    let mut text = String::from("gatefold: 1\nm0: &m0 { a: 1, b: 2, c: 3, d: 4 }\n");
    for i in 1..40 {
        let p = i - 1;
        text.push_str(&format!(
            "m{i}: &m{i} {{ x{i}: *m{p}, y{i}: *m{p}, <<: *m{p} }}\n"
        ));
    }
    assert_eq!(codes(&text), ["yaml-alias-bomb"]);
}

#[test]
fn aliases_may_not_nest_deeper_than_the_depth_limit() {
    // Each anchor wraps the previous one in 60 more lists: without a depth
    // check on aliases, the tree grows deep enough to overflow the stack in
    // the recursive clone, drop and decode code.
    let mut text = format!(
        "gatefold: 1\na0: &a0 {}x{}\n",
        "[".repeat(60),
        "]".repeat(60)
    );
    for k in 1..200 {
        text.push_str(&format!(
            "a{k}: &a{k} {}*a{}{}\n",
            "[".repeat(59),
            k - 1,
            "]".repeat(59)
        ));
    }
    assert_eq!(codes(&text), ["yaml-too-deep"]);
}

#[test]
fn deep_nesting_is_refused() {
    let text = format!("gatefold: 1\nx: {}1{}\n", "[".repeat(200), "]".repeat(200));
    assert_eq!(codes(&text), ["yaml-too-deep"]);
    let mut block = String::from("gatefold: 1\n");
    for depth in 0..100 {
        block.push_str(&format!("{}k{depth}:\n", " ".repeat(depth)));
    }
    assert_eq!(codes(&block), ["yaml-too-deep"]);
    // Past 255 flow levels the parser itself gives up, with a syntax error.
    let text = format!(
        "gatefold: 1\nx: {}1{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(codes(&text), ["yaml-syntax"]);
}

#[test]
fn a_huge_mapping_loads_quickly() {
    // 50k keys: duplicate-key checks were quadratic (seconds); now hashed.
    let mut text = String::from("gatefold: 1\nupstreams:\n");
    for i in 0..50_000 {
        text.push_str(&format!(
            "  u{i}: {{ targets: [{{ url: http://127.0.0.1:1 }}] }}\n"
        ));
    }
    text.push_str("  u49999: {}\n");
    let codes = quickly("a 50,000-key mapping", move || codes(&text));
    assert_eq!(codes, ["duplicate-key"]);
}

#[test]
fn wide_merges_are_refused_quickly() {
    // 400 mappings each merging a 1000-key mapping twice: the merge was
    // quadratic in the merged keys.
    let keys: Vec<String> = (0..1000).map(|i| format!("k{i}: 1")).collect();
    let mut text = format!("gatefold: 1\nbase: &a {{ {} }}\nx:\n", keys.join(", "));
    for j in 0..400 {
        text.push_str(&format!("  y{j}: {{ <<: [*a, *a] }}\n"));
    }
    let codes = quickly("400 wide merges", move || codes(&text));
    assert_eq!(codes, ["yaml-alias-bomb"]);
}

/// Odd but small YAML: each gets the outcome documented for it (the codes
/// of its diagnostics; none when the spec is valid), not only "no panic".
#[test]
fn odd_yaml_gets_its_documented_outcome() {
    let table: &[(&str, &[&str])] = &[
        ("", &["empty-spec"]),
        ("\u{feff}", &["empty-spec"]),
        ("\0", &["yaml-syntax"]),
        ("gatefold: 1\n\r\r\r", &[]),
        ("gatefold: 1\r\napis: {a: {routes: {r: {path: /}}}}\r\n", &["no-upstream"]),
        ("? [a]\n: 1\n", &["yaml-complex-key"]),
        ("? { a: 1 }\n: 1\n", &["yaml-complex-key"]),
        ("*a", &["yaml-syntax"]),
        ("&a [*a]", &["yaml-unknown-alias"]),
        ("--- 1\n--- 2\n", &["yaml-multiple-documents"]),
        ("%YAML 1.2\n%YAML 1.2\n---\n", &["yaml-syntax"]),
        ("gatefold: !!binary aGVsbG8=\n", &["unsupported-version"]),
        ("gatefold: 1\n<<: [1, 2]\n", &["yaml-bad-merge"]),
        ("gatefold: 1\n<<: *nope\n", &["yaml-syntax"]),
        ("gatefold: 1\n<<: { gatefold: 2 }\n", &[]),
        ("gatefold: 0x7fffffffffffffff\n", &["unsupported-version"]),
        ("gatefold: 99999999999999999999999\n", &["unsupported-version"]),
        ("gatefold: .nan\n", &["unsupported-version"]),
        ("gatefold: 1\ngateway: { listen: -1 }\n", &["out-of-range"]),
        ("gatefold: 1\ngateway: { listen: 65536 }\n", &["out-of-range"]),
        ("gatefold: 1\napis: { a: { base-path: \"/é\", routes: { r: { path: \"/{é}\" } } } }\n", &["invalid-path"]),
        ("gatefold: 1\napis: { a: { routes: { r: { path: \"/{a}/{a}\" } } } }\n", &["invalid-path"]),
        ("gatefold: 1\napis: { a: { routes: { r: { path: \"/*/*\" } } } }\n", &["invalid-path"]),
        ("gatefold: 1\npolicies: { p: { deprecation: { since: \"é2024-01\" } } }\n", &["invalid-date"]),
        ("gatefold: 1\npolicies: { p: { deprecation: { since: \"2024-é-01\" } } }\n", &["invalid-date"]),
        ("gatefold: 1\npolicies: { p: { timeout: { connect: 18446744073709551615ms } } }\n", &["invalid-duration"]),
        ("gatefold: 1\npolicies: { p: { request-size-limit: { max: 18446744073709551615GiB } } }\n", &["invalid-size"]),
        ("gatefold: 1\nupstreams: { u: { targets: [{ url: \"http://[::1\" }] } }\n", &["invalid-url"]),
        ("gatefold: 1\nupstreams: { u: { targets: [{ url: \"http://é:80\" }] } }\n", &["invalid-url"]),
        ("gatefold: 1\nupstreams: { u: { targets: [{ url: \"http://a:99999\" }] } }\n", &["invalid-url"]),
    ];
    let wrong: Vec<String> = table
        .iter()
        .filter_map(|(text, expected)| {
            let got = codes(text);
            (got != *expected).then(|| format!("{text:?}: expected {expected:?}, got {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Nests `levels` bundles, each including the previous one twice: 2^levels
/// policies once expanded, from a spec of `levels` lines.
fn bundle_bomb(levels: usize) -> String {
    let mut text = String::from(
        "gatefold: 1\nupstreams:\n  u: { targets: [{ url: http://127.0.0.1:1 }] }\n\
         policies:\n  p0: { cors: { origins: [\"*\"] } }\n  b0: [p0]\n",
    );
    for i in 1..=levels {
        let p = i - 1;
        text.push_str(&format!("  b{i}: [b{p}, b{p}]\n"));
    }
    text.push_str(&format!(
        "apis:\n  a:\n    upstream: u\n    routes:\n      r: {{ path: /, policies: [b{levels}] }}\n"
    ));
    text
}

#[test]
fn a_small_bundle_bomb_is_an_error() {
    // 2^8 copies of one policy at one level: the same kind twice.
    assert!(codes(&bundle_bomb(8)).contains(&"duplicate-policy-kind"));
}

#[test]
fn a_bundle_bomb_is_refused_quickly() {
    // 2^40 policies once expanded: only a walk that visits each bundle once
    // per level finishes at all.
    let codes = quickly("a 40-level bundle bomb", || codes(&bundle_bomb(40)));
    assert_eq!(codes, ["duplicate-policy-kind", "bundle-too-large"]);
}

#[test]
fn a_deep_bundle_chain_does_not_overflow_the_stack() {
    let mut text = String::from(
        "gatefold: 1\nupstreams:\n  u: { targets: [{ url: http://127.0.0.1:1 }] }\n\
         policies:\n  b0: { cors: { origins: [\"*\"] } }\n",
    );
    let n = 50_000;
    for i in 1..=n {
        text.push_str(&format!("  b{i}: [b{}]\n", i - 1));
    }
    text.push_str(&format!(
        "apis:\n  a:\n    upstream: u\n    routes:\n      r: {{ path: /, policies: [b{n}] }}\n"
    ));
    // Each bundle names the one before: the chain is valid, and the route
    // ends up with the one `cors` policy at its bottom.
    let ir = quickly("a 50,000-bundle chain", move || {
        let c = compile_str("regression.yaml", &text);
        let Some(ir) = &c.ir else {
            panic!("{}", c.render())
        };
        ir.routes
            .iter()
            .map(|r| {
                r.chain
                    .iter()
                    .map(|p| p.kind.to_string())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(ir, [["cors"]]);
}
