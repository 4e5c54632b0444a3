//! Dispatch through the compiler's view over real sockets: host classes
//! with copied wildcard and host-less routes, 405 allow sets where patterns
//! overlap only in part, and preflights routed by the asked method.

use crate::common;

use common::*;

const SPEC: &str = "gatefold: 1
apis:
  exact:
    hosts: [a.example.com]
    routes:
      only-a: { path: /pets/new, methods: [PUT], policies: [{ mock: { body: exact } }] }
  wild:
    hosts: ['*.example.com']
    routes:
      kind: { path: '/{kind}/new', methods: [GET], policies: [{ mock: { body: wild } }] }
  any:
    routes:
      pets:
        path: /pets/*
        methods: [POST]
        policies:
          - cors: { origins: ['https://app.example'] }
          - mock: { body: any }
";

/// A wildcard route and a host-less route are both seen under an exact
/// host; a host no class names sees only host-less routes; where
/// `/{kind}/new` and `/pets/*` overlap (`/pets/new`), the 405 names the
/// methods of every route taking that path, and only those.
#[tokio::test]
async fn host_classes_and_allow_sets() {
    let gw = gateway(SPEC).await;
    let req = |method: &'static str, host: &'static str, path: &'static str| {
        let addr = gw.addr;
        async move { send(addr, method, path, &[("host", host)], None).await }
    };
    assert_eq!(
        req("PUT", "a.example.com", "/pets/new").await.text(),
        "exact"
    );
    assert_eq!(
        req("GET", "A.example.com:80", "/pets/new").await.text(),
        "wild"
    );
    assert_eq!(
        req("POST", "a.example.com", "/pets/new").await.text(),
        "any"
    );
    let r = req("DELETE", "a.example.com", "/pets/new").await;
    r.assert_error(405, "method not allowed");
    assert_eq!(r.header("allow"), Some("GET, POST, PUT"));
    // Under another subdomain the exact route is absent.
    let r = req("DELETE", "b.example.com", "/pets/new").await;
    assert_eq!(r.header("allow"), Some("GET, POST"));
    let r = req("DELETE", "b.example.com", "/cats/new").await;
    assert_eq!(r.header("allow"), Some("GET"));
    // The default class: host-less routes only.
    let r = req("DELETE", "other.org", "/pets/new").await;
    assert_eq!(r.header("allow"), Some("POST"));
    req("GET", "other.org", "/cats/new")
        .await
        .assert_error(404, "no route");
}

/// A preflight asking about POST goes to the cors route; asking about GET
/// (taken by the wildcard route, which has no cors) it is an ordinary
/// OPTIONS request, which no route takes: 405.
#[tokio::test]
async fn preflight_follows_the_asked_method() {
    let gw = gateway(SPEC).await;
    let preflight = |asked: &'static str| {
        let addr = gw.addr;
        async move {
            let h = [
                ("host", "b.example.com"),
                ("origin", "https://app.example"),
                ("access-control-request-method", asked),
            ];
            send(addr, "OPTIONS", "/pets/new", &h, None).await
        }
    };
    let r = preflight("POST").await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let r = preflight("GET").await;
    r.assert_error(405, "method not allowed");
    assert_eq!(r.header("allow"), Some("GET, POST"));
}
