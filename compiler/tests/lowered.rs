//! Lowered routes: each route's effective meaning is computed by the
//! compiler (back ends and the reference gateway only read it).

use gatefold_compiler::compile_str;
use gatefold_compiler::ir::{Duration, ProxyPlan, UpstreamPath, ValidIr};

const SPEC: &str = r#"gatefold: 1
gateway:
  baseline: { max-body: 1MiB, timeouts: { connect: 2s, read: 20s } }
upstreams:
  slow:
    targets: [{ url: "http://127.0.0.1:9001" }]
    timeouts: { read: 50s }
    retries: { attempts: 2, on: [connect-failure] }
  v2: { targets: [{ url: "http://127.0.0.1:9002" }] }
consumers:
  c: { credentials: { key: { env: C_KEY }, basic: { user: u, password: { env: C_PW } } } }
apis:
  a:
    base-path: /a
    strip-base-path: true
    upstream: slow
    policies:
      - key-auth: { in: header, name: x-key }
      - basic-auth: { realm: shop }
    routes:
      plain: { path: /plain }
      tuned:
        path: /tuned
        policies:
          - timeout: { connect: 1s }
          - request-size-limit: { max: 64KiB }
      split:
        path: /split
        policies:
          - traffic-split:
              to: [{ upstream: slow, weight: 90 }, { upstream: v2, weight: 10 }]
              header-match: [{ name: x-beta, value: "1", upstream: v2 }]
  b:
    upstream: v2
    routes:
      moved: { path: "/b/{id}", policies: [{ rewrite: { path: "/items/{id}" } }] }
"#;

fn ir() -> ValidIr {
    let c = compile_str("s.yaml", SPEC);
    c.ir.clone().unwrap_or_else(|| panic!("{}", c.render()))
}

fn route<'a>(ir: &'a ValidIr, id: &str) -> &'a gatefold_compiler::ir::Route {
    ir.route(&id.parse().unwrap()).expect("route")
}

/// Timeouts field by field: the route's, else the upstream's, else the
/// baseline; retries: the route's, else the upstream's.
#[test]
fn destinations_carry_effective_timeouts_and_retries() {
    let ir = ir();
    let single = |id: &str| match &route(&ir, id).lowered.proxy {
        Some(ProxyPlan::Single(d)) => d.clone(),
        other => panic!("{id}: {other:?}"),
    };
    let plain = single("a.plain");
    assert_eq!(plain.upstream.as_str(), "slow");
    assert_eq!(plain.connect_timeout, Duration::from_secs(2), "baseline");
    assert_eq!(plain.read_timeout, Duration::from_secs(50), "upstream's");
    assert_eq!(plain.retry.as_ref().map(|r| r.attempts), Some(2));
    let tuned = single("a.tuned");
    assert_eq!(tuned.connect_timeout, Duration::from_secs(1), "route's");
    assert_eq!(tuned.read_timeout, Duration::from_secs(50));
    let moved = single("b.moved");
    assert_eq!(moved.read_timeout, Duration::from_secs(20), "baseline");
    assert_eq!(moved.retry, None);
}

/// A split lists each upstream once, header matches first.
#[test]
fn a_split_names_its_instance_and_destinations_in_order() {
    let ir = ir();
    match &route(&ir, "a.split").lowered.proxy {
        Some(ProxyPlan::Split { policy, to }) => {
            assert_eq!(policy.to_string(), "route/a.split/traffic-split");
            let names: Vec<&str> = to.iter().map(|d| d.upstream.as_str()).collect();
            assert_eq!(names, ["v2", "slow"]);
            assert_eq!(to[1].read_timeout, Duration::from_secs(50));
        }
        other => panic!("{other:?}"),
    }
}

/// `strip-base-path` and `rewrite` both lower to the upstream path.
#[test]
fn upstream_paths_are_lowered() {
    let ir = ir();
    assert_eq!(
        route(&ir, "a.plain").lowered.upstream_path,
        UpstreamPath::Prefix {
            strip: Some("/a".into()),
            add: None
        }
    );
    match &route(&ir, "b.moved").lowered.upstream_path {
        UpstreamPath::Template(t) => assert_eq!(t.to_string(), "/items/{id}"),
        other => panic!("{other:?}"),
    }
}

/// The body limit is the route's `request-size-limit`, else the baseline.
#[test]
fn body_limits_are_effective() {
    let ir = ir();
    assert_eq!(route(&ir, "a.tuned").lowered.max_body.0, 64 * 1024);
    assert_eq!(route(&ir, "a.plain").lowered.max_body.0, 1 << 20);
}

/// The authentication group: methods in the order tried, the basic realm.
#[test]
fn auth_groups_list_methods_and_realm() {
    let ir = ir();
    let g = route(&ir, "a.plain").lowered.auth.clone().expect("a group");
    let ids: Vec<String> = g.methods.iter().map(ToString::to_string).collect();
    assert_eq!(ids, ["api/a/key-auth", "api/a/basic-auth"]);
    assert_eq!(g.realm.as_deref(), Some("shop"));
    assert!(route(&ir, "b.moved").lowered.auth.is_none());
}

/// An IR file whose lowered meaning was edited (and the hash resealed) is
/// refused: back ends trust it instead of recomputing it.
#[test]
fn an_edited_lowering_is_refused() {
    use gatefold_compiler::ir::{ContentHash, Ir};
    let mut raw: Ir = serde_json::from_str(&ir().to_json()).unwrap();
    std::sync::Arc::make_mut(&mut raw.routes[0])
        .lowered
        .max_body
        .0 += 1;
    raw.hash = ContentHash::of(&raw);
    let err = ValidIr::from_json(&serde_json::to_string(&raw).unwrap()).unwrap_err();
    assert!(err.contains("lowered meaning"), "{err}");
}
