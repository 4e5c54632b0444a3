//! Authentication, authorization, ip-filter, rate limits, size limits and
//! the response cache (policy-spec phases 1-6 and 11).

use crate::common;
use base64::Engine;
use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use std::time::Duration;

// Test-only key pairs (generated for these tests, used nowhere else).
const RS_PRIVATE: &str = include_str!("keys/rs256-private.pem");
const RS_PUBLIC: &str = include_str!("keys/rs256-public.pem");
const ES_PRIVATE: &str = include_str!("keys/es256-private.pem");
const ES_PUBLIC: &str = include_str!("keys/es256-public.pem");

fn auth_spec(up: &Upstream) -> String {
    format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
consumers:
  alice:
    groups: [staff]
    credentials:
      keys: [{{ env: ALICE_OLD }}, {{ env: ALICE_NEW }}]
      basic: {{ user: alice, password: {{ env: ALICE_PW }} }}
  bob:
    groups: [partners]
    credentials: {{ key: {{ env: BOB_KEY }} }}
apis:
  keyed:
    base-path: /keyed
    upstream: up
    policies: [{{ key-auth: {{}} }}]
    routes:
      r: {{ path: /* }}
  query:
    base-path: /query
    upstream: up
    policies: [{{ key-auth: {{ in: query }} }}]
    routes:
      r: {{ path: /* }}
  either:
    base-path: /either
    upstream: up
    policies: [{{ key-auth: {{}} }}, {{ basic-auth: {{ realm: staff }} }}]
    routes:
      r: {{ path: /* }}
      staff:
        path: /staff
        policies: [{{ acl: {{ allow: [staff] }} }}]
      no-partners:
        path: /no-partners
        policies: [{{ acl: {{ deny: [partners] }} }}]
",
        up.url()
    )
}

const SECRETS: [(&str, &str); 4] = [
    ("ALICE_OLD", "alice-old"),
    ("ALICE_NEW", "alice-new"),
    ("ALICE_PW", "s3cret:pw"),
    ("BOB_KEY", "bob-key"),
];

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

#[tokio::test]
async fn key_auth_in_header_and_query_removes_the_key() {
    let up = Upstream::start("up").await;
    let gw = gateway_with(&auth_spec(&up), &SECRETS, |_| {}).await;
    gw.get("/keyed/x").await.assert_error(401, "unauthorized");
    let r = gw
        .send("GET", "/keyed/x", &[("x-api-key", "wrong")], None)
        .await;
    r.assert_error(401, "unauthorized");
    assert_eq!(r.header("www-authenticate"), None);
    for key in ["alice-old", "alice-new", "bob-key"] {
        let r = gw
            .send("GET", "/keyed/x", &[("x-api-key", key)], None)
            .await;
        assert_eq!(r.status, 200, "{key}");
        assert_eq!(
            r.upstream_header("x-api-key"),
            None,
            "the key never reaches the upstream"
        );
    }
    let r = gw.get("/query/x?a=1&api_key=bob-key&b=2").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["query"], "a=1&b=2");
    let r = gw.get("/query/x?api_key=bob-key").await;
    assert_eq!(r.json()["query"], json!(null));
    assert_eq!(gw.get("/query/x?api_key=nope").await.status, 401);
    let consumers: Vec<_> = gw
        .log_lines()
        .iter()
        .map(|l| l["consumer"].clone())
        .collect();
    assert_eq!(consumers[2], json!("alice"));
    assert_eq!(consumers[4], json!("bob"));
    // Near misses of a stored key (prefix, extension, case, empty) are
    // refused: keys are compared in full, in constant time.
    for near in ["bob-ke", "bob-kez", "bob-key2", "BOB-KEY", "bob-key\\", ""] {
        let r = gw
            .send("GET", "/keyed/x", &[("x-api-key", near)], None)
            .await;
        assert_eq!(r.status, 401, "{near:?}");
    }
}

#[tokio::test]
async fn basic_auth_challenges_and_any_method_admits() {
    let up = Upstream::start("up").await;
    let gw = gateway_with(&auth_spec(&up), &SECRETS, |_| {}).await;
    let r = gw.get("/either/x").await;
    r.assert_error(401, "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"staff\""));
    let ok = basic("alice", "s3cret:pw");
    let r = gw
        .send("GET", "/either/x", &[("authorization", &ok)], None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream_header("authorization"), None);
    // Near misses of the password, an unknown user with alice's password,
    // and the user name's case: all refused.
    for (user, pw) in [
        ("alice", "s3cret"),
        ("alice", "s3cret:pw "),
        ("alice", "S3cret:pw"),
        ("alice", ""),
        ("mallory", "s3cret:pw"),
        ("Alice", "s3cret:pw"),
    ] {
        let bad = basic(user, pw);
        assert_eq!(
            gw.send("GET", "/either/x", &[("authorization", &bad)], None)
                .await
                .status,
            401,
            "{user}:{pw}"
        );
    }
    assert_eq!(
        gw.send("GET", "/either/x", &[("authorization", "Basic !!!")], None)
            .await
            .status,
        401
    );
    // key-auth is tried first and decides the consumer.
    let r = gw
        .send(
            "GET",
            "/either/x",
            &[("x-api-key", "bob-key"), ("authorization", &ok)],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(gw.log_lines().last().unwrap()["consumer"], "bob");
}

#[tokio::test]
async fn acl_allow_and_deny_by_group() {
    let up = Upstream::start("up").await;
    let gw = gateway_with(&auth_spec(&up), &SECRETS, |_| {}).await;
    let as_ = |key: &'static str, path: &'static str| {
        let addr = gw.addr;
        async move { send(addr, "GET", path, &[("x-api-key", key)], None).await }
    };
    assert_eq!(as_("alice-new", "/either/staff").await.status, 200);
    as_("bob-key", "/either/staff")
        .await
        .assert_error(403, "forbidden");
    as_("bob-key", "/either/no-partners")
        .await
        .assert_error(403, "forbidden");
    assert_eq!(as_("alice-new", "/either/no-partners").await.status, 200);
    // Authentication runs before acl: no credential is 401, not 403.
    assert_eq!(gw.get("/either/staff").await.status, 401);
}

#[tokio::test]
async fn missing_or_empty_secrets_refuse_the_config() {
    let up = Upstream::start("up").await;
    let opts = gatefold_target_reference::gateway::Options::new("127.0.0.1:0".parse().unwrap());
    let mut opts = opts;
    opts.secrets = std::sync::Arc::new(
        gatefold_target_reference::gateway::secrets::MapSecrets::new([
            ("ALICE_OLD", "a"),
            ("ALICE_NEW", ""),
            ("ALICE_PW", "p"),
        ]),
    );
    let err =
        match gatefold_target_reference::gateway::Gateway::start(compile(&auth_spec(&up)), opts)
            .await
        {
            Ok(_) => panic!("a config with a missing secret must not start"),
            Err(e) => e,
        };
    assert!(err.contains("`ALICE_NEW` is empty"), "{err}");
    assert!(err.contains("`BOB_KEY` is not set"), "{err}");
}

#[tokio::test]
async fn two_consumers_with_one_key_refuse_the_config() {
    let up = Upstream::start("up").await;
    let opts = gatefold_target_reference::gateway::Options::new("127.0.0.1:0".parse().unwrap());
    let mut opts = opts;
    opts.secrets = std::sync::Arc::new(
        gatefold_target_reference::gateway::secrets::MapSecrets::new([
            ("ALICE_OLD", "same"),
            ("ALICE_NEW", "a2"),
            ("ALICE_PW", "p"),
            ("BOB_KEY", "same"),
        ]),
    );
    let Err(err) =
        gatefold_target_reference::gateway::Gateway::start(compile(&auth_spec(&up)), opts).await
    else {
        panic!("duplicate keys must not start");
    };
    assert!(err.contains("have the same key value"), "{err}");
}

fn jwt_spec(up: &Upstream, alg: &str, key: &str) -> String {
    format!(
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
          issuer: https://auth.example.com/
          audiences: [orders]
          algorithms: [{alg}]
          {key}
          claims-to-headers: {{ sub: x-user-id, tenant: x-tenant }}
          leeway: 30s
    routes:
      r: {{ path: /* }}
      internal:
        path: /internal
        policies: [{{ acl: {{ allow: [internal] }} }}]
",
        up.url()
    )
}

fn token(alg: Algorithm, key: &EncodingKey, claims: serde_json::Value) -> String {
    encode(&Header::new(alg), &claims, key).unwrap()
}

fn claims(extra: serde_json::Value) -> serde_json::Value {
    let mut c = json!({
        "iss": "https://auth.example.com/",
        "aud": ["other", "orders"],
        "sub": "billing",
        "tenant": "acme",
        "exp": T0 + 60,
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

async fn bearer(gw: &Gw, path: &str, t: &str) -> Resp {
    gw.send(
        "GET",
        path,
        &[
            ("authorization", &format!("Bearer {t}")),
            ("x-user-id", "spoofed"),
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn jwt_hs256_checks_signature_time_issuer_and_audience() {
    let up = Upstream::start("up").await;
    let spec = jwt_spec(&up, "HS256", "secret: { env: JWT_SECRET }");
    let gw = gateway_with(
        &spec,
        &[("JWT_SECRET", "0123456789abcdef0123456789abcdef")],
        |_| {},
    )
    .await;
    let key = EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
    let good = token(Algorithm::HS256, &key, claims(json!({})));
    let r = bearer(&gw, "/x", &good).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.upstream_header("x-user-id").as_deref(), Some("billing"));
    assert_eq!(r.upstream_header("x-tenant").as_deref(), Some("acme"));
    assert_eq!(
        r.upstream_header("authorization"),
        Some(format!("Bearer {good}"))
    );
    assert_eq!(
        r.json()["headers"]["x-user-id"].as_array().unwrap().len(),
        1
    );
    // The consumer claim names a consumer: acl sees its groups.
    assert_eq!(bearer(&gw, "/internal", &good).await.status, 200);
    let stranger = token(Algorithm::HS256, &key, claims(json!({ "sub": "nobody" })));
    assert_eq!(bearer(&gw, "/x", &stranger).await.status, 200);
    assert_eq!(bearer(&gw, "/internal", &stranger).await.status, 403);

    let refused = [
        token(
            Algorithm::HS256,
            &EncodingKey::from_secret(b"wrong-secret-wrong-secret-wrong!"),
            claims(json!({})),
        ),
        token(
            Algorithm::HS256,
            &key,
            claims(json!({ "iss": "https://evil/" })),
        ),
        token(Algorithm::HS256, &key, claims(json!({ "aud": "others" }))),
        token(Algorithm::HS256, &key, claims(json!({ "exp": T0 - 31 }))),
        token(Algorithm::HS256, &key, claims(json!({ "nbf": T0 + 31 }))),
        token(
            Algorithm::HS512,
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
            claims(json!({})),
        ),
        // alg none: header {"alg":"none"}, no signature.
        format!(
            "{}.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(r#"{"alg":"none","typ":"JWT"}"#),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
        ),
        "not-a-token".to_string(),
    ];
    for (i, t) in refused.iter().enumerate() {
        bearer(&gw, "/x", t).await.assert_error(401, "unauthorized");
        let _ = i;
    }
    // Within the leeway, and time moves with the injected clock.
    let edge = token(
        Algorithm::HS256,
        &key,
        claims(json!({ "exp": T0 - 29, "nbf": T0 + 29 })),
    );
    assert_eq!(bearer(&gw, "/x", &edge).await.status, 200);
    gw.clock.advance(Duration::from_secs(120));
    assert_eq!(bearer(&gw, "/x", &good).await.status, 401);
    assert_eq!(up.hits(), 4);
}

#[tokio::test]
async fn jwt_rs256_and_es256_public_keys() {
    let up = Upstream::start("up").await;
    for (alg, private, public) in [
        (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(RS_PRIVATE.as_bytes()).unwrap(),
            RS_PUBLIC,
        ),
        (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(ES_PRIVATE.as_bytes()).unwrap(),
            ES_PUBLIC,
        ),
    ] {
        let spec = jwt_spec(&up, &format!("{alg:?}"), "public-key: { env: JWT_PUBLIC }");
        let gw = gateway_with(&spec, &[("JWT_PUBLIC", public)], |_| {}).await;
        let t = token(alg, &private, claims(json!({ "sub": 7 })));
        let r = bearer(&gw, "/x", &t).await;
        assert_eq!(r.status, 200, "{alg:?}: {}", r.text());
        // Non-string claims are copied as compact JSON.
        assert_eq!(r.upstream_header("x-user-id").as_deref(), Some("7"));
        let forged = token(
            Algorithm::HS256,
            &EncodingKey::from_secret(public.as_bytes()),
            claims(json!({})),
        );
        assert_eq!(
            bearer(&gw, "/x", &forged).await.status,
            401,
            "{alg:?} key confusion"
        );
    }
}

#[tokio::test]
async fn ip_filter_deny_first_then_allow() {
    let spec = |policy: &str| {
        format!(
            "gatefold: 1
apis:
  a:
    policies: [{{ ip-filter: {policy} }}]
    routes:
      r: {{ path: /, policies: [{{ mock: {{ body: ok }} }}] }}
"
        )
    };
    for (policy, status) in [
        ("{ deny: [127.0.0.0/8] }", 403),
        ("{ allow: [10.0.0.0/8] }", 403),
        ("{ allow: [127.0.0.1] }", 200),
        ("{ allow: [127.0.0.0/8], deny: [127.0.0.1] }", 403),
        ("{ deny: [\"2001:db8::/32\"] }", 200),
    ] {
        let gw = gateway(&spec(policy)).await;
        let r = gw.get("/").await;
        assert_eq!(r.status, status, "{policy}");
        if status == 403 {
            r.assert_error(403, "forbidden");
        }
    }
}

#[tokio::test]
async fn rate_limit_fixed_windows_with_headers() {
    let spec = "gatefold: 1
apis:
  a:
    policies: [{ rate-limit: { requests: 3, per: 10s } }]
    routes:
      one: { path: /one, policies: [{ mock: { body: ok } }] }
      two: { path: /two, policies: [{ mock: { body: ok } }] }
      own:
        path: /own
        policies: [{ rate-limit: { requests: 1, per: 1m, key: \"header:x-tenant\" } }, { mock: { body: ok } }]
";
    let gw = gateway(spec).await;
    // T0 is 0s into a 10s window.
    let r = gw.get("/one").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("2"));
    assert_eq!(r.header("x-ratelimit-reset"), Some("10"));
    gw.clock.advance(Duration::from_millis(2500));
    // Api-level: both routes count together.
    assert_eq!(
        gw.get("/two").await.header("x-ratelimit-remaining"),
        Some("1")
    );
    assert_eq!(
        gw.get("/one").await.header("x-ratelimit-remaining"),
        Some("0")
    );
    let r = gw.get("/two").await;
    r.assert_error(429, "too many requests");
    assert_eq!(r.header("retry-after"), Some("8"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    // The next window starts at a multiple of `per`.
    gw.clock.advance(Duration::from_millis(7500));
    assert_eq!(gw.get("/one").await.status, 200);

    // Per header value; requests without it are counted by IP.
    let t = |tenant: &'static str| {
        let addr = gw.addr;
        async move {
            send(addr, "GET", "/own", &[("x-tenant", tenant)], None)
                .await
                .status
        }
    };
    assert_eq!(t("a").await, 200);
    assert_eq!(t("b").await, 200);
    assert_eq!(t("a").await, 429);
    assert_eq!(gw.get("/own").await.status, 200);
    assert_eq!(gw.get("/own").await.status, 429);

    let metrics = get(gw.admin(), "/metrics").await.text();
    assert!(
        metrics.contains("gatefold_rate_limited_total{route=\"a.two\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("gatefold_requests_total{route=\"a.two\",status=\"429\"} 1"));
}

#[tokio::test]
async fn rate_limit_by_consumer_and_counters_survive_a_reload() {
    let spec = |body: &str| {
        format!(
            "gatefold: 1
consumers:
  a: {{ credentials: {{ key: {{ env: KA }} }} }}
  b: {{ credentials: {{ key: {{ env: KB }} }} }}
apis:
  x:
    policies: [{{ key-auth: {{}} }}, {{ rate-limit: {{ requests: 2, per: 1m, key: consumer }} }}]
    routes:
      r: {{ path: /, policies: [{{ mock: {{ body: {body} }} }}] }}
"
        )
    };
    let gw = gateway_with(&spec("one"), &[("KA", "ka"), ("KB", "kb")], |_| {}).await;
    let as_ = |k: &'static str| {
        let addr = gw.addr;
        async move { send(addr, "GET", "/", &[("x-api-key", k)], None).await }
    };
    assert_eq!(as_("ka").await.status, 200);
    assert_eq!(as_("ka").await.status, 200);
    assert_eq!(as_("ka").await.status, 429);
    assert_eq!(as_("kb").await.status, 200);
    // A new config with the same policy in the same place keeps counting.
    gw.gw.apply(compile(&spec("two"))).unwrap();
    let r = as_("ka").await;
    assert_eq!(r.status, 429);
    let r = as_("kb").await;
    assert_eq!((r.status, r.text().as_str()), (200, "two"));
    assert_eq!(as_("kb").await.status, 429);
}

#[tokio::test]
async fn body_limits_by_content_length_and_by_bytes_received() {
    let up = Upstream::start("up").await;
    let spec = format!(
        "gatefold: 1
gateway:
  baseline: {{ max-body: 1KiB }}
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
consumers:
  c: {{ credentials: {{ key: {{ env: K }} }} }}
apis:
  a:
    upstream: up
    routes:
      small: {{ path: /small }}
      big: {{ path: /big, policies: [{{ request-size-limit: {{ max: 4KiB }} }}] }}
      auth: {{ path: /auth, policies: [{{ key-auth: {{}} }}] }}
",
        up.url()
    );
    let gw = gateway_with(&spec, &[("K", "k")], |_| {}).await;
    let kib = |n: usize| "x".repeat(n * 1024);
    assert_eq!(
        gw.send("POST", "/small", &[], Some(&kib(1))).await.json()["body"]
            .as_str()
            .unwrap()
            .len(),
        1024
    );
    gw.send("POST", "/small", &[], Some(&(kib(1) + "x")))
        .await
        .assert_error(413, "payload too large");
    assert_eq!(
        gw.send("POST", "/big", &[], Some(&kib(4))).await.status,
        200
    );
    gw.send("POST", "/big", &[], Some(&kib(5)))
        .await
        .assert_error(413, "payload too large");
    // Phase 3 comes before authentication.
    gw.send("POST", "/auth", &[], Some(&kib(2)))
        .await
        .assert_error(413, "payload too large");

    // Chunked bodies are measured as they arrive.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for (size, status) in [(1000usize, "200"), (1500, "413")] {
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        let chunk = "y".repeat(size);
        let req = format!(
            "POST /small HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
            size
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(
            out.starts_with(&format!("HTTP/1.1 {status}")),
            "{size}: {out}"
        );
    }
}

#[tokio::test]
async fn cache_serves_stored_responses_for_ttl_per_consumer_and_vary() {
    let up = Upstream::start("up").await;
    let spec = format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
apis:
  a:
    upstream: up
    policies:
      - cache: {{ ttl: 30s, vary: [accept-language] }}
      - response-headers: {{ set: {{ x-phase-13: yes }} }}
    routes:
      r: {{ path: /* }}
",
        up.url()
    );
    let gw = gateway(&spec).await;
    let r1 = gw.get("/item?x=1").await;
    assert_eq!(r1.status, 200);
    let r2 = gw.get("/item?x=1").await;
    assert_eq!(r2.body, r1.body);
    assert_eq!(r2.header("x-phase-13"), Some("yes"));
    assert_eq!(r2.header("x-upstream"), Some("up"));
    assert_eq!(up.hits(), 1);
    assert_eq!(gw.log_lines()[1]["cache"], "hit");
    // Different query, vary header or method: a different entry.
    gw.get("/item?x=2").await;
    gw.send("GET", "/item?x=1", &[("accept-language", "fr")], None)
        .await;
    gw.send("POST", "/item?x=1", &[], None).await;
    gw.send("POST", "/item?x=1", &[], None).await;
    assert_eq!(up.hits(), 5);
    // Not stored: non-200, set-cookie, no-store, private.
    for h in [
        ("x-test-status", "201"),
        ("x-test-header", "set-cookie=a=b"),
        ("x-test-header", "cache-control=no-store"),
        ("x-test-header", "cache-control=public, private"),
    ] {
        let before = up.hits();
        gw.send("GET", "/uncached", &[h], None).await;
        gw.send("GET", "/uncached", &[h], None).await;
        assert_eq!(up.hits(), before + 2, "{h:?}");
    }
    // Served for ttl whatever the response said, then fetched again.
    gw.clock.advance(Duration::from_secs(29));
    gw.get("/item?x=1").await;
    assert_eq!(up.hits(), 13);
    gw.clock.advance(Duration::from_secs(1));
    gw.get("/item?x=1").await;
    assert_eq!(up.hits(), 14);
}

#[tokio::test]
async fn cache_keeps_consumers_apart() {
    let up = Upstream::start("up").await;
    let spec = format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
consumers:
  a: {{ credentials: {{ key: {{ env: KA }} }} }}
  b: {{ credentials: {{ key: {{ env: KB }} }} }}
apis:
  x:
    upstream: up
    policies: [{{ key-auth: {{}} }}, {{ cache: {{ ttl: 1m }} }}]
    routes:
      r: {{ path: /* }}
",
        up.url()
    );
    let gw = gateway_with(&spec, &[("KA", "ka"), ("KB", "kb")], |_| {}).await;
    for k in ["ka", "kb", "ka", "kb"] {
        assert_eq!(
            gw.send("GET", "/me", &[("x-api-key", k)], None)
                .await
                .status,
            200
        );
    }
    assert_eq!(up.hits(), 2);
    // No credential: refused before the cache is consulted.
    assert_eq!(gw.get("/me").await.status, 401);
}
