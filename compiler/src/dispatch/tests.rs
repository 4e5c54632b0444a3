//! The projection on small specs, and the property that the view answers
//! every request as the IR's first-match list does.

use super::*;
use crate::ir::ValidIr;
use std::collections::HashSet;

use crate::compile_valid as compile;

fn spec(apis: &str) -> ValidIr {
    compile(&format!(
        "gatefold: 1\ngateway: {{ name: t }}\nupstreams:\n  up: {{ targets: [{{ url: http://127.0.0.1:9 }}] }}\napis:\n{apis}"
    ))
}

fn ids(ir: &ValidIr, routes: &[RouteIx]) -> Vec<String> {
    routes
        .iter()
        .map(|r| ir.routes[*r].id.to_string())
        .collect()
}

fn class<'v>(view: &'v DispatchView, host: Option<&str>) -> &'v HostClass {
    let want: Option<HostPattern> = host.map(|h| h.parse().unwrap());
    view.classes()
        .iter()
        .find(|c| c.host == want)
        .unwrap_or_else(|| panic!("no class {host:?}"))
}

fn get(m: &str) -> Option<Method> {
    Some(m.parse().unwrap())
}

/// A sample request's headers (lower-case names) and raw query.
#[derive(Clone, Debug, Default)]
struct Fields {
    headers: Vec<(String, String)>,
    query: Option<String>,
}

impl Fields {
    fn meets(&self, c: &crate::ir::Conditions) -> bool {
        c.holds(
            |n| {
                self.headers
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.as_bytes())
            },
            self.query.as_deref(),
        )
    }

    /// A request meeting exactly the conditions `c`.
    fn meeting(c: &crate::ir::Conditions) -> Fields {
        let query: Vec<String> = c.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Fields {
            headers: c
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            query: (!query.is_empty()).then(|| query.join("&")),
        }
    }
}

/// The answer of the IR itself: the first route of the whole list that
/// takes host, path, method and whose conditions hold; else 405 with the
/// methods of the routes taking host and path whose conditions hold; else
/// 404. (policy-spec "Matching".)
fn ir_answer(
    ir: &Ir,
    host: Option<&str>,
    path: &str,
    method: Option<Method>,
    fields: &Fields,
) -> Dispatch {
    let mut allow = MethodSet::EMPTY;
    for (i, r) in ir.routes.iter().enumerate() {
        if !r.matcher.matches_host(host)
            || !r.matcher.path.is_match(path)
            || !fields.meets(&r.matcher.conditions)
        {
            continue;
        }
        let ms = MethodSet::of(&r.matcher);
        if ms.contains(method) {
            return Dispatch::Route(i);
        }
        allow = allow.union(ms);
    }
    if allow.is_empty() {
        Dispatch::NotFound
    } else {
        Dispatch::MethodNotAllowed(allow.methods().map(Some).collect())
    }
}

