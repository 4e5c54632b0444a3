//! Behaviour policy-spec/README.md promises that the other socket tests do
//! not reach: timeout fallbacks, methods, HTTP/2 hosts, precedence, rate
//! limit keys and counters, phase 13 on short circuits (and not on
//! refusals), the cache key, deprecation defaults, health checks, jwt
//! options, mock headers, and attachment at run time.

use crate::common;
use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// A second and a third client address (all of 127/8 is loopback).
const CLIENT_1: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const CLIENT_2: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const CLIENT_3: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// A bound that only a timeout far longer than the one meant (the 20s or
/// 30s it falls back from) would break, however loaded the machine is.
const LOOSE: Duration = Duration::from_secs(8);

// ---------------------------------------------------------------- timeouts

/// "What is sent upstream": for each of `connect` and `read`, the route's
/// `timeout` if it gives one, else the upstream's `timeouts`, else the
/// baseline's; a key left out keeps the inherited value.
#[tokio::test]
async fn timeouts_fall_back_from_route_to_upstream_to_baseline() {
    let up = Upstream::start("up").await;
    let u = up.url();
    let spec = format!(
        "gatefold: 1
gateway:
  baseline: {{ timeouts: {{ read: 500ms }} }}
upstreams:
  plain: {{ targets: [{{ url: {u} }}] }}
  long: {{ targets: [{{ url: {u} }}], timeouts: {{ read: 20s }} }}
  connect-only: {{ targets: [{{ url: {u} }}], timeouts: {{ connect: 2s }} }}
apis:
  a:
    routes:
      plain: {{ path: /plain, upstream: plain }}
      long: {{ path: /long, upstream: long }}
      connect-only: {{ path: /connect-only, upstream: connect-only }}
      route-read: {{ path: /route-read, upstream: long, policies: [{{ timeout: {{ read: 500ms }} }}] }}
      route-connect: {{ path: /route-connect, upstream: long, policies: [{{ timeout: {{ connect: 1s }} }}] }}
"
    );
    let gw = gateway(&spec).await;
    let hang = [("x-test-hang", "1")];
    let slow = [("x-test-delay-ms", "1500")];
    // 504 quickly: a 500ms read applies (a 20s or 30s one would not answer
    // within LOOSE).
    for (path, why) in [
        ("/plain", "no upstream timeouts: the baseline's read"),
        (
            "/connect-only",
            "the upstream gives only connect: read stays the baseline's",
        ),
        ("/route-read", "the route's read beats the upstream's 20s"),
    ] {
        let started = Instant::now();
        gw.send("GET", path, &hang, None)
            .await
            .assert_error(504, "upstream timeout");
        assert!(started.elapsed() < LOOSE, "{path}: {why}");
    }
    // 200 after 1.5s: the upstream's 20s read applies, not the baseline's
    // 500ms.
    for (path, why) in [
        ("/long", "the upstream's read beats the baseline's"),
        (
            "/route-connect",
            "the route gives only connect: read stays the upstream's",
        ),
    ] {
        let r = gw.send("GET", path, &slow, None).await;
        assert_eq!(r.status, 200, "{path}: {why}: {}", r.text());
    }
}

/// An address where connecting hangs: a listener with backlog 0 whose one
/// queue slot is taken by a connection never accepted, so the kernel drops
/// further SYNs (Linux). Keep the returned pair alive while it is used.
#[cfg(target_os = "linux")]
async fn blackhole() -> (
    std::net::SocketAddr,
    (tokio::net::TcpListener, tokio::net::TcpStream),
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let queued = tokio::net::TcpStream::connect(addr).await.unwrap();
    let probe = tokio::time::timeout(
        Duration::from_millis(300),
        tokio::net::TcpStream::connect(addr),
    )
    .await;
    assert!(probe.is_err(), "connecting to {addr} should hang");
    (addr, (listener, queued))
}

