//! Redirects built from the request (language 1.1) over real sockets:
//! `scheme`, `host`, `port`, `path` and `replace-prefix` replace parts of
//! the request's own URL; the rest comes from the request (scheme of the
//! listener, host and port of `host`, the path, the query string). And
//! what must never happen: a parameter, the kept path or the request's
//! `host` making `location` point at another host, or a query-string API
//! key leaking into it.

use crate::common;

use common::*;
use std::net::SocketAddr;

const SPEC: &str = "gatefold: 1
apis:
  a:
    routes:
      secure: { path: /s/*, policies: [{ redirect: { scheme: https, status: 301 } }] }
      moved: { path: /m/*, policies: [{ redirect: { host: new.example.com, port: 8443 } }] }
      host-only: { path: /h/*, policies: [{ redirect: { host: new.example.com } }] }
      http-80: { path: /d/*, policies: [{ redirect: { scheme: http, port: 80 } }] }
      https-8443: { path: /t/*, policies: [{ redirect: { scheme: https, port: 8443 } }] }
      v1: { path: /v1/*, policies: [{ redirect: { replace-prefix: /v2 } }] }
      to-root: { path: /strip/*, policies: [{ redirect: { replace-prefix: / } }] }
      item: { path: \"/items/{id}\", policies: [{ redirect: { path: \"/things/{id}\", status: 308 } }] }
      see: { path: /see, methods: [POST], policies: [{ redirect: { path: /result, status: 303 } }] }
";

/// GET `path` with this `host` header: (status, location).
async fn redirect(addr: SocketAddr, host: &str, path: &str) -> (u16, Option<String>) {
    let r = send(addr, "GET", path, &[("host", host)], None).await;
    (r.status, r.header("location").map(str::to_string))
}

#[tokio::test]
async fn parts_not_given_come_from_the_request() {
    let gw = gateway(SPEC).await;
    let addr = gw.addr;
    let cases = [
        // Only the scheme changes: the request's port is the old scheme's,
        // so it is left out; path and query are kept.
        (
            "old.example.com:8080",
            "/s/a?x=1",
            301,
            "https://old.example.com/s/a?x=1",
        ),
        (
            "old.example.com:8080",
            "/m/a",
            302,
            "http://new.example.com:8443/m/a",
        ),
        // Same scheme: the request's port is kept, or absent when the
        // request named none.
        (
            "old.example.com:8080",
            "/h/x",
            302,
            "http://new.example.com:8080/h/x",
        ),
        ("old.example.com", "/h/x", 302, "http://new.example.com/h/x"),
        // A scheme's default port is never written.
        (
            "old.example.com:8080",
            "/d/x",
            302,
            "http://old.example.com/d/x",
        ),
        (
            "old.example.com",
            "/t/x",
            302,
            "https://old.example.com:8443/t/x",
        ),
        // The prefix the route matched is replaced, the rest kept.
        (
            "h.example",
            "/v1/a/b?q=1",
            302,
            "http://h.example/v2/a/b?q=1",
        ),
        ("h.example", "/v1", 302, "http://h.example/v2"),
        ("h.example", "/v1/", 302, "http://h.example/v2/"),
        ("h.example", "/strip/a/b", 302, "http://h.example/a/b"),
        ("h.example", "/strip", 302, "http://h.example/"),
        // A whole path from a template.
        ("h.example", "/items/7", 308, "http://h.example/things/7"),
        ("[::1]:9000", "/items/7", 308, "http://[::1]:9000/things/7"),
    ];
    for (host, path, status, location) in cases {
        assert_eq!(
            redirect(addr, host, path).await,
            (status, Some(location.to_string())),
            "{host} {path}"
        );
    }
    let r = send(addr, "POST", "/see", &[("host", "h.example")], Some("x=1")).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("http://h.example/result"));
    gw.gw.shutdown().await;
}

/// Issue 7: a parameter value or the kept rest of the path can never make
/// `location` protocol-relative, and the request's `host` can never smuggle
/// a path or a user into it: 400.
#[tokio::test]
async fn the_kept_path_or_a_parameter_cannot_point_elsewhere() {
    let spec = "gatefold: 1
apis:
  a:
    routes:
      to-root: { path: /strip/*, policies: [{ redirect: { replace-prefix: / } }] }
      go: { path: \"/go/{id}\", policies: [{ redirect: { path: \"/{id}\" } }] }
      keep: { path: /keep/*, policies: [{ redirect: { scheme: https } }] }
";
    let gw = gateway(spec).await;
    let addr = gw.addr;
    for path in [
        // The rest of a prefix route after `/strip`: `/\evil.example`.
        "/strip/\\evil.example",
        // A parameter that starts with `\`.
        "/go/\\evil.example",
    ] {
        let (status, location) = redirect(addr, "h.example", path).await;
        assert_eq!(status, 400, "{path}: location {location:?}");
        assert_eq!(location, None, "{path}");
    }
    for host in ["evil.example/x", "user@evil.example", "evil.example\\x"] {
        let (status, location) = redirect(addr, host, "/keep/a").await;
        assert_eq!(status, 400, "host {host}: location {location:?}");
    }
    // `//` in a request path is merged by the baseline normalization
    // before routing, so the kept rest is `/evil.example`, a path on the
    // same host; an encoded backslash stays encoded.
    assert_eq!(
        redirect(addr, "h.example", "/strip//evil.example").await,
        (302, Some("http://h.example/evil.example".into()))
    );
    assert_eq!(
        redirect(addr, "h.example", "/strip/%5Cevil.example").await,
        (302, Some("http://h.example/%5Cevil.example".into()))
    );
    // Ordinary values still redirect.
    assert_eq!(
        redirect(addr, "h.example", "/strip/docs").await,
        (302, Some("http://h.example/docs".into()))
    );
    assert_eq!(
        redirect(addr, "h.example", "/go/books").await,
        (302, Some("http://h.example/books".into()))
    );
    gw.gw.shutdown().await;
}

/// Issue 11 item 4, kept for the new forms: a query-string API key is
/// removed from the kept query string.
#[tokio::test]
async fn a_query_api_key_never_reaches_a_built_location() {
    let spec = "gatefold: 1
consumers:
  partner: { credentials: { key: { env: PARTNER_KEY } } }
apis:
  a:
    policies: [{ key-auth: { in: query, name: api_key } }]
    routes:
      secure: { path: /s/*, policies: [{ redirect: { scheme: https } }] }
";
    let gw = gateway_with(spec, &[("PARTNER_KEY", "K3y")], |_| {}).await;
    let (status, location) = redirect(gw.addr, "h.example", "/s/a?api_key=K3y&x=1").await;
    assert_eq!(status, 302);
    assert_eq!(location.as_deref(), Some("https://h.example/s/a?x=1"));
    let (status, location) = redirect(gw.addr, "h.example", "/s/a?api_key=K3y").await;
    assert_eq!(status, 302);
    assert_eq!(location.as_deref(), Some("https://h.example/s/a"));
    gw.gw.shutdown().await;
}
