//! Regressions from the compiler review: each test pins one fixed bug.
//! Diagnostics that a user sees are snapshotted in `bad-specs/` instead;
//! these cover what a snapshot cannot (speed, hashes, the IR itself).

use gatefold_compiler::compile_str;
use gatefold_compiler::ir::values::Method;

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
        "gateway: { policies: [b40] }\napis:\n  a:\n    policies: [{ mock: {} }]\n    routes:\n      r: { path: /r, policies: [b40] }\n      s: { path: /s, policies: [b40] }\n",
    );
    let found = codes(&text);
    // Once per place the bundle is attached.
    assert_eq!(
        found.iter().filter(|c| **c == "bundle-too-large").count(),
        3,
        "{found:?}"
    );
    // The repeated kind is reported once, not once per copy or per level.
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

/// A rate limit's counters belong to the policy instance, named by where it
/// is attached; that is meaning, so it is in the IR (and its hash), not only
/// in the source map.
#[test]
fn rate_limit_scope_is_in_the_ir() {
    use gatefold_compiler::ir::{Attachment, PolicyKind};
    let scopes = |ir: &gatefold_compiler::ir::ValidIr| -> Vec<(String, Attachment)> {
        ir.routes
            .iter()
            .map(|r| match r.policy_id(PolicyKind::RateLimit) {
                Some(id) => (r.id.to_string(), id.attachment.clone()),
                None => panic!("{} has no rate limit", r.id),
            })
            .collect()
    };
    let route = |s: &str| Attachment::Route(s.parse().unwrap());
    // One limit at the gateway: both routes count together, one instance.
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
            ("a.x".to_string(), Attachment::Gateway),
            ("a.y".to_string(), Attachment::Gateway)
        ]
    );
    let limits = |ir: &gatefold_compiler::ir::ValidIr| {
        ir.policies
            .keys()
            .filter(|id| id.kind == PolicyKind::RateLimit)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(limits(&shared), ["gateway/rate-limit"]);
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
    assert_eq!(
        limits(&apart),
        ["route/a.x/rate-limit", "route/a.y/rate-limit"]
    );
    assert_ne!(shared.hash, apart.hash);
    // A named policy attached to two apis is two instances, counting per api.
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
    assert!(found.contains(&("a.x".to_string(), Attachment::Api("a".parse().unwrap()))));
    assert!(found.contains(&("b.x".to_string(), Attachment::Api("b".parse().unwrap()))));
    assert_eq!(limits(&named), ["api/a/rate-limit", "api/b/rate-limit"]);
    let via = &named.policies[&"api/a/rate-limit".parse().unwrap()]
        .origin
        .via;
    assert_eq!(
        via.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
        ["limit"]
    );
}