/// The same fallback for `connect`, against a target where connecting
/// hangs. Every read timeout here is 25s or more, so a quick 504 can only
/// come from a 300ms connect timeout; the one it falls back from (20s or
/// 30s) would not answer within LOOSE.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn connect_timeouts_fall_back_from_route_to_upstream_to_baseline() {
    let (hole, _keep) = blackhole().await;
    let u = format!("http://{hole}");
    let check = |gw: Gw, cases: Vec<(&'static str, &'static str)>| async move {
        for (path, why) in cases {
            let started = Instant::now();
            gw.get(path).await.assert_error(504, "upstream timeout");
            assert!(started.elapsed() < LOOSE, "{path}: {why}");
        }
    };
    // A short baseline.
    let spec = format!(
        "gatefold: 1
gateway:
  baseline: {{ timeouts: {{ connect: 300ms, read: 30s }} }}
upstreams:
  plain: {{ targets: [{{ url: {u} }}] }}
  read-only: {{ targets: [{{ url: {u} }}], timeouts: {{ read: 25s }} }}
apis:
  a:
    routes:
      plain: {{ path: /plain, upstream: plain }}
      read-only: {{ path: /read-only, upstream: read-only }}
"
    );
    check(
        gateway(&spec).await,
        vec![
            ("/plain", "no upstream timeouts: the baseline's connect"),
            (
                "/read-only",
                "the upstream gives only read: connect stays the baseline's",
            ),
        ],
    )
    .await;
    // A long baseline.
    let spec = format!(
        "gatefold: 1
gateway:
  baseline: {{ timeouts: {{ connect: 30s, read: 30s }} }}
upstreams:
  plain: {{ targets: [{{ url: {u} }}] }}
  short: {{ targets: [{{ url: {u} }}], timeouts: {{ connect: 300ms }} }}
  long: {{ targets: [{{ url: {u} }}], timeouts: {{ connect: 30s }} }}
apis:
  a:
    routes:
      short: {{ path: /short, upstream: short }}
      route-read: {{ path: /route-read, upstream: short, policies: [{{ timeout: {{ read: 25s }} }}] }}
      route-connect: {{ path: /route-connect, upstream: plain, policies: [{{ timeout: {{ connect: 300ms }} }}] }}
      route-over-upstream: {{ path: /route-over-upstream, upstream: long, policies: [{{ timeout: {{ connect: 300ms }} }}] }}
"
    );
    check(
        gateway(&spec).await,
        vec![
            ("/short", "the upstream's connect beats the baseline's"),
            (
                "/route-read",
                "the route gives only read: connect stays the upstream's",
            ),
            ("/route-connect", "the route's connect beats the baseline's"),
            (
                "/route-over-upstream",
                "the route's connect beats the upstream's",
            ),
        ],
    )
    .await;
}

/// `retry`: `timeout` retries only idempotent methods.
#[tokio::test]
async fn a_timed_out_non_idempotent_request_is_not_retried() {
    let up = Upstream::start("up").await;
    let spec = proxy_spec(
        &up,
        "{ timeout: { read: 300ms } }, { retry: { attempts: 2, on: [timeout] } }",
    );
    let gw = gateway(&spec).await;
    let hang = [("x-test-hang", "1")];
    for method in ["POST", "PATCH"] {
        let before = up.hits();
        gw.send(method, "/x", &hang, Some("payload"))
            .await
            .assert_error(504, "upstream timeout");
        assert_eq!(up.hits() - before, 1, "{method} is tried once");
    }
    // The same retry does retry an idempotent method: two retries.
    for method in ["GET", "PUT"] {
        let before = up.hits();
        gw.send(method, "/x", &hang, None)
            .await
            .assert_error(504, "upstream timeout");
        assert_eq!(up.hits() - before, 3, "{method} is retried");
    }
}

// ---------------------------------------------------------------- matching