const HOSTS: &str = "
  wild:
    hosts: ['*.example.com']
    upstream: up
    routes:
      w: { path: /w }
      shared: { path: /s, methods: [GET] }
  exact:
    hosts: [a.example.com]
    upstream: up
    routes:
      e: { path: /e }
      shared: { path: /s, methods: [POST] }
  other:
    hosts: [b.other.org]
    upstream: up
    routes:
      o: { path: /o }
  any:
    upstream: up
    routes:
      all: { path: /*, methods: [GET] }
";

/// Classes come exact, then wildcard, then default; a wildcard route is
/// copied into the exact class it covers, in IR order; host-less routes are
/// in every class; the default class has only host-less routes; a wildcard
/// that does not cover an exact host stays out of its class.
#[test]
fn classes_copy_wildcard_and_hostless_routes_in_ir_order() {
    let ir = spec(HOSTS);
    let view = DispatchView::new(&ir);
    let hosts: Vec<String> = view
        .classes()
        .iter()
        .map(|c| c.host.as_ref().map_or("default".into(), |h| h.to_string()))
        .collect();
    assert_eq!(
        hosts,
        ["a.example.com", "b.other.org", "*.example.com", "default"]
    );

    let in_ir_order = |routes: &[RouteIx]| routes.windows(2).all(|w| w[0] < w[1]);
    let a = class(&view, Some("a.example.com"));
    assert!(in_ir_order(&a.routes));
    let mut a_ids = ids(&ir, &a.routes);
    a_ids.sort();
    assert_eq!(
        a_ids,
        [
            "any.all",
            "exact.e",
            "exact.shared",
            "wild.shared",
            "wild.w"
        ]
    );
    // Same path, both taking a.example.com: IR order decides between them,
    // and the class keeps it.
    let pos = |id: &str| ids(&ir, &a.routes).iter().position(|x| x == id).unwrap();
    let ir_pos = |id: &str| {
        ir.routes
            .iter()
            .position(|r| r.id.to_string() == id)
            .unwrap()
    };
    assert_eq!(
        pos("wild.shared") < pos("exact.shared"),
        ir_pos("wild.shared") < ir_pos("exact.shared")
    );

    let b = class(&view, Some("b.other.org"));
    assert_eq!(ids(&ir, &b.routes), ["other.o", "any.all"]);
    let w = class(&view, Some("*.example.com"));
    let mut w_ids = ids(&ir, &w.routes);
    w_ids.sort();
    assert_eq!(w_ids, ["any.all", "wild.shared", "wild.w"]);
    assert_eq!(ids(&ir, &view.default_class().routes), ["any.all"]);
}

/// The selection rule: exact (any case, port ignored), then the longest
/// wildcard, then default; no host at all is the default class.
#[test]
fn class_selection_rule() {
    let ir = compile(
        "gatefold: 1\ngateway: { name: t }\nupstreams:\n  up: { targets: [{ url: http://127.0.0.1:9 }] }\napis:
  broad: { hosts: ['*.example.com'], upstream: up, routes: { r: { path: /b } } }
  narrow: { hosts: ['*.eu.example.com'], upstream: up, routes: { r: { path: /n } } }
  one: { hosts: [x.eu.example.com], upstream: up, routes: { r: { path: /o } } }
",
    );
    let view = DispatchView::new(&ir);
    let host_of = |h: Option<&str>| {
        view.class_for(h)
            .host
            .as_ref()
            .map_or("default".into(), |p| p.to_string())
    };
    assert_eq!(host_of(Some("X.EU.example.com:8443")), "x.eu.example.com");
    assert_eq!(host_of(Some("y.eu.example.com")), "*.eu.example.com");
    assert_eq!(host_of(Some("a.b.example.com")), "*.example.com");
    assert_eq!(host_of(Some("eu.example.com")), "*.example.com");
    assert_eq!(host_of(Some("example.com")), "default");
    assert_eq!(host_of(Some(".example.com")), "default");
    assert_eq!(host_of(None), "default");
    // The narrower wildcard class holds the broader wildcard's route too.
    let narrow = class(&view, Some("*.eu.example.com"));
    let mut n = ids(&ir, &narrow.routes);
    n.sort();
    assert_eq!(n, ["broad.r", "narrow.r"]);
    // The broader one does not hold the narrower's route.
    assert_eq!(
        ids(&ir, &class(&view, Some("*.example.com")).routes),
        ["broad.r"]
    );
}

/// A path group lists broader patterns' routes too, so the 405 allow set
/// and the fall-through are the group's alone: `/pets/{id}` takes GET, the
/// prefix takes DELETE, the rest get 405 with both.
#[test]
fn method_groups_and_allow_sets() {
    let ir = spec(
        "  pets:
    upstream: up
    base-path: /pets
    routes:
      get: { path: '/{id}', methods: [GET, HEAD] }
      del: { path: /*, methods: [DELETE] }
      list: { path: /, methods: [GET] }
      any: { path: /open }
",
    );
    let view = DispatchView::new(&ir);
    let c = view.default_class();
    let shapes: Vec<String> = c.paths.iter().map(|g| g.pattern.to_string()).collect();
    assert_eq!(shapes, ["/pets", "/pets/open", "/pets/{id}", "/pets/*"]);
    let id = |s: &str| {
        ir.routes
            .iter()
            .position(|r| r.id.to_string() == s)
            .unwrap()
    };
    let g = c.path_group("/pets/7").unwrap();
    assert_eq!(g.pattern.to_string(), "/pets/{id}");
    assert_eq!(g.dispatch(get("GET")), Dispatch::Route(id("pets.get")));
    assert_eq!(g.dispatch(get("DELETE")), Dispatch::Route(id("pets.del")));
    assert_eq!(
        g.allow.map(|a| a.to_string()).as_deref(),
        Some("GET, HEAD, DELETE")
    );
    assert_eq!(
        g.dispatch(None),
        Dispatch::MethodNotAllowed(g.allow.unwrap())
    );
    // `/pets` is taken by `list` and by the prefix.
    let g = c.path_group("/pets").unwrap();
    assert_eq!(
        g.allow.map(|a| a.to_string()).as_deref(),
        Some("GET, DELETE")
    );
    // A route without methods takes every method: no 405 there.
    let g = c.path_group("/pets/open").unwrap();
    assert_eq!(g.allow, None);
    assert_eq!(g.dispatch(None), Dispatch::Route(id("pets.any")));
    assert_eq!(
        view.dispatch(None, "/nothing", get("GET")),
        Dispatch::NotFound
    );
}

/// Two patterns that overlap without one covering the other get a group
/// for their intersection, before both, listing the routes of both.
#[test]
fn partial_overlaps_get_an_intersection_group() {
    let ir = spec(
        "  a:
    upstream: up
    routes:
      new: { path: '/{kind}/new', methods: [GET] }
      pets: { path: /pets/*, methods: [POST] }
",
    );
    let view = DispatchView::new(&ir);
    let c = view.default_class();
    let shapes: Vec<(String, bool)> = c
        .paths
        .iter()
        .map(|g| (g.pattern.to_string(), g.synthesized))
        .collect();
    assert_eq!(
        shapes,
        [
            ("/pets/new".to_string(), true),
            ("/{kind}/new".to_string(), false),
            ("/pets/*".to_string(), false)
        ]
    );
    let g = c.path_group("/pets/new").unwrap();
    assert!(g.synthesized);
    assert_eq!(g.allow.map(|a| a.to_string()).as_deref(), Some("GET, POST"));
    assert_eq!(
        c.path_group("/cats/new")
            .unwrap()
            .allow
            .unwrap()
            .to_string(),
        "GET"
    );
    assert_eq!(
        c.path_group("/pets/old")
            .unwrap()
            .allow
            .unwrap()
            .to_string(),
        "POST"
    );
}

/// Preflight entries name the route that takes the asked method, when its
/// chain has `cors`; a method taken by a route without cors has none.
#[test]
fn preflight_entries_follow_the_asked_method() {
    let ir = spec(
        "  a:
    upstream: up
    routes:
      read:
        path: /items
        methods: [GET]
        policies: [{ cors: { origins: ['https://app.example'] } }]
      write: { path: /items, methods: [POST] }
      opts: { path: /items, methods: [OPTIONS] }
",
    );
    let view = DispatchView::new(&ir);
    let id = |s: &str| {
        ir.routes
            .iter()
            .position(|r| r.id.to_string() == s)
            .unwrap()
    };
    let g = view.default_class().path_group("/items").unwrap();
    assert_eq!(g.preflight.len(), 1);
    assert_eq!(g.preflight[0].route, id("a.read"));
    assert_eq!(g.preflight[0].methods.to_string(), "GET");
    assert_eq!(
        view.preflight(None, "/items", get("GET")),
        Some(id("a.read"))
    );
    assert_eq!(view.preflight(None, "/items", get("POST")), None);
    assert_eq!(view.preflight(None, "/items", None), None);
    // Not a preflight: an ordinary OPTIONS request goes to `opts`.
    assert_eq!(
        view.dispatch(None, "/items", get("OPTIONS")),
        Dispatch::Route(id("a.opts"))
    );
}

/// Sample request paths for a spec: every route path with its params
/// filled in two ways, with a trailing slash, one segment deeper, and a
/// few unrelated paths.
fn sample_paths(ir: &Ir) -> Vec<String> {
    let mut out = vec!["/".to_string(), "/nothing".into(), "/a/b/c/d".into()];
    for r in &ir.routes {
        for fill in ["1", "new"] {
            let mut p = String::new();
            for s in &r.matcher.path.segments {
                p.push('/');
                match s {
                    Segment::Literal(l) => p.push_str(l),
                    Segment::Param(_) => p.push_str(fill),
                }
            }
            if p.is_empty() {
                p.push('/');
            }
            out.push(format!("{}/x", p.trim_end_matches('/')));
            if p != "/" {
                out.push(format!("{p}/"));
            }
            out.push(p);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Checks every sample request against the IR: "pick the class as a
/// target would, then its first path group, then the method" gives what
/// the IR's first-match list gives, 405 allow sets included; and so does
/// the first match in the class's own route list. Returns the count.
fn agrees_with_ir(name: &str, ir: &ValidIr) -> usize {
    let view = DispatchView::new(ir);
    let mut hosts: Vec<Option<String>> = vec![None, Some("unknown.invalid".into())];
    for cl in view.classes() {
        match &cl.host {
            Some(HostPattern::Exact(h)) => hosts.push(Some(format!("{}:8080", h.to_uppercase()))),
            Some(HostPattern::Wildcard(s)) => hosts.push(Some(format!("x{s}"))),
            None => {}
        }
    }
    let methods: Vec<Option<Method>> = Method::ALL.into_iter().map(Some).chain([None]).collect();
    // No header or query, and a request meeting each route's conditions.
    let mut requests = vec![Fields::default()];
    for r in &ir.routes {
        if !r.matcher.conditions.is_empty() {
            requests.push(Fields::meeting(&r.matcher.conditions));
        }
    }
    let mut checked = 0;
    for host in &hosts {
        let host = host.as_deref();
        for path in sample_paths(ir) {
            for &m in &methods {
                for fields in &requests {
                    let want = ir_answer(ir, host, &path, m, fields);
                    let holds = |r: RouteIx| fields.meets(&ir.routes[r].matcher.conditions);
                    let got = view.dispatch_with(host, &path, m, holds);
                    // Allow sets compare by their listed methods (what `allow` says).
                    let listed = |d: Dispatch| match d {
                        Dispatch::MethodNotAllowed(a) => {
                            Dispatch::MethodNotAllowed(a.methods().map(Some).collect())
                        }
                        d => d,
                    };
                    assert_eq!(
                        listed(got),
                        want,
                        "{name}: {host:?} {m:?} {path} {fields:?}"
                    );
                    let first = view.class_for(host).routes.iter().copied().find(|&r| {
                        let mt = &ir.routes[r].matcher;
                        mt.path.is_match(&path) && MethodSet::of(mt).contains(m) && holds(r)
                    });
                    match want {
                        Dispatch::Route(r) => {
                            assert_eq!(first, Some(r), "{name}: {host:?} {m:?} {path}")
                        }
                        _ => assert_eq!(first, None, "{name}: {host:?} {m:?} {path}"),
                    }
                    checked += 1;
                }
            }
        }
    }
    checked
}

/// The property over the example specs.
#[test]
fn the_view_answers_as_the_ir_does_on_the_examples() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    // examples/tls names a certificate that is never committed; its script
    // makes one (openssl) when none is there.
    let made = std::process::Command::new(root.join("tls/make-test-cert.sh")).status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "examples/tls/make-test-cert.sh failed"
    );
    let mut specs: Vec<std::path::PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        // A fleet example (a fleet file, not a spec) keeps its spec in `spec/`.
        .map(|p| {
            if p.join("fleet.yaml").is_file() {
                p.join("spec")
            } else {
                p
            }
        })
        .collect();
    specs.sort();
    let mut checked = 0;
    for dir in &specs {
        let c = crate::compile_path(dir);
        let Some(ir) = c.ir else {
            panic!("{}: {}", dir.display(), c.render())
        };
        checked += agrees_with_ir(&dir.display().to_string(), &ir);
    }
    assert!(
        specs.len() >= 4 && checked > 1000,
        "only {checked} requests checked"
    );
}

/// The same property over generated specs: exact and wildcard hosts,
/// templates, prefixes and the same path with different methods.
#[test]
fn the_view_answers_as_the_ir_does_on_generated_specs() {
    for seed in 0..4 {
        let text = crate::synth::spec(6, 12, seed);
        let ir = compile(&text);
        agrees_with_ir(&format!("synth seed {seed}"), &ir);
    }
}

/// The property over a spec whose routes have conditions: overlapping
/// patterns, conditions on some, several condition counts on one path,
/// conditions that contradict, and methods that differ.
#[test]
fn the_view_answers_as_the_ir_does_with_conditions() {
    let ir = spec(
        r#"  a:
    upstream: up
    routes:
      v2-any: { path: "/items/*", match: { headers: { x-version: "2" } } }
      items: { path: "/items/*", methods: [GET, POST] }
      v2-item: { path: "/items/{id}", methods: [GET], match: { headers: { x-version: "2" }, query: { format: json } } }
      v3-item: { path: "/items/{id}", methods: [GET, DELETE], match: { headers: { x-version: "3" } } }
      json: { path: "/items/{id}", methods: [PUT], match: { query: { format: json } } }
      only-v2: { path: /beta, methods: [GET], match: { headers: { x-version: "2" } } }
      beta-post: { path: /beta, methods: [POST] }
      tenant: { path: "/{kind}/new", methods: [GET], match: { headers: { x-tenant: acme } } }
"#,
    );
    assert!(agrees_with_ir("conditions", &ir) > 500);
}

/// A request failing a route's conditions is routed as if the route did
/// not exist: to the next route, else 405 with the methods of the routes
/// whose conditions hold, else 404.
#[test]
fn conditions_decide_route_405_and_404() {
    let ir = spec(
        r#"  a:
    upstream: up
    routes:
      beta: { path: /beta, methods: [GET], match: { headers: { x-version: "2" } } }
      beta-post: { path: /beta, methods: [POST] }
      lone: { path: /lone, methods: [GET], match: { query: { format: json } } }
      v2: { path: "/items/*", match: { headers: { x-version: "2" }, query: { format: json } } }
      items: { path: "/items/*" }
"#,
    );
    let view = DispatchView::new(&ir);
    let id = |s: &str| {
        ir.routes
            .iter()
            .position(|r| r.id.to_string() == s)
            .unwrap()
    };
    let v2 = |r: RouteIx| {
        ir.routes[r]
            .matcher
            .conditions
            .holds(|n| (n == "x-version").then_some(&b"2"[..]), None)
    };
    let json = |r: RouteIx| {
        ir.routes[r]
            .matcher
            .conditions
            .holds(|_| None, Some("format=json"))
    };
    let both = |r: RouteIx| {
        ir.routes[r].matcher.conditions.holds(
            |n| (n == "x-version").then_some(&b"2"[..]),
            Some("a=1&format=json"),
        )
    };
    let allow = |d: Dispatch| match d {
        Dispatch::MethodNotAllowed(a) => a.to_string(),
        other => format!("{other:?}"),
    };
    assert_eq!(
        view.dispatch_with(None, "/beta", get("GET"), v2),
        Dispatch::Route(id("a.beta"))
    );
    assert_eq!(
        allow(view.dispatch_with(None, "/beta", get("PUT"), v2)),
        "GET, POST"
    );
    // Without the header, `beta` does not exist: GET is not allowed.
    assert_eq!(allow(view.dispatch(None, "/beta", get("GET"))), "POST");
    // Only a conditional route on the path: 404 when it fails.
    assert_eq!(view.dispatch(None, "/lone", get("GET")), Dispatch::NotFound);
    assert_eq!(
        view.dispatch(None, "/lone", get("POST")),
        Dispatch::NotFound
    );
    assert_eq!(
        allow(view.dispatch_with(None, "/lone", get("POST"), json)),
        "GET"
    );
    // Both conditions needed: one alone falls through to `items`.
    assert_eq!(
        view.dispatch_with(None, "/items/1", get("GET"), both),
        Dispatch::Route(id("a.v2"))
    );
    assert_eq!(
        view.dispatch_with(None, "/items/1", get("GET"), v2),
        Dispatch::Route(id("a.items"))
    );
    // The group's static allow set is for requests meeting no condition.
    let g = view.default_class().path_group("/beta").unwrap();
    assert!(g.methods[0].conditional && !g.methods[1].conditional);
}

/// More conditions win where paths tie, whatever the listing order; paths
/// still come first.
#[test]
fn more_conditions_come_first_in_the_ir() {
    let ir = spec(
        r#"  a:
    upstream: up
    routes:
      plain: { path: "/items/{id}" }
      query: { path: "/items/{id}", match: { query: { format: json } } }
      two-query: { path: "/items/{id}", match: { query: { format: json, pretty: "1" } } }
      header: { path: "/items/{id}", match: { headers: { x-version: "2" } } }
      exact: { path: /items/new }
      prefix: { path: "/items/*", match: { headers: { x-version: "2", x-tenant: acme } } }
"#,
    );
    let order: Vec<String> = ir.routes.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(
        order,
        [
            "a.exact",
            "a.header",
            "a.two-query",
            "a.query",
            "a.plain",
            "a.prefix"
        ]
    );
}

/// The view built without its index: every earlier pattern compared in
/// the closure, every route of the class tried for each group. The
/// reference the indexed view must equal group for group, in order.
fn unindexed_paths(ir: &Ir, routes: &[RouteIx], has_cors: &[bool]) -> Vec<PathGroup> {
    let mut shapes: HashSet<PathPattern> = HashSet::new();
    let mut out: Vec<(PathPattern, bool)> = Vec::new();
    for &r in routes {
        let p = ir.routes[r].matcher.path.clone();
        if shapes.insert(erase(&p)) {
            out.push((p, false));
        }
    }
    let mut synthesized = 0;
    let mut k = 0;
    while k < out.len() {
        for j in 0..k {
            if synthesized >= MAX_SYNTHESIZED {
                break;
            }
            let (a, b) = (&out[k].0, &out[j].0);
            if relations::path_within(a, b) || relations::path_within(b, a) {
                continue;
            }
            if let Some(i) = relations::path_intersection(a, b) {
                if shapes.insert(erase(&i)) {
                    out.push((i, true));
                    synthesized += 1;
                }
            }
        }
        k += 1;
    }
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(out[i].0.precedence()));
    order
        .into_iter()
        .map(|i| {
            let (p, s) = out[i].clone();
            PathGroup::new(ir, p, s, routes.iter().copied(), has_cors)
        })
        .collect()
}

/// Asserts the view of `ir` equals the unindexed one; returns the number
/// of groups and of synthesized groups.
fn same_as_unindexed(name: &str, ir: &ValidIr) -> (usize, usize) {
    let view = DispatchView::new(ir);
    let has_cors: Vec<bool> = ir
        .routes
        .iter()
        .map(|r| r.policy_id(PolicyKind::Cors).is_some())
        .collect();
    let (mut groups, mut synthesized) = (0, 0);
    for class in view.classes() {
        let want = unindexed_paths(ir, &class.routes, &has_cors);
        for (i, (got, want)) in class.paths.iter().zip(&want).enumerate() {
            assert_eq!(got, want, "{name}: class {:?}, group {i}", class.host);
        }
        assert_eq!(class.paths.len(), want.len(), "{name}: {:?}", class.host);
        groups += want.len();
        synthesized += want.iter().filter(|g| g.synthesized).count();
    }
    (groups, synthesized)
}

/// A spec of routes whose paths overlap in every way the index cares
/// about: depth 0 to 3, literals, params and prefixes mixed over a small
/// alphabet (so that first and second literals repeat), on several hosts,
/// deterministic for `seed`.
fn overlapping_spec(seed: u64) -> String {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut below = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n) as usize
    };
    let hosts = [
        "",
        "[a.example.com]",
        "['*.example.com']",
        "[a.example.com, b.example.com]",
    ];
    let methods = [
        "",
        ", methods: [GET]",
        ", methods: [GET, POST]",
        ", methods: [POST, PUT]",
    ];
    let mut shapes = HashSet::new();
    let mut apis = String::new();
    for (a, hosts) in hosts.iter().enumerate() {
        apis.push_str(&format!("  api{a}:\n    upstream: up\n"));
        if !hosts.is_empty() {
            apis.push_str(&format!("    hosts: {hosts}\n"));
        }
        apis.push_str("    routes:\n");
        for r in 0..24 {
            let prefix = below(4) == 0;
            let mut path = String::new();
            for i in 0..below(4) {
                match below(5) {
                    // Prefix patterns hold literals only.
                    0 if !prefix => path.push_str(&format!("/{{p{i}}}")),
                    n => path.push_str(["/a", "/b", "/c", "/a"][n % 4]),
                }
            }
            if prefix {
                path.push_str("/*");
            } else if path.is_empty() {
                path.push('/');
            }
            // Routes of one shape would shadow one another.
            let shape: PathPattern = path.parse().unwrap();
            if !shapes.insert(erase(&shape)) {
                continue;
            }
            let m = methods[below(4)];
            apis.push_str(&format!("      r{r}: {{ path: \"{path}\"{m} }}\n"));
        }
    }
    apis
}

/// The indexed view equals the unindexed one on specs whose patterns
/// overlap, cover one another and share leading literals, and answers as
/// the IR does: a route the index fails to offer as a candidate changes a
/// group, a missed overlap a synthesized group.
#[test]
fn the_index_misses_no_candidate() {
    let (mut groups, mut synthesized) = (0, 0);
    for seed in 0..40 {
        let ir = spec(&overlapping_spec(seed));
        let (g, s) = same_as_unindexed(&format!("seed {seed}"), &ir);
        groups += g;
        synthesized += s;
        if seed < 4 {
            agrees_with_ir(&format!("overlapping seed {seed}"), &ir);
        }
    }
    assert!(
        groups > 1000 && synthesized > 100,
        "{groups} groups, {synthesized} synthesized"
    );
    for seed in 0..4 {
        let ir = compile(&crate::synth::spec(6, 12, seed));
        same_as_unindexed(&format!("synth seed {seed}"), &ir);
    }
}

/// A reload keeps its view only when a new one would come out the same:
/// `same_input` holds when only policies, upstreams or their options
/// change, and fails for any change of what a route takes or of its
/// `cors`.
#[test]
fn a_view_is_kept_only_for_the_same_routing() {
    let routes = |x: &str, methods: &str, extra: &str| {
        spec(&format!(
            "  a:\n    base-path: /a\n    upstream: up\n{extra}    routes:\n      r: {{ path: {x}, methods: [{methods}] }}\n      s: {{ path: \"/y/{{id}}\" }}\n"
        ))
    };
    let before = routes("/x", "GET", "");
    let same = [
        routes(
            "/x",
            "GET",
            "    policies:\n      - request-headers: { set: { x-a: \"1\" } }\n",
        ),
        routes(
            "/x",
            "GET",
            "    policies:\n      - rate-limit: { requests: 5, per: 1m }\n",
        ),
        routes("/x", "GET", "    preserve-host: true\n"),
    ];
    for after in &same {
        assert!(DispatchView::same_input(&before, after));
        assert_eq!(
            format!("{:?}", DispatchView::new(&before)),
            format!("{:?}", DispatchView::new(after)),
            "same_input held for different views"
        );
    }
    let different = [
        ("a path", routes("/z", "GET", "")),
        ("a method", routes("/x", "POST", "")),
        ("a host", routes("/x", "GET", "    hosts: [a.example.com]\n")),
        ("a condition", routes("/x, match: { headers: { x-v: \"2\" } }", "GET", "")),
        (
            "cors",
            routes("/x", "GET", "    policies:\n      - cors: { origins: [\"https://app.example\"] }\n"),
        ),
        (
            "a route",
            spec("  a:\n    base-path: /a\n    upstream: up\n    routes:\n      r: { path: /x, methods: [GET] }\n"),
        ),
    ];
    for (what, after) in &different {
        assert!(
            !DispatchView::same_input(&before, after),
            "same_input held across a change of {what}"
        );
    }
}
