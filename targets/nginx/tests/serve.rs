//! Real nginx on 127.0.0.1 serving compiled specs in front of an echo
//! upstream: statuses, headers and what the upstream received.

use crate::common;

use base64::Engine;
use common::*;

fn quickstart(echo: &Echo) -> Running {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart/gatefold.yaml"
    ))
    .unwrap();
    run(
        &compile(&with_upstream(&text, "http://127.0.0.1:9000", echo)),
        &[],
    )
}

/// quickstart: mock, prefix strip, request-headers, 404 and 405.
#[test]
fn quickstart_serves_as_the_spec_says() {
    let echo = Echo::start();
    let ng = quickstart(&echo);
    let r = get(ng.addr, "/hello", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, r#"{"message":"hello from gatefold"}"#);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        r.header("x-request-id").is_some_and(|v| v.len() == 36),
        "{r:?}"
    );

    let r = request(ng.addr, "POST", "/hello", &[], b"x");
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(r.header("allow"), Some("GET"));
    assert_eq!(r.body, r#"{"error":"method not allowed"}"#);

    let r = get(ng.addr, "/legacy/a/b", &[]);
    assert_eq!(r.status, 410);
    assert_eq!(get(ng.addr, "/legacy", &[]).status, 410);
    assert_eq!(get(ng.addr, "/legacyx", &[]).status, 404);

    let r = get(ng.addr, "/nope", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(r.body, r#"{"error":"no route"}"#);

    let r = get(
        ng.addr,
        "/echo/index.html?a=1&b=%20",
        &[("x-debug", "1"), ("x-request-id", "abc-123")],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "upstream");
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    let up = echo.last();
    assert_eq!(up.target, "/index.html?a=1&b=%20");
    assert_eq!(up.header("x-forwarded-by"), Some("gatefold"));
    assert_eq!(up.header("x-debug"), None);
    assert_eq!(up.header("x-request-id"), Some("abc-123"));
    assert_eq!(up.header("host"), Some(echo.addr.to_string().as_str()));
    get(ng.addr, "/echo", &[]);
    assert_eq!(echo.last().target, "/");
    let r = request(ng.addr, "DELETE", "/echo/x", &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
}

const PRECEDENCE: &str = r#"
gatefold: 1
gateway: { name: prec, listen: 8080 }
upstreams: { u: { targets: [ { url: "http://127.0.0.1:9000" } ] } }
apis:
  hosted:
    hosts: [ "a.example.com", "*.wild.example" ]
    upstream: u
    routes:
      any: { path: "/*", policies: [ { mock: { status: 200, body: hosted } } ] }
  items:
    upstream: u
    routes:
      exact:    { path: /items/special, methods: [GET], policies: [ { mock: { status: 200, body: exact } } ] }
      template: { path: "/items/{id}", methods: [GET, PUT], policies: [ { rewrite: { path: "/v2/things/{id}" } } ] }
      create:   { path: "/items/{id}", methods: [POST], policies: [ { mock: { status: 201, body: created } } ] }
      files:    { path: "/items/*", policies: [ { mock: { status: 200, body: prefix } } ] }
      move:     { path: "/old/{id}", policies: [ { redirect: { to: "/new/{id}?from=old", status: 308 } } ] }
"#;

/// Hosts, exact paths, templates, prefixes and methods pick the route the
/// spec says, with 405 naming every method of the routes taking the path.
#[test]
fn precedence_is_the_specs() {
    let echo = Echo::start();
    let ng = run(
        &compile(&with_upstream(PRECEDENCE, "http://127.0.0.1:9000", &echo)),
        &[],
    );
    let body = |path: &str, host: &str| get(ng.addr, path, &[("host", host)]).body;
    // The host takes no part in precedence: the exact path wins everywhere.
    assert_eq!(body("/items/special", "a.example.com"), "exact");
    assert_eq!(body("/other", "A.example.com"), "hosted");
    assert_eq!(body("/other", "x.y.wild.example:8080"), "hosted");
    assert_eq!(
        get(ng.addr, "/other", &[("host", "wild.example")]).status,
        404
    );
    assert_eq!(body("/items/special", "wild.example"), "exact");
    assert_eq!(body("/items/special", "other"), "exact");
    let r = get(ng.addr, "/items/7", &[]);
    assert_eq!(r.body, "upstream");
    assert_eq!(echo.last().target, "/v2/things/7");
    assert_eq!(request(ng.addr, "POST", "/items/7", &[], b"").status, 201);
    assert_eq!(body("/items/7/x", "other"), "prefix");
    assert_eq!(body("/items", "other"), "prefix");
    // The prefix route takes every method, so no 405 below /items.
    assert_eq!(
        request(ng.addr, "DELETE", "/items/special", &[], b"").body,
        "prefix"
    );
    let r = get(ng.addr, "/old/42", &[]);
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("/new/42?from=old"));
    // A parameter cannot turn a local redirect into another host's.
    let r = get(ng.addr, "/old/%5Cevil.example", &[]);
    assert_eq!(r.status, 308, "/new/\\evil is not a network path: {r:?}");
    // Parameters are taken from the normalized path, where escapes of
    // reserved characters stay encoded: CR LF stay data, as on the
    // reference gateway.
    let r = get(ng.addr, "/old/%0d%0aset-cookie:x", &[]);
    assert_eq!(r.status, 308, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some("/new/%0d%0aset-cookie:x?from=old")
    );
    assert_eq!(r.header("set-cookie"), None);
}

const SECURITY: &str = r#"
gatefold: 1
gateway: { name: sec, listen: 8080 }
upstreams: { u: { targets: [ { url: "http://127.0.0.1:9000" } ] } }
consumers:
  alice: { groups: [staff], credentials: { key: { env: T_ALICE_KEY }, basic: { user: alice, password: { env: T_ALICE_PW } } } }
  bob:   { groups: [guests], credentials: { key: { env: T_BOB_KEY } } }
apis:
  keyed:
    base-path: /keyed
    upstream: u
    policies:
      - key-auth: { in: header, name: x-api-key }
      - basic-auth: { realm: staff area }
    routes:
      any:   { path: "/*" }
      staff: { path: /staff, policies: [ { acl: { allow: [staff] } } ] }
  query:
    base-path: /q
    upstream: u
    policies: [ { key-auth: { in: query, name: api_key } } ]
    routes: { any: { path: "/*" } }
  limited:
    base-path: /limited
    upstream: u
    policies: [ { rate-limit: { requests: 2, per: 1h, key: ip } } ]
    routes: { any: { path: "/*" } }
  walled:
    base-path: /walled
    upstream: u
    policies: [ { ip-filter: { deny: [ "127.0.0.0/8" ] } } ]
    routes: { any: { path: "/*" } }
  open:
    base-path: /open
    upstream: u
    policies: [ { ip-filter: { allow: [ "127.0.0.1/32" ], deny: [ "10.0.0.0/8" ] } }, { request-size-limit: { max: 10B } } ]
    routes: { any: { path: "/*" } }
"#;

/// key-auth, basic-auth, acl, rate-limit, ip-filter and request-size-limit.
#[test]
fn security_policies_hold() {
    let echo = Echo::start();
    let env = [
        ("T_ALICE_KEY", "alice-key"),
        ("T_ALICE_PW", "s3cret"),
        ("T_BOB_KEY", "bob-key"),
    ];
    let ng = run(
        &compile(&with_upstream(SECURITY, "http://127.0.0.1:9000", &echo)),
        &env,
    );
    let a = ng.addr;
    let r = get(a, "/keyed/x", &[]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.body, r#"{"error":"unauthorized"}"#);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"staff area\"")
    );
    assert_eq!(get(a, "/keyed/x", &[("x-api-key", "wrong")]).status, 401);
    let r = get(a, "/keyed/x", &[("x-api-key", "bob-key")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        echo.last().header("x-api-key"),
        None,
        "the key stays at the gateway"
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
    );
    assert_eq!(
        get(a, "/keyed/staff", &[("authorization", &basic)]).status,
        200
    );
    assert_eq!(echo.last().header("authorization"), None);
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:nope")
    );
    assert_eq!(
        get(a, "/keyed/staff", &[("authorization", &wrong)]).status,
        401
    );
    let r = get(a, "/keyed/staff", &[("x-api-key", "bob-key")]);
    assert_eq!(r.status, 403, "bob is not staff: {r:?}");
    assert_eq!(r.body, r#"{"error":"forbidden"}"#);
    assert_eq!(
        get(a, "/keyed/staff", &[("x-api-key", "alice-key")]).status,
        200
    );

    assert_eq!(get(a, "/q/x?api_key=nope", &[]).status, 401);
    assert_eq!(get(a, "/q/x?a=1&api_key=bob-key&b=2", &[]).status, 200);
    assert_eq!(echo.last().target, "/q/x?a=1&b=2");

    for n in 1..=2 {
        let r = get(a, "/limited/x", &[]);
        assert_eq!(r.status, 200, "request {n}: {r:?}");
        assert_eq!(r.header("x-ratelimit-limit"), Some("2"));
        assert_eq!(
            r.header("x-ratelimit-remaining"),
            Some((2 - n).to_string().as_str())
        );
    }
    let r = get(a, "/limited/x", &[]);
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.body, r#"{"error":"too many requests"}"#);
    assert!(r
        .header("retry-after")
        .is_some_and(|v| v.parse::<u64>().unwrap() <= 3600));

    let r = get(a, "/walled/x", &[]);
    assert_eq!(r.status, 403);
    assert_eq!(r.body, r#"{"error":"forbidden"}"#);
    assert_eq!(get(a, "/open/x", &[]).status, 200);
    let r = request(a, "POST", "/open/x", &[], b"01234567890");
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.body, r#"{"error":"payload too large"}"#);
    assert_eq!(
        request(a, "POST", "/open/x", &[], b"0123456789").status,
        200
    );
    assert_eq!(echo.last().body, b"0123456789");
}

const CORS: &str = r#"
gatefold: 1
gateway: { name: cors, listen: 8080 }
upstreams: { u: { targets: [ { url: "http://127.0.0.1:9000" } ] } }
apis:
  web:
    upstream: u
    policies:
      - cors: { origins: [ "https://app.example" ], methods: [GET, POST], expose: [x-upstream], credentials: true, max-age: 10m }
      - response-headers: { set: { cache-control: no-store }, add: { x-extra: one }, remove: [x-remove-me] }
    routes:
      read: { path: /data, methods: [GET] }
"#;

/// CORS preflights (routed by the method they ask about) and actual
/// requests; response-headers on upstream answers.
#[test]
fn cors_and_response_headers() {
    let echo = Echo::start();
    let ng = run(
        &compile(&with_upstream(CORS, "http://127.0.0.1:9000", &echo)),
        &[],
    );
    let a = ng.addr;
    let pre = |origin: &str| {
        request(
            a,
            "OPTIONS",
            "/data",
            &[
                ("origin", origin),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-a"),
            ],
            b"",
        )
    };
    let r = pre("https://app.example");
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, POST"));
    assert_eq!(r.header("access-control-allow-headers"), Some("x-a"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("vary"), Some("origin"));
    assert_eq!(
        r.header("cache-control"),
        None,
        "a preflight stops before phase 13"
    );
    let r = pre("https://evil.example");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), None);
    // Not a preflight: an OPTIONS the route does not take.
    assert_eq!(request(a, "OPTIONS", "/data", &[], b"").status, 405);

    let r = get(a, "/data", &[("origin", "https://APP.example")]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://APP.example")
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("x-upstream")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-extra"), Some("one"));
    assert_eq!(r.header("x-remove-me"), None);
    assert_eq!(r.header("x-upstream"), Some("yes"));
    let r = get(a, "/data", &[]);
    assert_eq!(r.header("access-control-allow-origin"), None);
}

/// petstore: key-auth, acl, cors, request-size-limit, header transforms.
#[test]
fn petstore_serves() {
    let echo = Echo::start();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/petstore/gatefold.yaml"
    ))
    .unwrap();
    let text = text
        .replace("http://127.0.0.1:9001", &format!("http://{}", echo.addr))
        .replace(
            "      - url: http://127.0.0.1:9002      # weight 1 (the default)\n",
            "",
        );
    let env = [
        ("ACME_API_KEY", "acme"),
        ("GLOBEX_API_KEY", "globex"),
        ("GLOBEX_API_KEY_NEXT", "globex2"),
        ("STAFF_API_KEY", "staff"),
    ];
    let ng = run(&compile(&text), &env);
    let a = ng.addr;
    assert_eq!(get(a, "/pets", &[]).status, 401);
    let r = get(a, "/pets", &[("x-api-key", "globex2"), ("x-debug", "1")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-ratelimit-limit"), Some("100"));
    let up = echo.last();
    assert_eq!(up.target, "/pets");
    assert_eq!(up.header("x-gateway"), Some("petstore"));
    assert_eq!(up.header("x-debug"), None);
    assert_eq!(get(a, "/pets/7", &[("x-api-key", "acme")]).status, 200);
    assert_eq!(echo.last().target, "/pets/7");
    assert_eq!(
        request(a, "DELETE", "/pets/7", &[("x-api-key", "acme")], b"").status,
        403
    );
    assert_eq!(
        request(a, "DELETE", "/pets/7", &[("x-api-key", "staff")], b"").status,
        200
    );
    let big = vec![b'x'; 64 * 1024 + 1];
    assert_eq!(
        request(a, "POST", "/pets", &[("x-api-key", "acme")], &big).status,
        413
    );
    let r = request(a, "PATCH", "/pets/7", &[("x-api-key", "acme")], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, DELETE"));
    let r = get(a, "/pets/status", &[("x-api-key", "acme")]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-ratelimit-limit"),
        None,
        "status disables rate-limit"
    );
}

/// traffic-split: a header match picks its upstream; weights spread the rest.
#[test]
fn traffic_split_by_header_and_weight() {
    let (a, b) = (Echo::start(), Echo::start());
    let spec = format!(
        r#"
gatefold: 1
gateway: {{ name: split, listen: 8080 }}
upstreams:
  a: {{ targets: [ {{ url: "http://{}" }} ] }}
  b: {{ targets: [ {{ url: "http://{}" }} ] }}
apis:
  s:
    upstream: a
    policies:
      - traffic-split: {{ to: [ {{ upstream: a, weight: 1 }}, {{ upstream: b, weight: 1 }} ], header-match: [ {{ name: x-canary, value: "Yes", upstream: b }} ] }}
    routes: {{ r: {{ path: "/*" }} }}
"#,
        a.addr, b.addr
    );
    let ng = run(&compile(&spec), &[]);
    for _ in 0..5 {
        get(ng.addr, "/x", &[("x-canary", "Yes")]);
    }
    assert_eq!(b.count(), 5, "the header match always picks b");
    assert_eq!(b.last().header("host"), Some(b.addr.to_string().as_str()));
    get(ng.addr, "/x", &[("x-canary", "yes")]);
    for _ in 0..40 {
        get(ng.addr, "/x", &[]);
    }
    // 41 requests by weight 1:1 (the case-different value is not a match).
    assert!(
        a.count() >= 5 && b.count() >= 10,
        "a {} b {}",
        a.count(),
        b.count()
    );
}
