//! Same meaning, same bytes: compiling twice is byte-identical, and
//! reformatting a spec (key order, quoting, comments, flow vs block style)
//! leaves the content hash unchanged.

use gatefold_compiler::source::{SourceFile, Sources};
use gatefold_compiler::{compile_path, compile_sources, compile_str};
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// Reverses the key order of every mapping except `routes:` (whose order is
/// the documented tie-break among equally specific routes).
fn reorder(value: &mut serde_yaml::Value) {
    match value {
        serde_yaml::Value::Mapping(m) => {
            let mut entries: Vec<_> = std::mem::take(m).into_iter().collect();
            for (k, v) in &mut entries {
                if k.as_str() != Some("routes") {
                    reorder(v);
                } else if let serde_yaml::Value::Mapping(routes) = v {
                    for (_, r) in routes.iter_mut() {
                        reorder(r);
                    }
                }
            }
            entries.reverse();
            m.extend(entries);
        }
        serde_yaml::Value::Sequence(items) => items.iter_mut().for_each(reorder),
        _ => {}
    }
}

/// The IR's JSON without the source map: what the hash covers.
fn meaning(ir: &gatefold_compiler::ir::ValidIr) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&ir.to_json()).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("sources");
    obj.remove("hash");
    serde_json::to_string_pretty(&v).unwrap()
}

#[test]
fn compiling_twice_is_byte_identical() {
    let a = compile_path(&example("petstore")).ir.expect("compiles");
    let b = compile_path(&example("petstore")).ir.expect("compiles");
    assert_eq!(a.to_json(), b.to_json());
}

