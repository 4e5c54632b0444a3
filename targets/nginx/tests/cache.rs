//! `cache` on nginx (proxy_cache) keys by consumer, as the spec says: one
//! consumer is never served another's stored response.

mod common;

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
