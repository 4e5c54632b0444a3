//! The JSON Schema editors use (`policy-spec/gatefold.schema.json`) and the
//! compiler must agree: every example passes both, and a table of snippets
//! is accepted or refused by both alike.

use gatefold_compiler::diag::Severity;
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
    // examples/tls names a certificate and key that are never committed;
    // its script makes a self-signed pair (openssl) when none is there.
    let made = std::process::Command::new(repo().join("examples/tls/make-test-cert.sh")).status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "examples/tls/make-test-cert.sh failed (it needs openssl)"
    );
    let mut seen = 0;
    for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        // A fleet example (a fleet file, not a spec) keeps its spec in `spec/`.
        let dir = if dir.join("fleet.yaml").is_file() {
            dir.join("spec")
        } else {
            dir
        };
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
    "gatefold: 1\nupstreams:\n  u: { targets: [{ url: \"http://127.0.0.1:9001\" }] }\n\
consumers:\n  c: { credentials: { key: { env: C_KEY } } }\n";

fn with_route_policy(policy: &str) -> String {
    format!("{BASE}apis:\n  a:\n    upstream: u\n    routes:\n      r:\n        path: /x\n        policies:\n          - {policy}\n")
}

/// What both must do with a snippet: accept it, or refuse it with this
/// diagnostic code at this line (the compiler's reason must be the one the
/// case is about, not some unrelated mistake elsewhere in the snippet).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Accept,
    Refuse { code: &'static str, line: u32 },
}
use Expect::{Accept, Refuse};

/// The line of the route policy in [`with_route_policy`].
const POLICY_LINE: u32 = 13;

const fn at_policy(code: &'static str) -> Expect {
    Refuse {
        code,
        line: POLICY_LINE,
    }
}

