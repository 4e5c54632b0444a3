//! Language 1.1 over real sockets: route conditions (`match`) and
//! `preserve-host` (policy-spec "Conditions", "What is sent upstream").

use crate::common;
use common::*;

fn conditions_spec(v1: &Upstream, v2: &Upstream) -> String {
    format!(
        r#"gatefold: 1
upstreams:
  v1: {{ targets: [{{ url: {} }}] }}
  v2: {{ targets: [{{ url: {} }}] }}
apis:
  items:
    upstream: v1
    routes:
      v2-items:
        path: /items/*
        upstream: v2
        match:
          headers: {{ x-version: "2" }}
          query: {{ format: json }}
      v2-header:
        path: /items/*
        upstream: v2
        match: {{ headers: {{ X-Version: "3" }} }}
      items:
        path: /items/*
      beta:
        path: /beta
        methods: [GET]
        upstream: v2
        match: {{ headers: {{ x-beta: "on" }} }}
      beta-post:
        path: /beta
        methods: [POST]
      lone:
        path: /lone
        methods: [GET]
        match: {{ query: {{ flag: "" }} }}
"#,
        v1.url(),
        v2.url()
    )
}

/// Header names ignore case, values are exact; the query's first
/// occurrence decides, percent-decoded; a request failing the conditions
/// goes to the route without them.
#[tokio::test]
async fn conditions_choose_the_route() {
    let (v1, v2) = (Upstream::start("v1").await, Upstream::start("v2").await);
    let gw = gateway(&conditions_spec(&v1, &v2)).await;
    // (path and query, request headers, the upstream that must answer)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        ("/items/1?format=json", &[("X-VERSION", "2")], "v2"),
        ("/items/1?format=%6Ason", &[("x-version", "2")], "v2"),
        (
            "/items/1?a=b&format=json&format=xml",
            &[("x-version", "2")],
            "v2",
        ),
        // The first occurrence is not `json`.
        (
            "/items/1?format=xml&format=json",
            &[("x-version", "2")],
            "v1",
        ),
        // One condition of two.
        ("/items/1?format=json", &[], "v1"),
        ("/items/1", &[("x-version", "2")], "v1"),
        // Values are exact: case, blanks inside and longer values differ.
        ("/items/1?format=json", &[("x-version", "20")], "v1"),
        ("/items/1?format=JSON", &[("x-version", "2")], "v1"),
        // A condition written `X-Version` takes `x-version`.
        ("/items/1", &[("x-version", "3")], "v2"),
        ("/items/1", &[], "v1"),
    ];
    for (path, headers, want) in cases {
        let r = gw.send("GET", path, headers, None).await;
        assert_eq!(r.status, 200, "{path} {headers:?}: {}", r.text());
        assert_eq!(r.json()["upstream"], *want, "{path} {headers:?}");
    }
}

/// A request failing a route's conditions is routed as if the route did
/// not exist: 405 lists only the methods of routes whose conditions hold,
/// and a path whose only route fails is 404.
#[tokio::test]
async fn failing_conditions_are_routed_as_if_the_route_did_not_exist() {
    let (v1, v2) = (Upstream::start("v1").await, Upstream::start("v2").await);
    let gw = gateway(&conditions_spec(&v1, &v2)).await;
    let r = gw.send("GET", "/beta", &[("x-beta", "on")], None).await;
    assert_eq!(r.json()["upstream"], "v2");
    let r = gw.send("GET", "/beta", &[], None).await;
    r.assert_error(405, "method not allowed");
    assert_eq!(r.header("allow"), Some("POST"));
    let r = gw.send("PUT", "/beta", &[("x-beta", "on")], None).await;
    r.assert_error(405, "method not allowed");
    assert_eq!(r.header("allow"), Some("GET, POST"));
    // `lone` is the only route of its path.
    gw.get("/lone").await.assert_error(404, "no route");
    gw.get("/lone?other").await.assert_error(404, "no route");
    let r = gw.get("/lone?flag").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(gw.get("/lone?flag=").await.status, 200);
    gw.get("/lone?flag=1").await.assert_error(404, "no route");
    let r = gw.send("POST", "/lone?flag", &[], None).await;
    r.assert_error(405, "method not allowed");
    assert_eq!(r.header("allow"), Some("GET"));
}

/// `preserve-host`: the upstream gets the client's host (with its port, as
/// sent), HTTP/2's `:authority` included; the route's setting wins over
/// the api's; `x-forwarded-host` carries the client's host either way.
#[tokio::test]
async fn preserve_host_sends_the_clients_host() {
    let up = Upstream::start("up").await;
    let spec = format!(
        r#"gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
apis:
  kept:
    base-path: /kept
    upstream: up
    preserve-host: true
    routes:
      all: {{ path: /* }}
      not-here: {{ path: /own/*, preserve-host: false }}
  plain:
    base-path: /plain
    upstream: up
    routes:
      all: {{ path: /* }}
      here: {{ path: /kept/*, preserve-host: true }}
      set: {{ path: /set/*, preserve-host: true, policies: [{{ request-headers: {{ set: {{ host: chosen.example }} }} }}] }}
"#,
        up.url()
    );
    let gw = gateway(&spec).await;
    let target = up.addr.to_string();
    let cases = [
        ("/kept/a", "Client.Example:8443"),
        ("/kept/own/a", target.as_str()),
        ("/plain/a", target.as_str()),
        ("/plain/kept/a", "client.example"),
        // An explicit `set: { host }` wins over preserve-host.
        ("/plain/set/a", "chosen.example"),
    ];
    for (path, want) in cases {
        let client = if path.starts_with("/plain/kept") {
            "client.example"
        } else {
            "Client.Example:8443"
        };
        let r = gw.send("GET", path, &[("host", client)], None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.upstream_header("host").as_deref(), Some(want), "{path}");
        assert_eq!(
            r.upstream_header("x-forwarded-host").as_deref(),
            Some(client),
            "{path}"
        );
    }
    // HTTP/2: `:authority` is the client's host.
    let r = get_h2(gw.addr, "h2.example:9443", "/kept/a").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.upstream_header("host").as_deref(),
        Some("h2.example:9443")
    );
    assert_eq!(
        r.upstream_header("x-forwarded-host").as_deref(),
        Some("h2.example:9443")
    );
    let r = get_h2(gw.addr, "h2.example:9443", "/plain/a").await;
    assert_eq!(r.upstream_header("host").as_deref(), Some(target.as_str()));
    assert_eq!(
        r.upstream_header("x-forwarded-host").as_deref(),
        Some("h2.example:9443")
    );
}
