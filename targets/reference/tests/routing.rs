//! Matching, precedence, the gateway's own answers, and what is sent
//! upstream (policy-spec "Matching" and "What is sent upstream").

use crate::common;
use common::*;
use serde_json::json;

fn precedence_spec(up: &Upstream) -> String {
    format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
apis:
  pets:
    base-path: /pets
    upstream: up
    routes:
      files: {{ path: /* }}
      toys:  {{ path: \"/{{id}}/toys\" }}
      get:   {{ path: \"/{{id}}\", methods: [GET] }}
      mine:  {{ path: /mine, methods: [GET, HEAD] }}
      deep:  {{ path: /a/b/* }}
      shallow: {{ path: /a/* }}
",
        up.url()
    )
}

fn route_of(gw: &Gw, n: usize) -> String {
    gw.log_lines()[n]["route"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn precedence_exact_then_template_then_longest_prefix() {
    let up = Upstream::start("up").await;
    let gw = gateway(&precedence_spec(&up)).await;
    let cases = [
        ("/pets/mine", "pets.mine"),
        ("/pets/42", "pets.get"),
        ("/pets/42/toys", "pets.toys"),
        ("/pets/42/toys/1", "pets.files"),
        ("/pets/a/b/c", "pets.deep"),
        ("/pets/a/b", "pets.deep"),
        ("/pets/a/x", "pets.shallow"),
        ("/pets", "pets.files"),
    ];
    for (n, (path, route)) in cases.iter().enumerate() {
        let r = gw.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json()["path"], json!(path));
        assert_eq!(route_of(&gw, n), *route, "{path}");
    }
}

#[tokio::test]
async fn no_route_is_404_and_wrong_method_is_405_with_allow() {
    let up = Upstream::start("up").await;
    let spec = format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
apis:
  a:
    upstream: up
    routes:
      read: {{ path: /things, methods: [GET, HEAD] }}
      write: {{ path: /things, methods: [DELETE, POST] }}
",
        up.url()
    );
    let gw = gateway(&spec).await;
    gw.get("/nothing").await.assert_error(404, "no route");
    gw.get("/things/").await.assert_error(404, "no route");
    let r = gw.send("PUT", "/things", &[], None).await;
    r.assert_error(405, "method not allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST, DELETE"));
    // A method outside the spec's list is not allowed either.
    let r = gw.send("PROPFIND", "/things", &[], None).await;
    assert_eq!(r.status, 405);
    assert_eq!(gw.send("POST", "/things", &[], None).await.status, 200);
    // The baseline applies to the gateway's own answers too.
    assert!(r.header("x-request-id").is_some());
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn paths_are_normalized_before_matching_and_sent_normalized() {
    let up = Upstream::start("up").await;
    let gw = gateway(&precedence_spec(&up)).await;
    assert_eq!(
        gw.get("/pets//%7Emine/../mine").await.json()["path"],
        "/pets/mine"
    );
    assert_eq!(gw.get("/pets/./42").await.json()["path"], "/pets/42");
    // %2F stays encoded and does not split a segment.
    let r = gw.get("/pets/a%2Fb").await;
    assert_eq!(r.json()["path"], "/pets/a%2Fb");
    assert_eq!(route_of(&gw, 2), "pets.get");
    gw.get("/pets/../../etc/passwd")
        .await
        .assert_error(400, "bad request");
    gw.get("/%2e%2e/x").await.assert_error(400, "bad request");
    // The query never takes part and is forwarded unchanged.
    let r = gw.get("/pets/42?b=2&a=%20").await;
    assert_eq!(r.json()["query"], "b=2&a=%20");
}

#[tokio::test]
async fn hosts_ignore_case_and_port_and_wildcards_need_a_label() {
    let up = Upstream::start("up").await;
    let spec = format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
apis:
  exact:
    hosts: [api.example.com]
    upstream: up
    routes:
      r: {{ path: /x }}
  wild:
    hosts: [\"*.example.com\"]
    upstream: up
    routes:
      r: {{ path: /y }}
",
        up.url()
    );
    let gw = gateway(&spec).await;
    let host = |h: &'static str, p: &'static str| {
        let addr = gw.addr;
        async move { send(addr, "GET", p, &[("host", h)], None).await.status }
    };
    assert_eq!(host("API.Example.com:8080", "/x").await, 200);
    assert_eq!(host("other.com", "/x").await, 404);
    assert_eq!(host("a.b.example.com", "/y").await, 200);
    assert_eq!(host("example.com", "/y").await, 404);
}

#[tokio::test]
async fn forwarded_headers_request_id_and_hop_by_hop() {
    let up = Upstream::start("up").await;
    let gw = gateway(&proxy_spec(&up, "")).await;
    let r = gw
        .send(
            "GET",
            "/hello",
            &[
                ("host", "client.example"),
                ("x-forwarded-for", "203.0.113.9"),
                ("connection", "x-drop-me"),
                ("x-drop-me", "1"),
                ("te", "trailers"),
                ("x-request-id", "abc-123"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream_header("host"), Some(up.addr.to_string()));
    assert_eq!(
        r.upstream_header("x-forwarded-host").as_deref(),
        Some("client.example")
    );
    assert_eq!(
        r.upstream_header("x-forwarded-for").as_deref(),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(
        r.upstream_header("x-forwarded-proto").as_deref(),
        Some("http")
    );
    assert_eq!(
        r.upstream_header("x-request-id").as_deref(),
        Some("abc-123")
    );
    assert_eq!(r.upstream_header("x-drop-me"), None);
    assert_eq!(r.upstream_header("te"), None);
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    // No server header naming the gateway, and the upstream's headers pass.
    assert_eq!(r.header("server"), None);
    assert_eq!(r.header("x-upstream"), Some("up"));

    // Every earlier x-forwarded-for line is kept, in order.
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /xff HTTP/1.1\r\nhost: h\r\nx-forwarded-for: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2, 10.0.0.3\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(
        out.contains(r#""x-forwarded-for":["10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1"]"#),
        "{out}"
    );

    // A malformed incoming id is replaced by a UUID.
    let r = gw
        .send("GET", "/x", &[("x-request-id", "bad id!")], None)
        .await;
    let id = r.header("x-request-id").unwrap().to_string();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4");
    assert_eq!(r.upstream_header("x-request-id"), Some(id));
}

#[tokio::test]
async fn baseline_request_id_off_and_server_header_on() {
    let spec = "gatefold: 1
gateway:
  baseline: { request-id: false, server-header: true }
apis:
  a:
    routes:
      r: { path: /, policies: [{ mock: { body: hi } }] }
";
    let gw = gateway(spec).await;
    let r = gw.get("/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), None);
    assert!(r.header("server").unwrap().starts_with("gatefold/"));
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    let gw = gateway(
        "gatefold: 1
apis:
  a:
    routes:
      r: { path: /h2, policies: [{ mock: { json: { ok: true } } }] }
",
    )
    .await;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build_http();
    let resp = client
        .get(format!("http://{}/h2", gw.addr).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn strip_base_path_and_rewrites_shape_the_upstream_path() {
    let up = Upstream::start("up").await;
    let spec = format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
apis:
  stripped:
    base-path: /pets
    strip-base-path: true
    upstream: up
    routes:
      root: {{ path: / }}
      one: {{ path: \"/{{id}}\" }}
  catalog:
    base-path: /catalog
    upstream: up
    routes:
      v1:
        path: \"/v1/items/{{id}}\"
        policies: [{{ rewrite: {{ path: \"/items/{{id}}\" }} }}]
      files:
        path: /files/*
        policies: [{{ rewrite: {{ strip-prefix: /catalog/files, add-prefix: /static }} }}]
",
        up.url()
    );
    let gw = gateway(&spec).await;
    let path = |p: &'static str| {
        let addr = gw.addr;
        async move {
            get(addr, p).await.json()["path"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(path("/pets").await, "/");
    assert_eq!(path("/pets/1").await, "/1");
    assert_eq!(path("/catalog/v1/items/a%20b").await, "/items/a%20b");
    assert_eq!(path("/catalog/files/a.css").await, "/static/a.css");
    assert_eq!(path("/catalog/files").await, "/static");
    assert_eq!(path("/catalog/files/").await, "/static/");
    let r = gw.get("/catalog/files/x?v=1").await;
    assert_eq!(r.json()["query"], "v=1");
}

#[tokio::test]
async fn mock_and_redirect_answer_without_an_upstream() {
    let spec = "gatefold: 1
apis:
  a:
    routes:
      hello: { path: /hello, methods: [GET], policies: [{ mock: { json: { message: hello from gatefold } } }] }
      teapot:
        path: /teapot
        policies:
          - mock: { status: 418, headers: { x-brew: earl-grey }, body: \"I'm a teapot\\n\" }
      empty: { path: /empty, policies: [{ mock: { status: 204 } }] }
      old: { path: \"/old/{id}\", policies: [{ redirect: { to: \"/new/{id}\", status: 308 } }] }
      away: { path: /away, policies: [{ redirect: { to: \"https://elsewhere.example/x?a=1\" } }] }
";
    let gw = gateway(spec).await;
    let r = gw.get("/hello").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), r#"{"message":"hello from gatefold"}"#);
    let r = gw.get("/teapot").await;
    assert_eq!(r.status, 418);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("x-brew"), Some("earl-grey"));
    assert_eq!(r.text(), "I'm a teapot\n");
    assert_eq!(gw.get("/empty").await.status, 204);
    let r = gw.get("/old/42?q=1").await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("/new/42?q=1"));
    assert!(r.body.is_empty());
    let r = gw.get("/away?b=2").await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://elsewhere.example/x?a=1&b=2")
    );
}

#[tokio::test]
async fn header_transforms_on_both_sides() {
    let up = Upstream::start("up").await;
    let spec = proxy_spec(
        &up,
        "{ request-headers: { set: { x-env: prod, host: internal.example }, add: { x-audit: \"1\" }, remove: [x-debug] } },
      { response-headers: { set: { cache-control: no-store }, add: { x-extra: \"2\" }, remove: [x-powered-by] } }",
    );
    let gw = gateway(&spec).await;
    let r = gw
        .send(
            "GET",
            "/x",
            &[("x-debug", "1"), ("x-env", "dev"), ("x-audit", "0")],
            None,
        )
        .await;
    assert_eq!(r.upstream_header("x-env").as_deref(), Some("prod"));
    assert_eq!(r.json()["headers"]["x-audit"], json!(["0", "1"]));
    assert_eq!(r.upstream_header("x-debug"), None);
    assert_eq!(
        r.upstream_header("host").as_deref(),
        Some("internal.example")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-extra"), Some("2"));
    assert_eq!(r.header("x-powered-by"), None);
    // Phase 13 also applies to the gateway's own 502 (upstream gone).
    up.stop_and_wait().await;
    let r = gw.get("/x").await;
    r.assert_error(502, "bad gateway");
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn deprecation_headers_from_phase_7_on() {
    let spec = "gatefold: 1
consumers:
  c: { credentials: { key: { env: K } } }
apis:
  a:
    policies:
      - key-auth: {}
      - deprecation: { since: \"2025-01-01\", sunset: \"2026-06-30\", link: https://docs.example.com/v2 }
    routes:
      r: { path: /, policies: [{ mock: { body: ok } }] }
";
    let gw = gateway_with(spec, &[("K", "key-1")], |_| {}).await;
    let r = gw.send("GET", "/", &[("x-api-key", "key-1")], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("deprecation"), Some("@1735689600"));
    assert_eq!(r.header("sunset"), Some("Tue, 30 Jun 2026 00:00:00 GMT"));
    assert_eq!(
        r.header("link"),
        Some("<https://docs.example.com/v2>; rel=\"deprecation\"")
    );
    // A refusal from phase 4 does not carry them.
    let r = gw.get("/").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("deprecation"), None);
}

#[tokio::test]
async fn cors_preflight_and_actual_requests() {
    let up = Upstream::start("up").await;
    let spec = format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
consumers:
  c: {{ credentials: {{ key: {{ env: K }} }} }}
apis:
  a:
    upstream: up
    policies:
      - cors:
          origins: [https://app.example.com]
          methods: [GET, POST]
          expose: [x-request-id]
          credentials: true
          max-age: 10m
      - key-auth: {{}}
    routes:
      items: {{ path: /items, methods: [POST] }}
      open:
        path: /open
        policies: [{{ cors: {{ origins: [\"*\"] }} }}]
        disable: [key-auth]
  plain:
    upstream: up
    routes:
      opts: {{ path: /plain }}
",
        up.url()
    );
    let gw = gateway_with(&spec, &[("K", "key-1")], |_| {}).await;
    let pre = |origin: &'static str, path: &'static str| {
        let addr = gw.addr;
        async move {
            send(
                addr,
                "OPTIONS",
                path,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type, x-api-key"),
                ],
                None,
            )
            .await
        }
    };
    // Routed by the method it asks about (POST), answered 204, never proxied.
    let r = pre("https://APP.example.com", "/items").await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://APP.example.com")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, POST"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type, x-api-key")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("vary"), Some("origin"));
    // Another origin: 204 without the headers.
    let r = pre("https://evil.example", "/items").await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), None);
    // A route without cors: routed again as a plain OPTIONS request.
    let r = pre("https://app.example.com", "/plain").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["method"], "OPTIONS");
    assert_eq!(up.hits(), 1);

    // Actual requests: every response to an allowed origin, 401 included.
    let r = gw
        .send(
            "POST",
            "/items",
            &[("origin", "https://app.example.com")],
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    let r = gw
        .send(
            "POST",
            "/items",
            &[
                ("origin", "https://app.example.com"),
                ("x-api-key", "key-1"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let r = gw
        .send(
            "POST",
            "/items",
            &[("origin", "https://other.example"), ("x-api-key", "key-1")],
            None,
        )
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = gw
        .send("GET", "/open", &[("origin", "https://any.example")], None)
        .await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("vary"), None);
}