fn cases() -> Vec<(String, Expect)> {
    let mut out: Vec<(String, Expect)> = [
        ("rate-limit: { requests: 10, per: 1m }", Accept),
        (
            "rate-limit: { requests: 10, per: 1 minute }",
            at_policy("invalid-duration"),
        ),
        (
            "rate-limit: { requests: 0, per: 1m }",
            at_policy("out-of-range"),
        ),
        (
            "rate-limit: { requests: 10, per: 1m, key: header:x-tenant }",
            Accept,
        ),
        (
            "rate-limit: { requests: 10, per: 1m, keys: ip }",
            at_policy("unknown-key"),
        ),
        ("request-size-limit: { max: 512KiB }", Accept),
        (
            "request-size-limit: { max: 512kb }",
            at_policy("invalid-size"),
        ),
        (
            "ip-filter: { allow: [10.0.0.0/8, \"2001:db8::/32\"] }",
            Accept,
        ),
        ("mock: { status: 200, json: { ok: true } }", Accept),
        (
            "mock: { status: 200, body: a, json: { ok: true } }",
            at_policy("conflicting-options"),
        ),
        ("mock: { status: 700 }", at_policy("out-of-range")),
        (
            "redirect: { to: \"https://example.com/\", status: 301 }",
            Accept,
        ),
        (
            "redirect: { to: \"https://example.com/\", status: 303 }",
            Accept,
        ),
        (
            "redirect: { to: \"https://example.com/\", status: 304 }",
            at_policy("invalid-option"),
        ),
        ("redirect: { scheme: https, status: 301 }", Accept),
        (
            "redirect: { host: new.example.com, port: 8443, path: /y }",
            Accept,
        ),
        (
            "redirect: { to: \"https://example.com/\", scheme: https }",
            at_policy("redirect-to-and-parts"),
        ),
        (
            "redirect: { path: /a, replace-prefix: /b }",
            at_policy("redirect-path-and-prefix"),
        ),
        ("redirect: { scheme: ftp }", at_policy("invalid-option")),
        ("redirect: { status: 301 }", at_policy("missing-key")),
        (
            "request-headers: { set: { x-a: b }, remove: [x-c] }",
            Accept,
        ),
        (
            "request-headers: { set: { \"bad header\": b } }",
            at_policy("invalid-header"),
        ),
        (
            "cors: { origins: [\"https://a.example\"], max-age: 10m }",
            Accept,
        ),
        // 1.1: accepted, with a warning.
        ("cors: { origins: [\"*\"], credentials: true }", Accept),
        (
            "cors: { origins: [\"https://*.example.com\"], methods: [\"*\"], headers: [\"*\"] }",
            Accept,
        ),
        (
            "cors: { origins: [\"https://a.*.example.com\"] }",
            at_policy("invalid-origin"),
        ),
        ("retry: { attempts: 1, on: [reset, 502] }", Accept),
        ("mirror: { upstream: u, percent: 5 }", Accept),
        (
            "mirror: { upstream: u, percent: 101 }",
            at_policy("out-of-range"),
        ),
        ("mirror: { percent: 5 }", at_policy("missing-key")),
        (
            "deprecation: { sunset: \"2030-01-31\", link: \"https://example.com/m\" }",
            Accept,
        ),
        (
            "deprecation: { sunset: \"31/01/2030\" }",
            at_policy("invalid-date"),
        ),
        ("timeout: { connect: 1s, read: 2s }", Accept),
        ("retry: { attempts: 2, on: [connect-failure, 502] }", Accept),
        ("retry: { attempts: 11 }", at_policy("out-of-range")),
        ("cache: { ttl: 30s, vary: [accept] }", Accept),
        (
            "cache: { ttl: 30s, methods: [POST] }",
            at_policy("invalid-option"),
        ),
        ("rewrite: { strip-prefix: /x, add-prefix: /v1 }", Accept),
        (
            "rewrite: { path: /y, strip-prefix: /x }",
            at_policy("conflicting-options"),
        ),
        (
            "script: { request: \"req.setHeader('x-a', '1');\" }",
            Accept,
        ),
        ("native: { kong: { plugins: [] } }", Accept),
        ("native: { apache: {} }", at_policy("unknown-key")),
        (
            "jwt: { algorithms: [HS256], secret: { env: JWT_SECRET } }",
            Accept,
        ),
        (
            "jwt: { algorithms: [HS256], secret: hunter2 }",
            at_policy("literal-secret"),
        ),
        (
            "jwt: { algorithms: [HS512], secret: { env: JWT_SECRET } }",
            at_policy("invalid-option"),
        ),
        // A consumer holds a key (see `BASE`), so the only fault is `cookie`.
        ("key-auth: { in: header }", Accept),
        ("key-auth: { in: cookie }", at_policy("invalid-option")),
        ("frobnicate: {}", at_policy("unknown-policy-kind")),
    ]
    .into_iter()
    .map(|(p, expect)| (with_route_policy(p), expect))
    .collect();
    let whole: [(&str, Expect); 19] = [
        ("gatefold: 1\napis: { a: { routes: { r: { path: /v1/*, policies: [{ redirect: { replace-prefix: /v2 } }] } } } }\n", Accept),
        ("gatefold: 1\napis: { a: { routes: { r: { path: /v1/*, policies: [{ redirect: { replace-prefix: /v2, to: /x } }] } } } }\n", Refuse { code: "redirect-to-and-parts", line: 2 }),
        ("gatefold: 2\n", Refuse { code: "unsupported-version", line: 1 }),
        ("gatefold: 1\nextra: 1\n", Refuse { code: "unknown-key", line: 2 }),
        ("gatefold: 1\ngateway: { name: edge, listen: 8080, baseline: { max-body: 2MiB } }\n", Accept),
        ("gatefold: 1\ngateway: { listen: 70000 }\n", Refuse { code: "out-of-range", line: 2 }),
        ("gatefold: 1\ngateway: { baseline: { client-address: peer } }\n", Accept),
        ("gatefold: 1\ngateway:\n  baseline:\n    client-address: { trusted-proxies: [10.0.0.0/8, \"2001:db8::/32\"], header: forwarded }\n", Accept),
        ("gatefold: 1\ngateway: { baseline: { client-address: { platform-header: cf-connecting-ip } } }\n", Accept),
        ("gatefold: 1\ngateway: { baseline: { client-address: proxy } }\n", Refuse { code: "invalid-client-address", line: 2 }),
        ("gatefold: 1\ngateway:\n  baseline:\n    client-address: { trusted-proxies: [] }\n", Refuse { code: "empty-list", line: 4 }),
        ("gatefold: 1\ngateway:\n  baseline:\n    client-address: { trusted-proxies: [10.0.0.300] }\n", Refuse { code: "invalid-cidr", line: 4 }),
        ("gatefold: 1\ngateway:\n  baseline:\n    client-address: { trusted-proxies: [10.0.0.0/8], header: x-real-ip }\n", Refuse { code: "invalid-client-address", line: 4 }),
        ("gatefold: 1\ngateway:\n  baseline:\n    client-address: { platform-header: X-Forwarded-For }\n", Refuse { code: "invalid-client-address", line: 4 }),
        ("gatefold: 1\ngateway:\n  baseline:\n    client-address: { trusted-proxies: [10.0.0.0/8], platform-header: cf-connecting-ip }\n", Refuse { code: "invalid-client-address", line: 4 }),
        ("gatefold: 1\ngateway: { name: \"bad name\" }\n", Refuse { code: "invalid-name", line: 2 }),
        ("gatefold: 1\nupstreams:\n  u: { targets: [{ url: \"ftp://x\" }] }\napis: { a: { upstream: u, routes: { r: { path: /x } } } }\n", Refuse { code: "invalid-url", line: 3 }),
        ("gatefold: 1\nupstreams:\n  u: { targets: [{ url: \"http://127.0.0.1:1\" }], balance: \"hash-header:x-user\" }\napis: { a: { upstream: u, routes: { r: { path: \"/x/{id}\", methods: [GET] } } } }\n", Accept),
        ("gatefold: 1\nupstreams:\n  u: { targets: [{ url: \"http://127.0.0.1:1\" }] }\napis: { a: { upstream: u, routes: { r: { path: /x, methods: [get] } } } }\n", Refuse { code: "invalid-method", line: 4 }),
    ];
    out.extend(whole.into_iter().map(|(s, e)| (s.to_string(), e)));
    // Language 1.1 route keys, on line 4 of each snippet.
    let route = |keys: &str| {
        format!("gatefold: 1\nupstreams: {{ u: {{ targets: [{{ url: \"http://127.0.0.1:1\" }}] }} }}\napis:\n  a: {{ upstream: u, routes: {{ r: {{ path: /x, {keys} }} }} }}\n")
    };
    let refuse = |code| Refuse { code, line: 4 };
    let route_cases: [(&str, Expect); 12] = [
        (
            "match: { headers: { X-Version: \"2\" }, query: { format: json } }",
            Accept,
        ),
        ("match: { query: { debug: \"\" } }", Accept),
        ("preserve-host: true", Accept),
        ("match: {}", refuse("empty-match")),
        ("match: { headers: {} }", refuse("empty-match")),
        ("match: { header: { x-a: b } }", refuse("unknown-key")),
        (
            "match: { headers: { \"x a\": b } }",
            refuse("invalid-header"),
        ),
        (
            "match: { headers: { host: a.example } }",
            refuse("invalid-header"),
        ),
        ("match: { headers: { x-a: 2 } }", refuse("wrong-type")),
        (
            "match: { headers: { x-a: \" b\" } }",
            refuse("invalid-header-value"),
        ),
        (
            "match: { query: { \"\": b } }",
            refuse("invalid-query-param"),
        ),
        ("preserve-host: \"yes\"", refuse("wrong-type")),
    ];
    out.extend(route_cases.into_iter().map(|(k, e)| (route(k), e)));
    out
}

#[test]
fn schema_and_compiler_accept_and_refuse_alike() {
    let v = validator();
    let mut disagreements = Vec::new();
    for (text, expect) in cases() {
        let schema_ok = schema_errors(&v, &text).is_empty();
        let compiled = compile_str("case.yaml", &text);
        let errors: Vec<(&str, u32)> = compiled
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| (d.code, d.span.map_or(0, |s| s.start.line)))
            .collect();
        let agrees = match expect {
            Accept => schema_ok && compiled.ir.is_some(),
            // The first error is the root cause; it must be the one named.
            Refuse { code, line } => {
                !schema_ok && compiled.ir.is_none() && errors.first() == Some(&(code, line))
            }
        };
        if !agrees {
            disagreements.push(format!(
                "expected {expect:?}, schema ok={schema_ok}, compiler errors={errors:?}:\n{text}\n{}",
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
