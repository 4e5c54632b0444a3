//! Every generated file validates against Kong's declarative-config JSON
//! Schema (decK's `kong_json_schema.json`), and every plugin `config`
//! against the plugin's published 3.15 schema, using only keys the schema
//! declares (recursively: those schemas allow unknown keys, Kong does not).
//! The schemas are copies of ../shared/reference/kong (see
//! tests/schemas/README.md).

use crate::common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;

fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemas")
}

fn load(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The schema file of a plugin: `key-auth` is `KeyAuth.json`, `acl` `ACL.json`.
fn plugin_schema(name: &str) -> Value {
    let file = match name {
        "acl" => "ACL".to_string(),
        _ => name
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect(),
    };
    let path = schemas().join(format!("plugins/{file}.json"));
    if path.exists() {
        return load(path);
    }
    // `native.kong` plugins: the schemas the target embeds (schemas/).
    load(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/{file}.json")))
}

/// Keys of `value` that `schema` does not declare, as JSON paths.
fn undeclared(schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            // A map's keys are declared by `additionalProperties`.
            let extra = schema.get("additionalProperties").filter(|s| s.is_object());
            for (k, v) in map {
                match props.and_then(|p| p.get(k)).or(extra) {
                    Some(s) => undeclared(s, v, &format!("{at}.{k}"), out),
                    None => out.push(format!("{at}.{k}")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    undeclared(s, v, &format!("{at}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Asserts the file and its plugins are valid; returns the plugin names.
fn assert_valid(yaml: &str) -> Vec<String> {
    let doc: Value = serde_yaml::from_str(yaml).expect("kong.yaml is YAML");
    let schema = load(schemas().join("kong_json_schema.json"));
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "kong.yaml breaks the schema: {errors:#?}\n{yaml}"
    );
    let mut names = Vec::new();
    for p in doc["plugins"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap();
        let schema = plugin_schema(name);
        let config_schema = &schema["properties"]["config"];
        let v = jsonschema::validator_for(config_schema).expect("the plugin schema compiles");
        let errors: Vec<String> = v.iter_errors(&p["config"]).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "`{name}` config breaks its schema: {errors:#?}"
        );
        let mut extra = Vec::new();
        undeclared(config_schema, &p["config"], "config", &mut extra);
        assert!(
            extra.is_empty(),
            "`{name}` config has undeclared keys: {extra:?}"
        );
        names.push(name.to_string());
    }
    names
}

#[test]
fn the_petstore_like_config_is_valid() {
    let names = assert_valid(&text(&emit(&compile(PETSTORE))));
    // Every plugin kind this target emits is covered by the check.
    for n in [
        "key-auth",
        "acl",
        "cors",
        "request-transformer",
        "response-transformer",
        "pre-function",
        "post-function",
    ] {
        assert!(
            names.iter().any(|x| x == n),
            "`{n}` not exercised: {names:?}"
        );
    }
}

#[test]
fn basic_auth_and_deny_lists_and_json_mocks_are_valid() {
    let names = assert_valid(&text(&emit(&compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "https://backend.internal" }], balance: "hash-header:x-user" } }
consumers:
  a: { groups: [blocked], credentials: { basic: { user: a, password: { env: A_PASS } } } }
apis:
  a:
    upstream: u
    policies: [{ basic-auth: { realm: shop } }, { acl: { deny: [blocked] } }]
    routes:
      one: { path: /one }
      mock: { path: /mock, policies: [{ mock: { status: 418, json: { tea: true } } }] }
"#,
    ))));
    assert!(names.iter().any(|n| n == "basic-auth"), "{names:?}");
}

#[test]
fn the_undeclared_key_check_catches_an_unknown_key() {
    // The check itself: a key the schema does not declare is reported.
    let schema = plugin_schema("key-auth");
    let mut extra = Vec::new();
    let config = serde_json::json!({ "key_names": ["x"], "no_such_option": true });
    undeclared(
        &schema["properties"]["config"],
        &config,
        "config",
        &mut extra,
    );
    assert_eq!(extra, vec!["config.no_such_option".to_string()]);
}

#[test]
fn a_script_is_a_valid_post_function() {
    let names = assert_valid(&text(&emit(&compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      both:
        path: /both
        policies:
          - script:
              request: |
                ctx.t = (req.header("x-t") ?? "none").toLowerCase();
              response: |
                res.setHeader("x-t", ctx.t);
      response-only:
        path: /response
        policies: [{ script: { response: "res.removeHeader(\"x-powered-by\");" } }]
"#,
    ))));
    assert_eq!(
        names.iter().filter(|n| *n == "post-function").count(),
        2,
        "{names:?}"
    );
}

