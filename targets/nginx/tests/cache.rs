//! `cache` on nginx (proxy_cache) keys as the spec says: by consumer (one
//! consumer is never served another's stored response) and by the `vary`
//! headers as later phases see them (a header a jwt wrote, not the
//! client's copy).

use crate::common;

use common::*;

#[test]
fn one_consumer_never_gets_anothers_cached_response() {
    let echo = Echo::start();
    let spec = format!(
        r#"
gatefold: 1
upstreams: {{ u: {{ targets: [ {{ url: "http://{}" }} ] }} }}
consumers:
  alice: {{ credentials: {{ key: {{ env: CACHE_ALICE_KEY }} }} }}
  bob: {{ credentials: {{ key: {{ env: CACHE_BOB_KEY }} }} }}
apis:
  a:
    upstream: u
    policies:
      - key-auth: {{ in: header, name: x-api-key }}
      - cache: {{ ttl: 1h }}
    routes: {{ r: {{ path: /* }} }}
"#,
        echo.addr
    );
    let ir = compile(&spec);
    let ng = run(
        &ir,
        &[
            ("CACHE_ALICE_KEY", "alice-key"),
            ("CACHE_BOB_KEY", "bob-key"),
        ],
    );
    let as_ = |key: &str| get(ng.addr, "/mine", &[("x-api-key", key)]);
    assert_eq!(as_("alice-key").status, 200);
    assert_eq!(echo.count(), 1);
    // Alice again: a hit.
    assert_eq!(as_("alice-key").status, 200);
    assert_eq!(
        echo.count(),
        1,
        "alice's second request is served from the cache"
    );
    // Bob, same method, host and path: his own entry, not alice's.
    assert_eq!(as_("bob-key").status, 200);
    assert_eq!(echo.count(), 2, "bob must not get alice's stored response");
    assert_eq!(as_("bob-key").status, 200);
    assert_eq!(echo.count(), 2);
}

#[test]
fn a_vary_header_is_the_one_the_jwt_wrote() {
    let echo = Echo::start();
    let spec = format!(
        r#"
gatefold: 1
upstreams: {{ u: {{ targets: [ {{ url: "http://{}" }} ] }} }}
apis:
  a:
    upstream: u
    policies:
      - jwt: {{ algorithms: [HS256], secret: {{ env: CACHE_JWT_SECRET }}, claims-to-headers: {{ tenant: x-tenant }} }}
      - cache: {{ ttl: 1h, vary: [x-tenant] }}
    routes: {{ r: {{ path: /* }} }}
"#,
        echo.addr
    );
    let ir = compile(&spec);
    let ng = run(&ir, &[("CACHE_JWT_SECRET", "cache-secret")]);
    let header = br#"{"alg":"HS256"}"#;
    let t1 = hs256_token("cache-secret", header, br#"{"sub":"x","tenant":"t1"}"#);
    let t2 = hs256_token("cache-secret", header, br#"{"sub":"x","tenant":"t2"}"#);
    let as_ = |token: &str| {
        let auth = format!("Bearer {token}");
        get(
            ng.addr,
            "/report",
            &[("authorization", &auth), ("x-tenant", "spoofed")],
        )
    };
    assert_eq!(as_(&t1).status, 200);
    assert_eq!(echo.count(), 1);
    assert_eq!(echo.last().header("x-tenant"), Some("t1"));
    // Same client headers, another tenant in the token: its own entry.
    assert_eq!(as_(&t2).status, 200);
    assert_eq!(echo.count(), 2, "t2 must not get t1's stored response");
    assert_eq!(as_(&t1).status, 200);
    assert_eq!(echo.count(), 2, "t1 again is a hit");
}