/// Lists that are sets hash the same in any order.
#[test]
fn set_lists_do_not_depend_on_order_or_repeats() {
    let spec = |hosts: &str,
                origins: &str,
                methods: &str,
                headers: &str,
                expose: &str,
                allow: &str,
                deny: &str,
                vary: &str,
                keys: &str,
                audiences: &str| {
        format!(
            "gatefold: 1
upstreams:
  u: {{ targets: [{{ url: \"http://127.0.0.1:9001\" }}] }}
consumers:
  acme: {{ credentials: {{ keys: {keys} }} }}
apis:
  a:
    hosts: {hosts}
    upstream: u
    policies:
      - cors: {{ origins: {origins}, methods: {methods}, headers: {headers}, expose: {expose} }}
      - ip-filter: {{ allow: {allow}, deny: {deny} }}
      - cache: {{ ttl: 30s, vary: {vary} }}
      - key-auth: {{}}
      - jwt: {{ algorithms: [HS256], secret: {{ env: JWT_SECRET }}, audiences: {audiences} }}
    routes:
      r: {{ path: /r }}
"
        )
    };
    let written = compiles(&spec(
        "[a.example.com, b.example.com]",
        "[\"https://a.example\", \"https://b.example\"]",
        "[GET, POST]",
        "[x-a, x-b]",
        "[x-c, x-d]",
        "[10.0.0.0/8, 192.168.0.0/16]",
        "[10.1.0.0/16, 10.2.0.0/16]",
        "[accept, accept-language]",
        "[{ env: KEY_A }, { env: KEY_B }]",
        "[one, two]",
    ));
    let reordered = compiles(&spec(
        "[b.example.com, a.example.com]",
        "[\"https://b.example\", \"https://a.example\"]",
        "[POST, GET]",
        "[x-b, X-A]",
        "[X-D, x-c]",
        "[192.168.0.0/16, 10.0.0.0/8]",
        "[10.2.0.0/16, 10.1.0.0/16]",
        "[Accept-Language, accept]",
        "[{ env: KEY_B }, { env: KEY_A }]",
        "[two, one]",
    ));
    assert_eq!(written.hash, reordered.hash);
    let strip = |ir: &gatefold_compiler::ir::ValidIr| {
        let mut v: serde_json::Value = serde_json::from_str(&ir.to_json()).unwrap();
        v.as_object_mut().unwrap().remove("sources");
        v
    };
    assert_eq!(strip(&written), strip(&reordered));
}

/// A repeated entry in a list that is a set counts once, with a warning at
/// the repeat that points at the first.
#[test]
fn repeated_set_entries_are_merged_with_a_warning() {
    let spec = |hosts: &str, headers: &str, allow: &str| {
        format!(
            "gatefold: 1
apis:
  a:
    hosts: {hosts}
    policies:
      - mock: {{}}
      - cors: {{ origins: [\"*\"], headers: {headers} }}
      - ip-filter: {{ allow: {allow} }}
    routes:
      r: {{ path: /r }}
"
        )
    };
    let once = compiles(&spec("[a.example.com]", "[x-id]", "[10.0.0.0/8]"));
    let text = spec(
        "[a.example.com, a.example.com]",
        "[x-id, X-Id]",
        "[10.0.0.0/8, 10.0.0.0/8]",
    );
    let c = compile_str("review.yaml", &text);
    let ir = c.ir.as_ref().expect("a repeat is not an error");
    assert_eq!(ir.hash, once.hash);
    let warned: Vec<(u32, u32, &str)> = c
        .diagnostics
        .iter()
        .map(|d| {
            let at = d.span.expect("placed").start;
            (at.line, at.col, d.code)
        })
        .collect();
    assert_eq!(
        warned,
        [
            (4, 28, "duplicate-entry"),
            (7, 49, "duplicate-entry"),
            (8, 42, "duplicate-entry")
        ]
    );
    let rendered = c.render();
    assert!(
        rendered.contains("`X-Id` repeats `x-id` in `headers`"),
        "{rendered}"
    );
}

/// A route without `methods` takes every method, also ones outside the
/// eight v1 names, so routes listing all eight do not shadow it.
#[test]
fn a_route_for_any_method_is_not_shadowed_by_the_eight_methods() {
    let ir = compiles(
        "gatefold: 1
apis:
  a:
    policies: [{ mock: {} }]
    routes:
      listed: { path: /x, methods: [GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE] }
      rest:   { path: /x }
",
    );
    assert_eq!(ir.routes.len(), 2);
    // Shadowing is judged per host: one api per host covers neither alone.
    let c = compile_str(
        "review.yaml",
        "gatefold: 1
apis:
  one:
    hosts: [a.example.com]
    policies: [{ mock: {} }]
    routes:
      x: { path: /x, methods: [GET] }
  two:
    hosts: [b.example.com]
    policies: [{ mock: {} }]
    routes:
      x: { path: /x }
  three:
    hosts: [a.example.com, b.example.com]
    policies: [{ mock: {} }]
    routes:
      x: { path: /x, methods: [GET, POST] }
",
    );
    // `POST` on a.example.com still reaches `three.x`; `GET` goes to `one.x`
    // (listed first), and b.example.com is all `two.x`'s.
    let Some(ir) = &c.ir else {
        panic!("{}", c.render())
    };
    let chosen =
        |host: &str, method: Method| route_for(ir, host, method, "/x").map(|r| r.id.to_string());
    assert_eq!(
        chosen("a.example.com", Method::Post).as_deref(),
        Some("three.x")
    );
    assert_eq!(
        chosen("a.example.com", Method::Get).as_deref(),
        Some("one.x")
    );
    assert_eq!(
        chosen("b.example.com", Method::Post).as_deref(),
        Some("two.x")
    );
    assert_eq!(chosen("c.example.com", Method::Get), None);
}

/// The route a request goes to: the IR lists routes in precedence order,
/// so the first whose host, path and method match.
fn route_for<'i>(
    ir: &'i gatefold_compiler::ir::ValidIr,
    host: &str,
    method: Method,
    path: &str,
) -> Option<&'i gatefold_compiler::ir::Route> {
    ir.routes
        .iter()
        .find(|r| {
            r.matcher.matches_host(Some(host))
                && r.matcher.matches_method(method)
                && r.matcher.path.matches(path).is_some()
        })
        .map(|r| &**r)
}

/// `ValidIr::from_json` checks what back ends rely on, not only the hash:
/// anyone can recompute a hash after editing an IR file.
#[test]
fn an_ir_file_must_still_be_valid_once_resealed() {
    use gatefold_compiler::ir::{ContentHash, Ir, ValidIr};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/petstore");
    let ir = gatefold_compiler::compile_path(&path).ir.expect("compiles");
    let original: serde_json::Value = serde_json::from_str(&ir.to_json()).unwrap();
    // Applies `edit`, reseals the hash and loads the result.
    let load = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = original.clone();
        edit(&mut v);
        let mut raw: Ir = serde_json::from_value(v).expect("still an IR in shape");
        raw.hash = ContentHash::of(&raw);
        ValidIr::from_json(&serde_json::to_string(&raw).unwrap())
    };
    load(&|_| {}).expect("the untouched IR loads");
    let refused = |what: &str, edit: &dyn Fn(&mut serde_json::Value), expected: &str| {
        let err = load(edit).expect_err(what);
        assert!(err.contains(expected), "{what}: {err}");
    };
    refused(
        "a route twice",
        &|v| {
            let first = v["routes"][0].clone();
            v["routes"].as_array_mut().unwrap().push(first);
        },
        "is listed twice",
    );
    refused(
        "an unknown upstream",
        &|v| {
            let r = v["routes"].as_array_mut().unwrap().iter_mut();
            for route in r.filter(|r| r["upstream"].is_string()) {
                route["upstream"] = "nowhere".into();
            }
        },
        "upstream `nowhere`, which is not defined",
    );
    refused(
        "a chain out of order",
        &|v| {
            let route = v["routes"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|r| r["chain"].as_array().unwrap().len() > 1)
                .unwrap();
            route["chain"].as_array_mut().unwrap().reverse();
        },
        "not in phase order",
    );
    refused(
        "an instance no route runs",
        &|v| {
            let mut inst = v["policies"]["api/pets/cors"].clone();
            inst["attachment"] = serde_json::json!({ "api": "other" });
            v["policies"]["api/other/cors"] = inst;
            let at = v["sources"]["policies"]["api/pets/cors"].clone();
            v["sources"]["policies"]["api/other/cors"] = at;
        },
        "policy `api/other/cors` is in no route's chain",
    );
    refused(
        "a source map without a route",
        &|v| {
            let id = v["routes"][0]["id"].as_str().unwrap().to_string();
            v["sources"]["routes"].as_object_mut().unwrap().remove(&id);
        },
        "the source map has no entry for route",
    );
    refused(
        "a source map without a policy",
        &|v| {
            let sources = v["sources"]["policies"].as_object_mut().unwrap();
            let id = sources.keys().next().unwrap().clone();
            sources.remove(&id);
        },
        "the source map has no entry for policy",
    );
    refused(
        "a chain naming an instance attached to another api",
        &|v| {
            let route = v["routes"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|r| {
                    r["chain"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p.as_str().unwrap().starts_with("api/"))
                })
                .unwrap();
            for p in route["chain"].as_array_mut().unwrap() {
                let id = p.as_str().unwrap().to_string();
                if let Some(rest) = id.strip_prefix("api/") {
                    let kind = rest.split_once('/').unwrap().1;
                    *p = format!("api/elsewhere/{kind}").into();
                }
            }
        },
        "which the IR does not define",
    );
    refused(
        "an instance whose id names another place",
        &|v| {
            let policies = v["policies"].as_object_mut().unwrap();
            let id = policies
                .keys()
                .find(|k| k.starts_with("api/"))
                .unwrap()
                .clone();
            policies[&id]["attachment"] = "gateway".into();
        },
        "attached at `gateway`",
    );
    refused(
        "an acl group no consumer is in",
        &|v| {
            for p in v["policies"].as_object_mut().unwrap().values_mut() {
                if p["policy"]["kind"] == "acl" {
                    p["policy"]["allow"] = serde_json::json!(["nobody"]);
                }
            }
        },
        "checks group `nobody`",
    );
}

/// Unused upstreams, policies and consumers are read off the reference
/// graph: routes use named policies and upstreams (their own or their
/// api's, and traffic-split destinations) and identify consumers through
/// the authentication kinds in their chains.
#[test]
fn unused_definitions_come_from_the_reference_graph() {
    let c = compile_str(
        "review.yaml",
        r#"gatefold: 1
upstreams:
  main: { targets: [{ url: "http://127.0.0.1:9001" }] }
  canary: { targets: [{ url: "http://127.0.0.1:9002" }] }
  spare: { targets: [{ url: "http://127.0.0.1:9003" }] }
  fallback: { targets: [{ url: "http://127.0.0.1:9004" }] }
consumers:
  keyed: { credentials: { key: { env: KEYED_KEY } } }
  basic: { credentials: { basic: { user: b, password: { env: BASIC_PASSWORD } } } }
policies:
  split: { traffic-split: { to: [{ upstream: main, weight: 90 }, { upstream: canary, weight: 10 }] } }
  auth: { key-auth: {} }
  on-route: { cors: { origins: ["*"] } }
  nobody: { cors: { origins: ["*"] } }
apis:
  a:
    upstream: fallback
    policies: [auth]
    routes:
      r: { path: /r, upstream: main, policies: [on-route] }
      s: { path: /s, upstream: main, policies: [split] }
"#,
    );
    assert!(c.ir.is_some(), "{}", c.render());
    let mut unused: Vec<&str> = c
        .diagnostics
        .iter()
        .filter(|d| d.code == "unused-definition")
        .map(|d| d.message.split('`').nth(1).unwrap())
        .collect();
    unused.sort_unstable();
    // `fallback`: every route of its api names its own upstream.
    assert_eq!(unused, ["basic", "fallback", "nobody", "spare"]);
}

/// A mock's JSON body has its object keys sorted: the order written is not
/// meaning, so it changes neither the IR nor its hash.
#[test]
fn mock_json_keys_are_sorted() {
    let spec = |json: &str| {
        format!(
            "gatefold: 1\napis:\n  a:\n    routes:\n      r: {{ path: /r, policies: [{{ mock: {{ json: {json} }} }}] }}\n"
        )
    };
    let a = compiles(&spec("{ zeta: 1, alpha: { y: 2, b: 3 } }"));
    let b = compiles(&spec("{ alpha: { b: 3, y: 2 }, zeta: 1 }"));
    assert_eq!(a.hash, b.hash);
    let body = match a.policies[&a.routes[0].chain[0]].policy.clone() {
        gatefold_compiler::ir::Policy::Mock(m) => m.body,
        other => panic!("{other:?}"),
    };
    let gatefold_compiler::ir::policy::MockBody::Json(json) = body else {
        panic!("a JSON body");
    };
    assert_eq!(json.to_string(), r#"{"alpha":{"b":3,"y":2},"zeta":1}"#);
}

/// Bundles that double a bundle adding no step (an unknown name, an empty
/// list) never reach the step bound; they are walked once per level, and
/// the unknown name is reported once.
#[test]
fn a_bundle_bomb_without_steps_is_walked_once() {
    for leaf in ["[nope]", "[]"] {
        let mut text = format!("gatefold: 1\npolicies:\n  b0: {leaf}\n");
        for i in 1..=40 {
            text.push_str(&format!("  b{i}: [b{p}, b{p}]\n", p = i - 1));
        }
        text.push_str(
            "gateway: { policies: [b40] }\napis:\n  a:\n    policies: [b40]\n    routes:\n      r: { path: /, policies: [b40, { mock: {} }] }\n",
        );
        let found = codes(&text);
        let unknown = found.iter().filter(|c| **c == "unknown-policy").count();
        assert_eq!(unknown, usize::from(leaf == "[nope]"), "{leaf}: {found:?}");
    }
}