#[test]
fn lua_security_kinds_and_mocks_are_valid_serverless_plugins() {
    let names = assert_valid(&text(&emit(&compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080, policies: [{ ip-filter: { allow: [10.0.0.0/8] } }] }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    policies: [{ rate-limit: { requests: 5, per: 1m, key: "header:x-tenant" } }]
    routes:
      one: { path: /one, policies: [{ request-size-limit: { max: 1KiB } }] }
      two: { path: /two, policies: [{ mock: { status: 204, headers: { x-a: b } } }] }
"#,
    ))));
    // Global ones shared by most routes, route-scoped ones for the others.
    assert!(
        names.iter().filter(|n| *n == "pre-function").count() >= 2,
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == "post-function"), "{names:?}");
}

#[test]
fn a_route_timeout_is_a_service_with_those_timeouts() {
    let yaml = text(&emit(&compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }], timeouts: { connect: 2s } } }
apis:
  a:
    upstream: u
    routes:
      one: { path: /one }
      slow: { path: /slow, policies: [{ timeout: { read: 90s } }] }
"#,
    )));
    assert_valid(&yaml);
    let doc: Value = serde_yaml::from_str(&yaml).unwrap();
    let services = doc["services"].as_array().unwrap();
    let routes = doc["routes"].as_array().unwrap();
    let service_of = |route: &str| {
        let r = routes.iter().find(|r| r["name"] == route).unwrap();
        let name = r["service"]["name"].as_str().unwrap();
        services.iter().find(|s| s["name"] == name).unwrap().clone()
    };
    // The route's read timeout, the upstream's connect timeout; the other
    // route keeps the upstream's service and the baseline read timeout.
    let slow = service_of("a.slow");
    assert_eq!(
        (
            slow["connect_timeout"].as_u64(),
            slow["read_timeout"].as_u64()
        ),
        (Some(2000), Some(90000)),
        "{yaml}"
    );
    assert_eq!(slow["host"], "u");
    let one = service_of("a.one");
    assert_eq!(one["name"], "u");
    assert_eq!(one["connect_timeout"].as_u64(), Some(2000));
    assert_ne!(one["read_timeout"].as_u64(), Some(90000));
}

#[test]
fn preserve_host_is_the_routes_preserve_host() {
    let yaml = text(&emit(&compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    preserve-host: true
    routes:
      kept: { path: /kept }
      not: { path: /not, preserve-host: false }
"#,
    )));
    assert_valid(&yaml);
    let doc: Value = serde_yaml::from_str(&yaml).unwrap();
    let of = |name: &str| {
        doc["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()["preserve_host"]
            .clone()
    };
    assert_eq!(of("a.kept"), true, "{yaml}");
    assert_eq!(of("a.not"), false, "{yaml}");
}

#[test]
fn jwt_is_a_valid_pre_function() {
    let yaml = text(&emit(&compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
consumers: { acme: { groups: [gold] } }
apis:
  a:
    upstream: u
    policies:
      - jwt: { algorithms: [HS256], secret: { env: JWT_SECRET }, claims-to-headers: { sub: x-user } }
      - acl: { allow: [gold] }
    routes:
      one: { path: /one }
      two: { path: /two, policies: [{ jwt: { algorithms: [ES256], public-key: { env: ES_PEM } } }] }
"#,
    )));
    let names = assert_valid(&yaml);
    assert!(names.iter().any(|n| n == "acl"), "{names:?}");
    // Each route's phase 4 is in its pre-function.
    for route in ["a.one", "a.two"] {
        let pre = function_config(&yaml, "pre-function", route);
        assert!(
            pre["access"].as_array().unwrap().iter().any(|c| c
                .as_str()
                .unwrap()
                .starts_with("-- gatefold: authentication (phase 4): ")),
            "{route}: {pre}"
        );
    }
}