/// Route `methods`: "`GET` does not imply `HEAD`".
#[tokio::test]
async fn get_does_not_imply_head() {
    let gw = gateway(
        "gatefold: 1
apis:
  a:
    routes:
      get: { path: /get, methods: [GET], policies: [{ mock: { body: ok } }] }
      any: { path: /any, policies: [{ mock: { body: ok } }] }
",
    )
    .await;
    assert_eq!(gw.get("/get").await.status, 200);
    let r = gw.send("HEAD", "/get", &[], None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    // A route without `methods` answers HEAD (and any other method).
    assert_eq!(gw.send("HEAD", "/any", &[], None).await.status, 200);
    assert_eq!(gw.send("PURGE", "/any", &[], None).await.status, 200);
}

/// "Hosts": the host is the `host` header, or `:authority` in HTTP/2.
#[tokio::test]
async fn http2_requests_are_matched_by_their_authority() {
    let gw = gateway(
        "gatefold: 1
apis:
  example:
    hosts: [api.example.com]
    routes:
      r: { path: /who, policies: [{ mock: { body: example } }] }
  other:
    routes:
      r: { path: /who, policies: [{ mock: { body: other } }] }
",
    )
    .await;
    let r = get_h2(gw.addr, "API.example.com:8443", "/who").await;
    assert_eq!((r.status, r.text().as_str()), (200, "example"));
    let r = get_h2(gw.addr, "else.example.com", "/who").await;
    assert_eq!((r.status, r.text().as_str()), (200, "other"));
}

fn precedence_spec(first: &str, second: &str) -> String {
    let api = |name: &str, path: &str| {
        format!(
            "  {name}:
    routes:
      r: {{ path: \"{path}\", policies: [{{ mock: {{ body: {name} }} }}] }}
"
        )
    };
    let (a, b) = match (first, second) {
        ("left", "right") => (api("left", "/{a}/x"), api("right", "/x/{b}")),
        _ => (api("right", "/x/{b}"), api("left", "/{a}/x")),
    };
    format!(
        "gatefold: 1
apis:
  shop:
    routes:
      fewer: {{ path: \"/{{a}}/{{b}}/toys\", policies: [{{ mock: {{ body: fewer }} }}] }}
      more: {{ path: \"/shop/{{id}}/toys\", policies: [{{ mock: {{ body: more }} }}] }}
{a}{b}"
    )
}

/// "Precedence" rules 2 (between templated paths, more literal segments
/// win) and 4 (remaining ties go to the route listed first).
#[tokio::test]
async fn precedence_more_literal_segments_then_first_listed() {
    for (first, second) in [("left", "right"), ("right", "left")] {
        let gw = gateway(&precedence_spec(first, second)).await;
        // Rule 2: `more` is listed second, so only rule 2 makes it win.
        assert_eq!(gw.get("/shop/1/toys").await.text(), "more");
        assert_eq!(gw.get("/mall/1/toys").await.text(), "fewer");
        // Rule 4: `/{a}/x` and `/x/{b}` tie on `/x/x`; the api listed
        // first wins, whichever it is.
        assert_eq!(gw.get("/x/x").await.text(), first);
        assert_eq!(gw.get("/y/x").await.text(), "left");
        assert_eq!(gw.get("/x/y").await.text(), "right");
    }
}

// ---------------------------------------------------------------- rate-limit

async fn status_from(gw: &Gw, from: Ipv4Addr, path: &str, headers: &[(&str, &str)]) -> u16 {
    send_from(from, gw.addr, "GET", path, headers).await.status
}

async fn bearer_from(gw: &Gw, from: Ipv4Addr, auth: &str) -> u16 {
    status_from(gw, from, "/", &[("authorization", auth)]).await
}

/// `rate-limit` `key: global` counts every client together; `key: ip` (the
/// control) tells the two client addresses apart.
#[tokio::test]
async fn rate_limit_key_global_counts_all_clients_together() {
    let gw = gateway(
        "gatefold: 1
apis:
  a:
    routes:
      global:
        path: /global
        policies: [{ rate-limit: { requests: 2, per: 1m, key: global } }, { mock: { body: ok } }]
      ip:
        path: /ip
        policies: [{ rate-limit: { requests: 1, per: 1m, key: ip } }, { mock: { body: ok } }]
",
    )
    .await;
    assert_eq!(status_from(&gw, CLIENT_1, "/ip", &[]).await, 200);
    assert_eq!(status_from(&gw, CLIENT_2, "/ip", &[]).await, 200);
    assert_eq!(status_from(&gw, CLIENT_1, "/ip", &[]).await, 429);

    assert_eq!(status_from(&gw, CLIENT_1, "/global", &[]).await, 200);
    assert_eq!(status_from(&gw, CLIENT_2, "/global", &[]).await, 200);
    let r = send_from(CLIENT_3, gw.addr, "GET", "/global", &[]).await;
    r.assert_error(429, "too many requests");
}

/// "Counters belong to the place where the policy is attached": one at
/// gateway level counts all routes of all apis together.
#[tokio::test]
async fn a_gateway_level_rate_limit_counts_all_apis_together() {
    let gw = gateway(
        "gatefold: 1
gateway:
  policies: [{ rate-limit: { requests: 3, per: 1m } }]
apis:
  a:
    routes:
      r: { path: /a, policies: [{ mock: { body: a } }] }
  b:
    routes:
      r: { path: /b, policies: [{ mock: { body: b } }] }
",
    )
    .await;
    for (path, left) in [("/a", "2"), ("/b", "1"), ("/a", "0")] {
        let r = gw.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("x-ratelimit-remaining"), Some(left), "{path}");
    }
    gw.get("/b").await.assert_error(429, "too many requests");
}

/// "A named policy referenced in two places has two independent counters"
/// (and the api-level place counts its routes together).
#[tokio::test]
async fn a_named_rate_limit_used_in_two_places_keeps_two_counters() {
    let gw = gateway(
        "gatefold: 1
policies:
  once-a-minute: { rate-limit: { requests: 1, per: 1m } }
apis:
  a:
    policies: [once-a-minute]
    routes:
      x: { path: /a/x, policies: [{ mock: { body: ok } }] }
      y: { path: /a/y, policies: [{ mock: { body: ok } }] }
  b:
    routes:
      r: { path: /b, policies: [once-a-minute, { mock: { body: ok } }] }
",
    )
    .await;
    assert_eq!(gw.get("/a/x").await.status, 200);
    assert_eq!(gw.get("/a/y").await.status, 429, "api a counts together");
    assert_eq!(gw.get("/b").await.status, 200, "b has its own counter");
    assert_eq!(gw.get("/b").await.status, 429);
}

const JWT_SECRET: &str = "0123456789abcdef0123456789abcdef";

fn hs256(claims: serde_json::Value) -> String {
    let mut c = json!({ "exp": T0 + 3600 });
    for (k, v) in claims.as_object().unwrap() {
        c[k] = v.clone();
    }
    encode(
        &Header::new(Algorithm::HS256),
        &c,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// `rate-limit` `key: consumer`: "a request without a consumer ... is
/// counted by its IP" (a jwt whose claim names no consumer is admitted
/// without one).
#[tokio::test]
async fn rate_limit_by_consumer_counts_a_request_without_one_by_ip() {
    let spec = "gatefold: 1
consumers:
  billing: {}
apis:
  a:
    policies:
      - jwt: { algorithms: [HS256], secret: { env: S } }
      - rate-limit: { requests: 1, per: 1m, key: consumer }
    routes:
      r: { path: /, policies: [{ mock: { body: ok } }] }
";
    let gw = gateway_with(spec, &[("S", JWT_SECRET)], |_| {}).await;
    let [billing, nobody, stranger] = ["billing", "nobody", "stranger"]
        .map(|sub| format!("Bearer {}", hs256(json!({ "sub": sub }))));
    // The consumer's own counter, whatever address it comes from.
    assert_eq!(bearer_from(&gw, CLIENT_1, &billing).await, 200);
    assert_eq!(bearer_from(&gw, CLIENT_2, &billing).await, 429);
    // No consumer: one counter per address, shared by every such token.
    assert_eq!(bearer_from(&gw, CLIENT_1, &nobody).await, 200);
    assert_eq!(bearer_from(&gw, CLIENT_1, &stranger).await, 429);
    assert_eq!(bearer_from(&gw, CLIENT_2, &stranger).await, 200);
}

// ---------------------------------------------------------------- phase 13

/// "Phases": responses from phase 9 on (mock, redirect) go through phase
/// 13; a response made before phase 9 (refusals of phases 1-6, a CORS
/// preflight answer) skips it.
#[tokio::test]
async fn response_headers_on_mock_and_redirect_not_on_refusals() {
    let spec = "gatefold: 1
gateway:
  policies: [{ response-headers: { set: { x-phase-13: ran } } }]
consumers:
  silver: { groups: [silver], credentials: { key: { env: KS } } }
  gold: { groups: [gold], credentials: { key: { env: KG } } }
apis:
  a:
    routes:
      mock: { path: /mock, policies: [{ mock: { body: ok } }] }
      redirect: { path: /redirect, policies: [{ redirect: { to: /mock } }] }
      ip: { path: /ip, policies: [{ ip-filter: { deny: [127.0.0.0/8] } }, { mock: { body: ok } }] }
      cors: { path: /cors, policies: [{ cors: { origins: [\"https://app.example.com\"] } }, { mock: { body: ok } }] }
      size: { path: /size, policies: [{ request-size-limit: { max: 1KiB } }, { mock: { body: ok } }] }
      auth: { path: /auth, policies: [{ key-auth: {} }, { mock: { body: ok } }] }
      acl: { path: /acl, policies: [{ key-auth: {} }, { acl: { allow: [gold] } }, { mock: { body: ok } }] }
      limited: { path: /limited, policies: [{ rate-limit: { requests: 1, per: 1m } }, { mock: { body: ok } }] }
";
    let gw = gateway_with(spec, &[("KS", "silver-key"), ("KG", "gold-key")], |_| {}).await;
    let ran = |r: &Resp| r.header("x-phase-13") == Some("ran");

    let r = gw.get("/mock").await;
    assert!(r.status == 200 && ran(&r), "mock");
    let r = gw.get("/redirect").await;
    assert!(r.status == 302 && ran(&r), "redirect");

    let refusals: Vec<(&str, Resp)> = vec![
        ("phase 1 ip-filter", gw.get("/ip").await),
        (
            "phase 2 preflight",
            gw.send(
                "OPTIONS",
                "/cors",
                &[
                    ("origin", "https://app.example.com"),
                    ("access-control-request-method", "GET"),
                ],
                None,
            )
            .await,
        ),
        (
            "phase 3 size",
            gw.send("POST", "/size", &[], Some(&"x".repeat(2048))).await,
        ),
        ("phase 4 auth", gw.get("/auth").await),
        (
            "phase 5 acl",
            gw.send("GET", "/acl", &[("x-api-key", "silver-key")], None)
                .await,
        ),
        ("phase 6 rate-limit", {
            assert!(ran(&gw.get("/limited").await));
            gw.get("/limited").await
        }),
    ];
    let expected = [403, 204, 413, 401, 403, 429];
    for ((what, r), status) in refusals.iter().zip(expected) {
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert!(!ran(r), "{what} went through phase 13");
    }
    // The same routes, admitted, do go through phase 13.
    let r = gw
        .send("GET", "/acl", &[("x-api-key", "gold-key")], None)
        .await;
    assert!(r.status == 200 && ran(&r));
}

// ---------------------------------------------------------------- cache

fn cache_spec(up: &Upstream, cache: &str) -> String {
    proxy_spec(up, &format!("{{ cache: {cache} }}"))
}

/// `cache`: "the key is the method, host, path and query as received".
#[tokio::test]
async fn the_cache_key_includes_the_host() {
    let up = Upstream::start("up").await;
    let gw = gateway(&cache_spec(&up, "{ ttl: 1m }")).await;
    let as_host = |host: &'static str| {
        let addr = gw.addr;
        async move { send(addr, "GET", "/item", &[("host", host)], None).await }
    };
    let a = as_host("a.example").await;
    let b = as_host("b.example").await;
    assert_eq!(up.hits(), 2, "one entry per host");
    assert_eq!(
        b.json()["headers"]["x-forwarded-host"][0],
        "b.example",
        "b's own answer"
    );
    let again = as_host("a.example").await;
    assert_eq!(up.hits(), 2);
    assert_eq!(again.body, a.body);
}

/// `cache`: "Client cache directives do not bypass it".
#[tokio::test]
async fn client_cache_directives_do_not_bypass_the_cache() {
    let up = Upstream::start("up").await;
    let gw = gateway(&cache_spec(&up, "{ ttl: 1m }")).await;
    let first = gw.get("/item").await;
    assert_eq!(up.hits(), 1);
    for h in [
        ("cache-control", "no-cache"),
        ("cache-control", "no-store"),
        ("cache-control", "max-age=0"),
        ("pragma", "no-cache"),
    ] {
        let r = gw.send("GET", "/item", &[h], None).await;
        assert_eq!(r.body, first.body, "{h:?}");
        assert_eq!(up.hits(), 1, "{h:?} reached the upstream");
    }
}

/// `cache` `methods`: only responses to these methods are cached.
#[tokio::test]
async fn cache_methods_choose_what_is_cached() {
    let up = Upstream::start("up").await;
    let gw = gateway(&cache_spec(&up, "{ ttl: 1m, methods: [GET] }")).await;
    gw.send("HEAD", "/item", &[], None).await;
    gw.send("HEAD", "/item", &[], None).await;
    assert_eq!(up.hits(), 2, "HEAD is not listed: not cached");
    gw.get("/item").await;
    gw.get("/item").await;
    assert_eq!(up.hits(), 3, "GET is");
    // The default, [GET, HEAD], caches HEAD too.
    let up = Upstream::start("up").await;
    let gw = gateway(&cache_spec(&up, "{ ttl: 1m }")).await;
    gw.send("HEAD", "/item", &[], None).await;
    gw.send("HEAD", "/item", &[], None).await;
    assert_eq!(up.hits(), 1);
}

// ---------------------------------------------------------------- deprecation

/// `deprecation`: `since` omitted gives `deprecation: @0`.
#[tokio::test]
async fn deprecation_without_since_is_at_zero() {
    let gw = gateway(
        "gatefold: 1
apis:
  a:
    routes:
      r:
        path: /
        policies: [{ deprecation: { link: \"https://docs.example.com/v2\" } }, { mock: { body: ok } }]
",
    )
    .await;
    let r = gw.get("/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("deprecation"), Some("@0"));
    assert_eq!(
        r.header("link"),
        Some("<https://docs.example.com/v2>; rel=\"deprecation\"")
    );
    assert_eq!(r.header("sunset"), None);
}

// ---------------------------------------------------------------- health

fn healthy_gauge(upstream: &str, target: &Upstream, value: u8) -> String {
    format!(
        "gatefold_upstream_healthy{{upstream=\"{upstream}\",target=\"{}\"}} {value}",
        target.url()
    )
}

async fn metrics(gw: &Gw) -> String {
    get(gw.admin(), "/metrics").await.text()
}

/// Health checks: "a 2xx or 3xx status within `health.timeout` is a
/// success", sent "with `host` set to the target's host and port".
#[tokio::test]
async fn health_checks_take_3xx_as_success_and_send_the_target_host() {
    let (moved, broken) = (
        Upstream::start("moved").await,
        Upstream::start("broken").await,
    );
    let spec = format!(
        "gatefold: 1
upstreams:
  moved:
    targets: [{{ url: {} }}]
    health: {{ path: /health-status/302, interval: 20ms, timeout: 10s, unhealthy-after: 1 }}
  broken:
    targets: [{{ url: {} }}]
    health: {{ path: /health-status/404, interval: 20ms, unhealthy-after: 1 }}
apis:
  a:
    routes:
      moved: {{ path: /moved, upstream: moved }}
      broken: {{ path: /broken, upstream: broken }}
",
        moved.url(),
        broken.url()
    );
    let gw = gateway(&spec).await;
    // The control: a 4xx answer does take a target out.
    let out = healthy_gauge("broken", &broken, 0);
    let gw_ref = &gw;
    eventually("a 404 check takes `broken` out", || {
        let out = out.clone();
        async move { metrics(gw_ref).await.contains(&out) }
    })
    .await;
    // Three 302 answers given; one failure would have taken `moved` out.
    eventually("three checks answered", || async {
        moved.health_checks() >= 3
    })
    .await;
    let m = metrics(&gw).await;
    assert!(m.contains(&healthy_gauge("moved", &moved, 1)), "{m}");
    assert_eq!(gw.get("/moved").await.status, 200);
    let hosts = moved.health_hosts.lock().unwrap().clone();
    let want = format!("127.0.0.1:{}", moved.addr.port());
    assert!(hosts.iter().all(|h| *h == want), "{hosts:?}, want {want}");
}

/// Health checks: an answer slower than `health.timeout` is a failure, and
/// a longer `timeout` waits for it.
#[tokio::test]
async fn health_check_timeout_is_the_configured_one() {
    let (hasty, patient) = (
        Upstream::start("hasty").await,
        Upstream::start("patient").await,
    );
    // Both answer after 1s. The default timeout (2s) would accept that, so
    // only the configured 200ms takes `hasty` out.
    let spec = format!(
        "gatefold: 1
upstreams:
  hasty:
    targets: [{{ url: {} }}]
    health: {{ path: /health-delay/1000, interval: 20ms, timeout: 200ms, unhealthy-after: 1 }}
  patient:
    targets: [{{ url: {} }}]
    health: {{ path: /health-delay/1000, interval: 20ms, timeout: 10s, unhealthy-after: 1 }}
apis:
  a:
    routes:
      hasty: {{ path: /hasty, upstream: hasty }}
      patient: {{ path: /patient, upstream: patient }}
",
        hasty.url(),
        patient.url()
    );
    let gw = gateway(&spec).await;
    let out = healthy_gauge("hasty", &hasty, 0);
    let gw_ref = &gw;
    eventually("a slow check takes `hasty` out", || {
        let out = out.clone();
        async move { metrics(gw_ref).await.contains(&out) }
    })
    .await;
    gw.get("/hasty")
        .await
        .assert_error(503, "no healthy upstream");
    eventually("two slow checks answered", || async {
        patient.health_checks() >= 2
    })
    .await;
    let m = metrics(&gw).await;
    assert!(m.contains(&healthy_gauge("patient", &patient, 1)), "{m}");
}

// ---------------------------------------------------------------- jwt

/// `jwt`: `consumer-claim` names the claim that identifies the consumer;
/// `aud` may be a string; a missing claim leaves no header (and a header
/// the client sent under that name is removed).
#[tokio::test]
async fn jwt_consumer_claim_string_audience_and_missing_claims() {
    let up = Upstream::start("up").await;
    let spec = format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
consumers:
  billing: {{ groups: [internal] }}
apis:
  a:
    upstream: up
    policies:
      - jwt:
          algorithms: [HS256]
          secret: {{ env: S }}
          audiences: [orders]
          consumer-claim: client_id
          claims-to-headers: {{ tenant: x-tenant }}
    routes:
      r: {{ path: /* }}
      internal: {{ path: /internal, policies: [{{ acl: {{ allow: [internal] }} }}] }}
",
        up.url()
    );
    let gw = gateway_with(&spec, &[("S", JWT_SECRET)], |_| {}).await;
    let call = |path: &'static str, t: String| {
        let addr = gw.addr;
        async move {
            let auth = format!("Bearer {t}");
            send(
                addr,
                "GET",
                path,
                &[("authorization", &auth), ("x-tenant", "spoofed")],
                None,
            )
            .await
        }
    };
    // `client_id` names the consumer; `sub` does not matter.
    let billing =
        hs256(json!({ "client_id": "billing", "sub": "x", "aud": "orders", "tenant": "acme" }));
    let r = call("/x", billing.clone()).await;
    assert_eq!(r.status, 200, "a string aud that matches: {}", r.text());
    assert_eq!(r.upstream_header("x-tenant").as_deref(), Some("acme"));
    assert_eq!(call("/internal", billing).await.status, 200);
    assert_eq!(gw.log_lines().last().unwrap()["consumer"], "billing");
    let by_sub = hs256(json!({ "sub": "billing", "aud": "orders" }));
    let r = call("/x", by_sub.clone()).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["headers"].get("x-tenant"),
        None,
        "no claim, no header"
    );
    assert_eq!(
        call("/internal", by_sub).await.status,
        403,
        "`sub` is not the consumer claim here"
    );
    // A string aud that does not match.
    call("/x", hs256(json!({ "aud": "others" })))
        .await
        .assert_error(401, "unauthorized");
}

// ---------------------------------------------------------------- mock

/// `mock`: "a `content-type` in `headers` overrides the default".
#[tokio::test]
async fn mock_content_type_in_headers_overrides_the_default() {
    let gw = gateway(
        "gatefold: 1
apis:
  a:
    routes:
      html: { path: /html, policies: [{ mock: { headers: { content-type: text/html }, body: \"<p>hi</p>\" } }] }
      problem: { path: /problem, policies: [{ mock: { status: 400, headers: { content-type: application/problem+json }, json: { title: no } } }] }
",
    )
    .await;
    let r = gw.get("/html").await;
    assert_eq!(r.header_all("content-type"), ["text/html"]);
    assert_eq!(r.text(), "<p>hi</p>");
    let r = gw.get("/problem").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header_all("content-type"), ["application/problem+json"]);
    assert_eq!(r.json(), json!({ "title": "no" }));
}

// ---------------------------------------------------------------- attachment

/// "Attachment and inheritance" at run time: `gateway.policies` apply to
/// every route; an api's `disable` removes an inherited kind for its
/// routes, a route's `disable` for itself; a kind given lower replaces the
/// inherited one.
#[tokio::test]
async fn gateway_policies_and_disable_at_run_time() {
    let up = Upstream::start("up").await;
    let spec = format!(
        "gatefold: 1
gateway:
  policies:
    - request-headers: {{ set: {{ x-from-gateway: \"1\" }} }}
    - response-headers: {{ set: {{ x-gateway: edge }} }}
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
apis:
  plain:
    base-path: /plain
    upstream: up
    routes:
      r: {{ path: /* }}
  out:
    base-path: /out
    upstream: up
    disable: [request-headers]
    routes:
      back: {{ path: /back, disable: [response-headers] }}
      r: {{ path: /* }}
  own:
    base-path: /own
    upstream: up
    policies: [{{ response-headers: {{ set: {{ x-gateway: own }} }} }}]
    routes:
      r: {{ path: /* }}
",
        up.url()
    );
    let gw = gateway(&spec).await;
    let cases = [
        ("/plain/x", Some("1"), Some("edge")),
        ("/out/x", None, Some("edge")),
        ("/out/back", None, None),
        ("/own/x", Some("1"), Some("own")),
    ];
    for (path, sent, answered) in cases {
        let r = gw.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(
            r.upstream_header("x-from-gateway").as_deref(),
            sent,
            "{path}"
        );
        assert_eq!(r.header("x-gateway"), answered, "{path}");
    }
}
