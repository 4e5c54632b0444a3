//! The JSON Schema editors use (`policy-spec/gatefold.schema.json`) and the
//! compiler must agree: every example passes both, and a table of snippets
//! is accepted or refused by both alike.

use gatefold_compiler::{compile_path, compile_str};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo().join("policy-spec/gatefold.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).expect("the schema itself is valid")
}

/// YAML as the JSON a schema validator sees (merge keys applied, as editors do).
fn as_json(yaml: &str) -> serde_json::Value {
    let mut value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    value.apply_merge().unwrap();
    serde_json::to_value(value).unwrap()
}

fn schema_errors(v: &jsonschema::Validator, yaml: &str) -> Vec<String> {
    let instance = as_json(yaml);
    v.iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn every_example_passes_schema_and_compiler() {
    let v = validator();
    let mut seen = 0;
    for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for file in gatefold_compiler::source::spec_files(&dir).unwrap() {
            let text = std::fs::read_to_string(&file).unwrap();
            let errors = schema_errors(&v, &text);
            assert!(
                errors.is_empty(),
                "{}: schema says {errors:#?}",
                file.display()
            );
            seen += 1;
        }
        let compiled = compile_path(&dir);
        assert!(
            compiled.ir.is_some(),
            "{} does not compile:\n{}",
            dir.display(),
            compiled.render()
        );
    }
    assert!(seen >= 3, "expected the three examples, saw {seen} files");
}

const BASE: &str =
    "gatefold: 1\nupstreams:\n  u: { targets: [{ url: \"http://127.0.0.1:9001\" }] }\n";

fn with_route_policy(policy: &str) -> String {
    format!("{BASE}apis:\n  a:\n    upstream: u\n    routes:\n      r:\n        path: /x\n        policies:\n          - {policy}\n")
}

/// (snippet, should both accept it)
fn cases() -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = [
        ("rate-limit: { requests: 10, per: 1m }", true),
        ("rate-limit: { requests: 10, per: 1 minute }", false),
        ("rate-limit: { requests: 0, per: 1m }", false),
        (
            "rate-limit: { requests: 10, per: 1m, key: header:x-tenant }",
            true,
        ),
        ("rate-limit: { requests: 10, per: 1m, keys: ip }", false),
        ("request-size-limit: { max: 512KiB }", true),
        ("request-size-limit: { max: 512kb }", false),
        (
            "ip-filter: { allow: [10.0.0.0/8, \"2001:db8::/32\"] }",
            true,
        ),
        ("mock: { status: 200, json: { ok: true } }", true),
        ("mock: { status: 200, body: a, json: { ok: true } }", false),
        ("mock: { status: 700 }", false),
        (
            "redirect: { to: \"https://example.com/\", status: 301 }",
            true,
        ),
        (
            "redirect: { to: \"https://example.com/\", status: 303 }",
            false,
        ),
        ("request-headers: { set: { x-a: b }, remove: [x-c] }", true),
        ("request-headers: { set: { \"bad header\": b } }", false),
        (
            "cors: { origins: [\"https://a.example\"], max-age: 10m }",
            true,
        ),
        ("cors: { origins: [\"*\"], credentials: true }", false),
        (
            "deprecation: { sunset: \"2030-01-31\", link: \"https://example.com/m\" }",
            true,
        ),
        ("deprecation: { sunset: \"31/01/2030\" }", false),
        ("timeout: { connect: 1s, read: 2s }", true),
        ("retry: { attempts: 2, on: [connect-failure, 502] }", true),
        ("retry: { attempts: 11 }", false),
        ("cache: { ttl: 30s, vary: [accept] }", true),
        ("cache: { ttl: 30s, methods: [POST] }", false),
        ("rewrite: { strip-prefix: /x, add-prefix: /v1 }", true),
        ("rewrite: { path: /y, strip-prefix: /x }", false),
        ("script: { request: \"req.setHeader('x-a', '1');\" }", true),
        ("native: { kong: { plugins: [] } }", true),
        ("native: { apache: {} }", false),
        (
            "jwt: { algorithms: [HS256], secret: { env: JWT_SECRET } }",
            true,
        ),
        ("jwt: { algorithms: [HS256], secret: hunter2 }", false),
        (
            "jwt: { algorithms: [HS512], secret: { env: JWT_SECRET } }",
            false,
        ),
        ("key-auth: { in: cookie }", false),
        ("frobnicate: {}", false),
    ]
    .into_iter()
    .map(|(p, ok)| (with_route_policy(p), ok))
    .collect();
    let whole: [(&str, bool); 8] = [
        ("gatefold: 2\n", false),
        ("gatefold: 1\nextra: 1\n", false),
        ("gatefold: 1\ngateway: { name: edge, listen: 8080, baseline: { max-body: 2MiB } }\n", true),
        ("gatefold: 1\ngateway: { listen: 70000 }\n", false),
        ("gatefold: 1\ngateway: { name: \"bad name\" }\n", false),
        ("gatefold: 1\nupstreams:\n  u: { targets: [{ url: \"ftp://x\" }] }\napis: { a: { upstream: u, routes: { r: { path: /x } } } }\n", false),
        ("gatefold: 1\nupstreams:\n  u: { targets: [{ url: \"http://127.0.0.1:1\" }], balance: \"hash-header:x-user\" }\napis: { a: { upstream: u, routes: { r: { path: \"/x/{id}\", methods: [GET] } } } }\n", true),
        ("gatefold: 1\nupstreams:\n  u: { targets: [{ url: \"http://127.0.0.1:1\" }] }\napis: { a: { upstream: u, routes: { r: { path: /x, methods: [get] } } } }\n", false),
    ];
    out.extend(whole.into_iter().map(|(s, ok)| (s.to_string(), ok)));
    out
}

#[test]
fn schema_and_compiler_accept_and_refuse_alike() {
    let v = validator();
    let mut disagreements = Vec::new();
    for (text, expect_ok) in cases() {
        let schema_ok = schema_errors(&v, &text).is_empty();
        let compiled = compile_str("case.yaml", &text);
        let compiler_ok = compiled.ir.is_some();
        if schema_ok != expect_ok || compiler_ok != expect_ok {
            disagreements.push(format!(
                "expected ok={expect_ok}, schema ok={schema_ok}, compiler ok={compiler_ok}:\n{text}\n{}",
                compiled.render()
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{}",
        disagreements.join("\n---\n")
    );
}