#[test]
fn native_plugins_are_valid_for_kong_and_their_schemas() {
    let names = assert_valid(&text(&emit(&compile(
        r#"
gatefold: 1
gateway:
  name: g
  listen: 8080
  policies:
    - native:
        kong:
          plugins:
            - { name: correlation-id, config: { header_name: x-request-id, generator: uuid } }
            - { name: http-log, config: { http_endpoint: "{vault://env/LOG_URL}", headers: { x-a: b }, timeout: 5000 } }
            - { name: tcp-log, config: { host: logs.internal, port: 5140 } }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      one: { path: /one }
"#,
    ))));
    for n in ["correlation-id", "http-log", "tcp-log"] {
        assert!(names.iter().any(|x| x == n), "{n}: {names:?}");
    }
}

#[test]
fn match_conditions_are_valid_with_hostile_values() {
    // The markers' rewrite chunk, the route expressions, and the 405
    // routes' own pre-functions; values with ATC and Lua syntax in them.
    let yaml = text(&emit(&compile(
        r##"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      v2:
        path: /items/*
        methods: [GET]
        match:
          headers: { x-version: "\"# || true ]] \\" }
          query: { "a\"#b": "r#\"x\"#" }
      items: { path: /items/*, methods: [PUT] }
"##,
    )));
    let names = assert_valid(&yaml);
    assert!(names.iter().any(|n| n == "pre-function"), "{names:?}");
    assert!(yaml.contains("rewrite:"), "{yaml}");
    assert_chunks_compile(&yaml);
}

#[test]
fn redirects_are_valid_post_functions() {
    let yaml = text(&emit(&compile(
        r##"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      to: { path: "/go/{id}", policies: [{ redirect: { to: "https://x.example/{id}?a=\"]]#b", status: 307 } }] }
      parts: { path: /v1/*, policies: [{ redirect: { scheme: https, host: new.example.com, port: 8443, replace-prefix: /v2 } }] }
"##,
    )));
    let names = assert_valid(&yaml);
    assert!(names.iter().any(|n| n == "post-function"), "{names:?}");
    assert_chunks_compile(&yaml);
}

#[test]
fn retry_services_are_valid() {
    // Services per upstream, timeouts and retries.
    let yaml = text(&emit(&compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams:
  u: { targets: [{ url: "http://127.0.0.1:9001" }], retries: { attempts: 10, on: [connect-failure, 502] } }
apis:
  a:
    upstream: u
    routes:
      one: { path: /one }
      two: { path: /two, policies: [{ timeout: { read: 1s } }, { retry: { attempts: 0 } }] }
"#,
    )));
    assert_valid(&yaml);
    assert!(
        yaml.contains("name: u.timeout-5000ms-1000ms.retries-0"),
        "{yaml}"
    );
    assert!(yaml.contains("retries: 10"), "{yaml}");
}

/// The conformance scenarios Kong's routing, redirects and retries are
/// checked on (tests/conformance/scenarios; Kong cannot run here): each
/// spec, with the suite's fixed stand-ins for its echo upstreams, either
/// is refused (the snapshot says why) or compiles to a config that passes
/// Kong's schemas and whose Lua compiles; the entities that carry it out
/// are a reviewed snapshot per scenario, so a change shows up as a diff.
#[test]
fn conformance_scenarios_compile_to_valid_reviewed_entities() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance/scenarios");
    let mut n = 0;
    for group in ["routing", "redirects", "upstreams", "tls"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(group))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for path in files {
            let doc: Value =
                serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let mut spec = doc["spec"].as_str().expect("a spec").to_string();
            // As the suite's dummy placeholders (scenario.rs).
            for (name, port) in [("echo", 1), ("echo2", 2), ("closed", 3)] {
                spec = spec
                    .replace(
                        &format!("{{{{{name}-host}}}}"),
                        &format!("127.0.0.1:{port}"),
                    )
                    .replace(
                        &format!("{{{{{name}}}}}"),
                        &format!("http://127.0.0.1:{port}"),
                    );
            }
            let name = format!("{group}_{}", path.file_stem().unwrap().to_string_lossy());
            let ir = if doc["tls"] == true {
                // The suite's two certificates (tests/conformance/src/tls.rs).
                let (ir, _) = compile_with_certs(&name, &[CERT_A, CERT_B], &spec);
                ir
            } else {
                compile(&spec)
            };
            insta::assert_snapshot!(name, entities(&ir));
            n += 1;
        }
    }
    assert!(n >= 20, "only {n} scenarios");
}

/// The names of the conformance suite's certificates `a` and `b`.
const CERT_A: (&str, &[&str]) = ("a", &["tls.example.test", "*.wild.example.test"]);
const CERT_B: (&str, &[&str]) = ("b", &["other.example.test"]);

/// The Kong entities of a spec, condensed: routes (expression, priority,
/// service), services (timeouts, retries), certificates (key, SNIs, not
/// the chain), plugins (scope, tags, and of each Lua chunk its head: the
/// comment and the constants before the code); or why Kong refuses it.
fn entities(ir: &gatefold_compiler::ir::ValidIr) -> String {
    use gatefold_compiler::target::Target;
    let ir = ir.clone();
    let mut refusals: Vec<String> = gaps(&ir)
        .into_iter()
        .filter(|g| g.error)
        .map(|g| format!("{} {:?} {:?}", g.policy, g.field, g.support))
        .collect();
    refusals.extend(
        gatefold_target_kong::Kong
            .spec_diagnostics(&ir)
            .iter()
            .filter(|d| d.severity == gatefold_compiler::diag::Severity::Error)
            .map(|d| d.message.clone()),
    );
    if !refusals.is_empty() {
        return format!("refused:\n{}\n", refusals.join("\n"));
    }
    let yaml = text(&emit(&ir));
    assert_valid(&yaml);
    if yaml.contains("-function") {
        assert_chunks_compile(&yaml);
    }
    let doc: Value = serde_yaml::from_str(&yaml).unwrap();
    let mut out = String::new();
    for r in doc["routes"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "route {} priority={} service={} preserve_host={}\n  {}\n",
            r["name"].as_str().unwrap(),
            r["priority"],
            r["service"]["name"].as_str().unwrap_or("-"),
            r["preserve_host"],
            r["expression"].as_str().unwrap()
        ));
    }
    for s in doc["services"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "service {} -> {} connect={} read={} retries={}\n",
            s["name"].as_str().unwrap(),
            s["host"].as_str().unwrap(),
            s["connect_timeout"],
            s["read_timeout"],
            s["retries"]
        ));
    }
    for c in doc["certificates"].as_array().into_iter().flatten() {
        let snis: Vec<&str> = c["snis"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        out.push_str(&format!(
            "certificate {} key={} snis={snis:?}\n",
            c["tags"],
            c["key"].as_str().unwrap()
        ));
    }
    for p in doc["plugins"].as_array().into_iter().flatten() {
        let scope = match (p["route"].as_str(), p["service"].as_str()) {
            (Some(r), _) => format!("route {r}"),
            (_, Some(s)) => format!("service {s}"),
            _ => "global".to_string(),
        };
        out.push_str(&format!(
            "plugin {} {scope} tags={}\n",
            p["name"].as_str().unwrap(),
            p["tags"]
        ));
        let cfg = &p["config"];
        let lua = p["name"] == "pre-function" || p["name"] == "post-function";
        for (key, value) in cfg.as_object().into_iter().flatten() {
            if !lua {
                out.push_str(&format!("  {key}: {value}\n"));
                continue;
            }
            for chunk in value.as_array().into_iter().flatten() {
                out.push_str(&format!("  {key}:\n"));
                for line in chunk.as_str().unwrap().lines() {
                    if line.starts_with("local function") || line.starts_with("return function") {
                        break;
                    }
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
    }
    out
}

/// `gateway.tls` as examples/tls has it, with the key in a variable (Kong
/// reads keys through its env vault): a valid config whose certificate is
/// the chain read at compile time; reviewed with the chain elided.
#[test]
fn the_tls_example_with_an_env_key_is_valid() {
    let example = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/tls/gatefold.yaml"),
    )
    .unwrap();
    let spec = example.replace("key: { file: certs/api.key }", "key: { env: API_TLS_KEY }");
    assert_ne!(spec, example, "examples/tls names its key file as expected");
    let (ir, chains) = compile_with_certs(
        "example",
        &[("api", &["localhost", "api.example.test"])],
        &spec,
    );
    let yaml = text(&emit(&ir));
    assert_valid(&yaml);
    assert_chunks_compile(&yaml);
    let doc: Value = serde_yaml::from_str(&yaml).unwrap();
    let cert = &doc["certificates"][0];
    assert_eq!(cert["cert"].as_str(), Some(chains[0].as_str()));
    let id = cert["id"].as_str().unwrap().to_string();
    let shown = yaml.replace(&id, "<id>");
    // The chain as YAML writes it (a block scalar under `cert:`, after
    // the certificate's `id`), elided.
    let block = format!("  cert: |\n{}", indent(&chains[0]));
    assert!(
        shown.contains(&block),
        "the chain as a block scalar:\n{shown}"
    );
    let shown = shown.replace(&block, "  cert: <chain of certs/api.pem>\n");
    insta::assert_snapshot!("tls_example_env_key", tls_parts(&shown));
}

/// Three certificates whose names overlap: each SNI is the first covering
/// certificate's, the first also takes `*`.
#[test]
fn overlapping_certificates_are_valid_and_own_their_names() {
    let (ir, _) = compile_with_certs(
        "overlap",
        &[
            ("a", &["tls.example.test", "*.wild.example.test"]),
            (
                "b",
                &[
                    "other.example.test",
                    "x.wild.example.test",
                    "tls.example.test",
                ],
            ),
            ("c", &["*.example.test", "other.example.test"]),
        ],
        r#"
gatefold: 1
gateway:
  name: g
  tls:
    listen: 8443
    certificates:
      - { cert: { file: certs/a.pem }, key: { env: TLS_KEY_A } }
      - { cert: { file: certs/b.pem }, key: { env: TLS_KEY_B } }
      - { cert: { file: certs/c.pem }, key: { env: TLS_KEY_C } }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  main: { upstream: u, routes: { all: { path: /* } } }
"#,
    );
    let yaml = text(&emit(&ir));
    assert_valid(&yaml);
    insta::assert_snapshot!("tls_overlapping_certificates", entities(&ir));
}

/// The header's comment lines, the `certificates` section, and the global
/// pre-function's tls chunk up to its code.
fn tls_parts(yaml: &str) -> String {
    let mut out = String::new();
    for l in yaml.lines().take_while(|l| l.starts_with('#')) {
        out.push_str(l);
        out.push('\n');
    }
    let mut lines = yaml.lines().skip_while(|l| *l != "certificates:");
    if let Some(head) = lines.next() {
        out.push_str(head);
        out.push('\n');
        for l in lines.take_while(|l| l.starts_with(' ') || l.starts_with('-')) {
            out.push_str(l);
            out.push('\n');
        }
    }
    let doc: Value = serde_yaml::from_str(yaml).unwrap();
    for p in doc["plugins"].as_array().into_iter().flatten() {
        for chunk in p["config"]["rewrite"].as_array().into_iter().flatten() {
            let chunk = chunk.as_str().unwrap();
            if chunk.starts_with("-- gatefold: gateway.tls") {
                for line in chunk
                    .lines()
                    .take_while(|l| !l.starts_with("local function"))
                {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// `text` with each line indented as serde_yaml writes a block scalar in a
/// top-level list item.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}