#[test]
fn reformatting_keeps_the_hash() {
    for name in ["petstore", "kitchen-sink", "quickstart"] {
        let file = example(name).join("gatefold.yaml");
        let text = std::fs::read_to_string(&file).unwrap();
        let original = compile_path(&file).ir.expect("compiles");

        let mut value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        value.apply_merge().unwrap();
        reorder(&mut value);
        // serde_yaml writes block style, its own quoting and no comments.
        let rewritten = serde_yaml::to_string(&value).unwrap();
        assert_ne!(rewritten, text);
        let mut sources = Sources::new();
        sources.add(SourceFile::new("rewritten.yaml", rewritten));
        let dir = example(name);
        let compiled = compile_sources(sources, |_| dir.clone());
        let ir = compiled
            .ir
            .as_ref()
            .unwrap_or_else(|| panic!("{name} rewritten fails:\n{}", compiled.render()));
        if ir.hash != original.hash {
            let (a, b) = (meaning(&original), meaning(ir));
            let first = a.lines().zip(b.lines()).position(|(x, y)| x != y);
            let context = |t: &str| {
                t.lines()
                    .skip(first.unwrap_or(0).saturating_sub(5))
                    .take(10)
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            panic!(
                "{name}: hash changed by reformatting; first difference:\n{}\n---\n{}",
                context(&a),
                context(&b)
            );
        }
    }
}

#[test]
fn meaning_changes_change_the_hash() {
    let file = example("petstore").join("gatefold.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let original = compile_path(&file).ir.expect("compiles");
    let changed = text.replacen("requests: 100", "requests: 101", 1);
    assert_ne!(changed, text, "the example has a rate limit to change");
    let ir = compile_str("changed.yaml", &changed).ir.expect("compiles");
    assert_ne!(ir.hash, original.hash);
}

#[test]
fn the_ir_file_round_trips_and_refuses_edits() {
    let ir = compile_path(&example("petstore")).ir.expect("compiles");
    let json = ir.to_json();
    let back = gatefold_compiler::ir::ValidIr::from_json(&json).expect("loads");
    assert_eq!(back.to_json(), json);
    let edited = json.replacen("\"requests\":100", "\"requests\":5", 1);
    assert_ne!(edited, json);
    let err = gatefold_compiler::ir::ValidIr::from_json(&edited).unwrap_err();
    assert!(err.contains("does not match its hash"), "{err}");
}

const TWO_APIS_A_FIRST: &str = r#"gatefold: 1
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      one: { path: "/x/{id}", methods: [GET] }
      two: { path: "/{kind}/y", methods: [GET] }
  b:
    upstream: u
    routes:
      three: { path: /z, methods: [GET] }
"#;

#[test]
fn listing_order_counts_only_where_routes_compete() {
    let base = compile_str("s.yaml", TWO_APIS_A_FIRST)
        .ir
        .expect("compiles");
    // Moving api `b` first: no route of `b` competes with one of `a`.
    let (head, tail) = TWO_APIS_A_FIRST.split_at(TWO_APIS_A_FIRST.find("  a:").unwrap());
    let (api_a, api_b) = tail.split_at(tail.find("  b:").unwrap());
    let moved = format!("{head}{api_b}{api_a}");
    let ir = compile_str("s.yaml", &moved).ir.expect("compiles");
    assert_eq!(ir.hash, base.hash);
    // Swapping `one` and `two` changes which wins `GET /x/y`: a new meaning.
    let swapped = TWO_APIS_A_FIRST
        .replace("      one: { path: \"/x/{id}\", methods: [GET] }\n", "")
        .replace(
            "      two: { path: \"/{kind}/y\", methods: [GET] }\n",
            "      two: { path: \"/{kind}/y\", methods: [GET] }\n      one: { path: \"/x/{id}\", methods: [GET] }\n",
        );
    let ir2 = compile_str("s.yaml", &swapped).ir.expect("compiles");
    assert_ne!(ir2.hash, base.hash);
    let first: Vec<String> = ir2.routes.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(first, ["b.three", "a.two", "a.one"]);
}

/// Policy ids derive from the spec's structure: reformatting keeps every id
/// and every chain (state keyed by ids, like rate-limit counters, survives).
#[test]
fn reformatting_keeps_policy_ids_and_chains() {
    for name in ["petstore", "kitchen-sink"] {
        let file = example(name).join("gatefold.yaml");
        let text = std::fs::read_to_string(&file).unwrap();
        let original = compile_path(&file).ir.expect("compiles");
        assert!(!original.policies.is_empty(), "{name} has policies");
        let mut value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        value.apply_merge().unwrap();
        reorder(&mut value);
        let mut sources = Sources::new();
        sources.add(SourceFile::new(
            "r.yaml",
            serde_yaml::to_string(&value).unwrap(),
        ));
        let dir = example(name);
        let ir = compile_sources(sources, |_| dir.clone())
            .ir
            .expect("compiles");
        let ids = |ir: &gatefold_compiler::ir::ValidIr| {
            ir.policies
                .keys()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&ir), ids(&original), "{name}");
        for (a, b) in ir.routes.iter().zip(&original.routes) {
            assert_eq!(a.chain, b.chain, "{name}: {}", a.id);
        }
    }
}

/// A gateway-level policy is one instance however many routes inherit it,
/// and renaming the named policy it came through is not meaning: same ids,
/// same hash, only the origin differs.
#[test]
fn a_named_policy_is_one_instance_and_its_name_is_not_meaning() {
    let spec = |name: &str| {
        format!(
            "gatefold: 1
policies:
  {name}: {{ rate-limit: {{ requests: 10, per: 1m }} }}
gateway:
  policies: [{name}]
apis:
  a:
    routes:
      x: {{ path: /x, policies: [{{ mock: {{}} }}] }}
      y: {{ path: /y, policies: [{{ mock: {{}} }}] }}
"
        )
    };
    let a = compile_str("a.yaml", &spec("limit")).ir.expect("compiles");
    let b = compile_str("b.yaml", &spec("renamed"))
        .ir
        .expect("compiles");
    assert_eq!(a.hash, b.hash);
    let limits: Vec<String> = a
        .policies
        .keys()
        .filter(|id| id.kind == gatefold_compiler::ir::PolicyKind::RateLimit)
        .map(ToString::to_string)
        .collect();
    assert_eq!(limits, ["gateway/rate-limit"]);
    let id: gatefold_compiler::ir::PolicyId = "gateway/rate-limit".parse().unwrap();
    assert_eq!(a.policies[&id].origin.via[0].as_str(), "limit");
    assert_eq!(b.policies[&id].origin.via[0].as_str(), "renamed");
    assert!(a.routes.iter().all(|r| r.chain.contains(&id)));
}

const CONDITIONS: &str = r#"gatefold: 1
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      v2: { path: "/items/*", match: { headers: { x-version: "2", x-tenant: acme }, query: { format: json, pretty: "1" } } }
      items: { path: "/items/*" }
"#;

/// `match.headers` and `match.query` are maps: the order their keys are
/// written in, and the case of header names, change neither the IR bytes
/// nor the content hash; a value does.
#[test]
fn reordering_match_keys_changes_nothing() {
    let base = compile_str("s.yaml", CONDITIONS).ir.expect("compiles");
    let reordered = CONDITIONS.replace(
        r#"headers: { x-version: "2", x-tenant: acme }, query: { format: json, pretty: "1" }"#,
        r#"query: { pretty: "1", format: json }, headers: { x-tenant: acme, X-Version: "2" }"#,
    );
    assert_ne!(reordered, CONDITIONS);
    let ir = compile_str("s.yaml", &reordered).ir.expect("compiles");
    assert_eq!(ir.to_json(), base.to_json());
    assert_eq!(ir.hash, base.hash);
    let changed = CONDITIONS.replace("x-tenant: acme", "x-tenant: acme2");
    let ir = compile_str("s.yaml", &changed).ir.expect("compiles");
    assert_ne!(ir.hash, base.hash);
    // The IR holds lower-case names, in order.
    let json = base.to_json();
    assert!(
        json.contains(r#""conditions":{"headers":{"x-tenant":"acme","x-version":"2"},"query":{"format":"json","pretty":"1"}}"#),
        "{json}"
    );
}

/// `preserve-host` is meaning (the route's, else the api's); left out, the
/// IR has no trace of it, so specs without it keep their hash.
#[test]
fn preserve_host_is_meaning_and_absent_by_default() {
    let base = compile_str("s.yaml", CONDITIONS).ir.expect("compiles");
    assert!(!base.to_json().contains("preserve-host"));
    let on_api = CONDITIONS.replace(
        "    upstream: u\n",
        "    upstream: u\n    preserve-host: true\n",
    );
    let ir = compile_str("s.yaml", &on_api).ir.expect("compiles");
    assert_ne!(ir.hash, base.hash);
    assert!(ir.routes.iter().all(|r| r.lowered.preserve_host));
    // The route's wins over the api's.
    let route_off = on_api.replace(
        r#"items: { path: "/items/*" }"#,
        r#"items: { path: "/items/*", preserve-host: false }"#,
    );
    let ir = compile_str("s.yaml", &route_off).ir.expect("compiles");
    let items = ir
        .routes
        .iter()
        .find(|r| r.id.route.as_str() == "items")
        .unwrap();
    assert!(!items.lowered.preserve_host);
    let v2 = ir
        .routes
        .iter()
        .find(|r| r.id.route.as_str() == "v2")
        .unwrap();
    assert!(v2.lowered.preserve_host);
}

fn script_spec(request: &str) -> String {
    let indented: String = request
        .lines()
        .map(|l| format!("                {l}\n"))
        .collect();
    format!(
        "gatefold: 1\nupstreams: {{ u: {{ targets: [{{ url: \"http://127.0.0.1:9001\" }}] }} }}\napis:\n  a:\n    upstream: u\n    routes:\n      r:\n        path: /r\n        policies:\n          - script:\n              request: |\n{}",
        indented
    )
}

/// A script's IR holds its meaning, not its text: blanks, comments, line
/// breaks and the names of its locals change neither the IR bytes nor the
/// hash (only the source map moves); a changed literal changes both, and
/// the IR never holds the source.
#[test]
fn reformatting_a_script_keeps_the_hash() {
    let compile = |src: &str| {
        let c = compile_str("s.yaml", &script_spec(src));
        let rendered = c.render();
        c.ir.unwrap_or_else(|| panic!("{rendered}"))
    };
    let a = compile(
        "const tenant = req.query(\"tenant\");\nif (!tenant) { return respond(400, { error: \"tenant required\" }); }\nctx.tenant = tenant.toLowerCase();",
    );
    let b = compile(
        "// the tenant, from the query\nconst t =\n  req.query('tenant');\n\nif (!t) {\n  return respond(400, { error: 'tenant required' });\n}\nctx.tenant = t.toLowerCase();   // for the response",
    );
    assert_eq!(meaning(&a), meaning(&b));
    assert_eq!(a.hash, b.hash);
    assert!(!a.to_json().contains("toLowerCase"), "no source in the IR");
    let c = compile(
        "const tenant = req.query(\"tenant\");\nif (!tenant) { return respond(401, { error: \"tenant required\" }); }\nctx.tenant = tenant.toLowerCase();",
    );
    assert_ne!(a.hash, c.hash);
    // And the IR file round-trips with its script.
    let json = a.to_json();
    let back = gatefold_compiler::ir::ValidIr::from_json(&json).expect("loads");
    assert_eq!(back.to_json(), json);
}
