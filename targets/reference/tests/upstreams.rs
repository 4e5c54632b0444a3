//! Load balancing, health checks, retries, timeouts, traffic splits and the
//! gateway's 502/503/504 (policy-spec "upstreams", `retry`, `timeout`,
//! `traffic-split`).

use crate::common;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

async fn spread(gw: &Gw, n: usize, headers: &[(&str, &str)]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let r = gw.send("GET", "/", headers, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        *seen
            .entry(r.header("x-upstream").unwrap().to_string())
            .or_default() += 1;
    }
    seen
}

fn pool_spec(targets: &[(&Upstream, u32)], extra: &str) -> String {
    let list: Vec<String> = targets
        .iter()
        .map(|(u, w)| format!("{{ url: {}, weight: {w} }}", u.url()))
        .collect();
    format!(
        "gatefold: 1
upstreams:
  pool:
    targets: [{}]
{extra}
apis:
  a:
    upstream: pool
    routes:
      r: {{ path: /* }}
",
        list.join(", ")
    )
}

#[tokio::test]
async fn weighted_round_robin() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let gw = gateway(&pool_spec(&[(&a, 3), (&b, 1)], "")).await;
    let seen = spread(&gw, 40, &[]).await;
    assert_eq!(seen["a"], 30);
    assert_eq!(seen["b"], 10);
}

#[tokio::test]
async fn least_request_prefers_the_idle_target() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let gw = gateway(&pool_spec(
        &[(&a, 1), (&b, 1)],
        "    balance: least-request",
    ))
    .await;
    // One request held in flight (its answer is 60s away; it is dropped at
    // the end); the next ones go to the target that is free.
    let addr = gw.addr;
    let slow =
        tokio::spawn(
            async move { send(addr, "GET", "/", &[("x-test-delay-ms", "60000")], None).await },
        );
    eventually("the slow request reached an upstream", || async {
        a.hits() + b.hits() == 1
    })
    .await;
    let busy = if a.hits() == 1 { "a" } else { "b" };
    let seen = spread(&gw, 6, &[]).await;
    assert!(!seen.contains_key(busy), "{seen:?} while {busy} is busy");
    slow.abort();
}

#[tokio::test]
async fn hash_header_keeps_a_key_on_one_target() {
    let ups = [
        Upstream::start("a").await,
        Upstream::start("b").await,
        Upstream::start("c").await,
    ];
    let gw = gateway(&pool_spec(
        &[(&ups[0], 1), (&ups[1], 1), (&ups[2], 1)],
        "    balance: hash-header:x-user-id",
    ))
    .await;
    let mut owners = BTreeMap::new();
    for user in ["u1", "u2", "u3", "u4", "u5", "u6"] {
        let seen = spread(&gw, 5, &[("x-user-id", user)]).await;
        assert_eq!(seen.len(), 1, "{user} moved: {seen:?}");
        owners.insert(user, seen.into_keys().next().unwrap());
    }
    assert!(
        owners
            .values()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1
    );
    // Without the header: round robin.
    assert_eq!(spread(&gw, 6, &[]).await.len(), 3);
}

#[tokio::test]
async fn active_health_checks_take_targets_out_and_back() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let health = "    health: { path: /healthz, interval: 20ms, timeout: 5s, unhealthy-after: 2, healthy-after: 2 }";
    let gw = gateway(&pool_spec(&[(&a, 1), (&b, 1)], health)).await;
    assert_eq!(spread(&gw, 4, &[]).await.len(), 2);
    a.healthy.store(false, std::sync::atomic::Ordering::SeqCst);
    let admin = gw.admin();
    let gauge = format!(
        "gatefold_upstream_healthy{{upstream=\"pool\",target=\"{}\"}}",
        a.url()
    );
    eventually("a is taken out", || {
        let g = gauge.clone();
        async move {
            get(admin, "/metrics")
                .await
                .text()
                .contains(&format!("{g} 0"))
        }
    })
    .await;
    assert_eq!(spread(&gw, 6, &[]).await.keys().collect::<Vec<_>>(), ["b"]);
    // Every target unhealthy: 503.
    b.healthy.store(false, std::sync::atomic::Ordering::SeqCst);
    eventually("no healthy target", || {
        let addr = gw.addr;
        async move { get(addr, "/").await.status == 503 }
    })
    .await;
    gw.get("/").await.assert_error(503, "no healthy upstream");
    a.healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    eventually("a is back", || {
        let addr = gw.addr;
        async move { get(addr, "/").await.status == 200 }
    })
    .await;
}

#[tokio::test]
async fn passive_ejection_on_live_failures() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    // Checks are rare, so only live traffic can take `b` out.
    let health = "    health: { path: /healthz, interval: 1h, unhealthy-after: 2 }\n    retries: { attempts: 1 }";
    let gw = gateway(&pool_spec(&[(&a, 1), (&b, 1)], health)).await;
    b.stop_and_wait().await;
    // Connect failures are retried on the other target, and count against b.
    for _ in 0..6 {
        assert_eq!(gw.get("/").await.status, 200);
    }
    let metrics = get(gw.admin(), "/metrics").await.text();
    assert!(
        metrics.contains(&format!(
            "gatefold_upstream_healthy{{upstream=\"pool\",target=\"{}\"}} 0",
            b.url()
        )),
        "{metrics}"
    );
    let log = gw.log_lines();
    assert!(log.iter().all(|l| l["target"] == a.url().as_str()));
}

#[tokio::test]
async fn connect_failures_are_502_and_retried_for_any_method() {
    let a = Upstream::start("a").await;
    let dead = Upstream::start("dead").await;
    dead.stop_and_wait().await;
    let without = pool_spec(&[(&dead, 1)], "");
    let gw = gateway(&without).await;
    gw.get("/").await.assert_error(502, "bad gateway");
    let with = pool_spec(
        &[(&dead, 1), (&a, 1)],
        "    retries: { attempts: 1, on: [connect-failure] }",
    );
    let gw = gateway(&with).await;
    for _ in 0..4 {
        let r = gw.send("POST", "/", &[], Some("payload")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["body"], "payload");
    }
}

#[tokio::test]
async fn status_retries_only_for_idempotent_methods_and_pass_the_last_answer() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let spec = format!(
        "gatefold: 1
upstreams:
  pool:
    targets: [{{ url: {} }}, {{ url: {} }}]
apis:
  x:
    upstream: pool
    routes:
      r: {{ path: /*, policies: [{{ retry: {{ attempts: 2, on: [503] }} }}] }}
",
        a.url(),
        b.url()
    );
    let gw = gateway(&spec).await;
    let r = gw.send("GET", "/", &[("x-test-status", "503")], None).await;
    assert_eq!(r.status, 503);
    assert!(
        r.header("x-upstream").is_some(),
        "the upstream's own answer"
    );
    assert_eq!(a.hits() + b.hits(), 3);
    let r = gw
        .send("POST", "/", &[("x-test-status", "503")], None)
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(a.hits() + b.hits(), 4);
    // 500 is not in `on`.
    gw.send("GET", "/", &[("x-test-status", "500")], None).await;
    assert_eq!(a.hits() + b.hits(), 5);
}

#[tokio::test]
async fn each_retry_prefers_a_target_not_tried_yet() {
    // Weights 3:1 make plain round robin pick `a` twice in a row (its
    // schedule is a, a, b, a), so a retry that did not avoid the target
    // just tried would hit `a` twice for some request.
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let gw = gateway(&pool_spec(
        &[(&a, 3), (&b, 1)],
        "    retries: { attempts: 1, on: [503] }",
    ))
    .await;
    for i in 0..4 {
        let (ha, hb) = (a.hits(), b.hits());
        let r = gw.send("GET", "/", &[("x-test-status", "503")], None).await;
        assert_eq!(r.status, 503);
        assert_eq!(
            (a.hits() - ha, b.hits() - hb),
            (1, 1),
            "request {i}: one try on each target"
        );
    }
}

#[tokio::test]
async fn a_hanging_upstream_is_504_after_the_read_timeout() {
    let a = Upstream::start("a").await;
    let spec = format!(
        "gatefold: 1
upstreams:
  slow:
    targets: [{{ url: {} }}]
    timeouts: {{ read: 10s }}
apis:
  x:
    upstream: slow
    routes:
      r: {{ path: /*, policies: [{{ timeout: {{ read: 150ms }} }}, {{ retry: {{ attempts: 1, on: [timeout] }} }}] }}
",
        a.url()
    );
    let gw = gateway(&spec).await;
    let started = std::time::Instant::now();
    gw.send("GET", "/", &[("x-test-hang", "1")], None)
        .await
        .assert_error(504, "upstream timeout");
    assert_eq!(a.hits(), 2, "retried once on timeout");
    // Two tries of the route's 150ms, not of the upstream's 10s (the
    // bound is loose: only a loaded machine's delays fit in between).
    assert!(started.elapsed() < Duration::from_secs(8));
    // A body that stops mid-way is cut off after the read timeout.
    let started = std::time::Instant::now();
    let r = send_cut(gw.addr, "GET", "/", &[("x-test-stall-body", "1")], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "{\"partial\":");
    assert!(r.cut.is_some(), "the client sees a broken body, not an end");
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn an_upstream_that_resets_is_502() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            // Read the request, then close with a reset (linger 0).
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.set_zero_linger();
            drop(s);
        }
    });
    let spec = format!(
        "gatefold: 1
upstreams:
  r: {{ targets: [{{ url: http://{addr} }}] }}
apis:
  x:
    upstream: r
    routes:
      r: {{ path: /* }}
"
    );
    let gw = gateway(&spec).await;
    gw.get("/").await.assert_error(502, "bad gateway");
    // A garbage answer is a bad gateway too.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"NOT HTTP AT ALL\r\n\r\n").await;
        }
    });
    let spec = spec.replace(&addr.to_string(), &garbage.to_string());
    let gw = gateway(&spec).await;
    gw.get("/").await.assert_error(502, "bad gateway");
}

#[tokio::test]
async fn traffic_split_header_match_then_weights() {
    let (v1, v2) = (Upstream::start("v1").await, Upstream::start("v2").await);
    let spec = format!(
        "gatefold: 1
upstreams:
  v1: {{ targets: [{{ url: {} }}] }}
  v2: {{ targets: [{{ url: {} }}] }}
apis:
  x:
    routes:
      r:
        path: /*
        policies:
          - traffic-split:
              header-match: [{{ name: x-canary, value: always, upstream: v2 }}]
              to: [{{ upstream: v1, weight: 1 }}, {{ upstream: v2, weight: 0 }}]
",
        v1.url(),
        v2.url()
    );
    let gw = gateway(&spec).await;
    assert_eq!(
        spread(&gw, 10, &[]).await.keys().collect::<Vec<_>>(),
        ["v1"]
    );
    assert_eq!(
        spread(&gw, 3, &[("x-canary", "always")])
            .await
            .keys()
            .collect::<Vec<_>>(),
        ["v2"]
    );
    assert_eq!(
        spread(&gw, 3, &[("x-canary", "Always")])
            .await
            .keys()
            .collect::<Vec<_>>(),
        ["v1"]
    );
    assert_eq!(gw.log_lines().last().unwrap()["upstream"], "v1");

    let spec = spec.replace("weight: 0", "weight: 1");
    let gw = gateway(&spec).await;
    let seen = spread(&gw, 200, &[]).await;
    assert!(seen["v1"] > 60 && seen["v2"] > 60, "{seen:?}");
}

/// An HTTPS upstream with a certificate from the test CA (tests/keys), and
/// how many requests for `/healthz` it answered.
async fn tls_upstream() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(include_bytes!("keys/tls-server.pem"))
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("keys/tls-server-key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let checks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = checks.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let counted = counted.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        if req.uri().path() == "/healthz" {
                            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        async move {
                            let body = format!(
                                "tls {} host={}",
                                req.uri().path(),
                                req.headers()
                                    .get("host")
                                    .and_then(|h| h.to_str().ok())
                                    .unwrap_or("")
                            );
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from(body)),
                            ))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, checks)
}

#[tokio::test]
async fn https_upstreams_are_verified_against_trusted_roots() {
    let (addr, checks) = tls_upstream().await;
    let spec = format!(
        "gatefold: 1
upstreams:
  secure:
    targets: [{{ url: https://127.0.0.1:{} }}]
    health: {{ path: /healthz, interval: 20ms, timeout: 10s, unhealthy-after: 1 }}
apis:
  x:
    upstream: secure
    routes:
      r: {{ path: /* }}
",
        addr.port()
    );
    let ca = include_str!("keys/tls-ca.pem").to_string();
    let gw = gateway_with(&spec, &[], |o| o.upstream_ca = Some(ca)).await;
    let r = gw.get("/over-tls").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        format!("tls /over-tls host=127.0.0.1:{}", addr.port())
    );
    // Health checks speak TLS too: after checks were answered (one failure
    // would take it out), the target is still in rotation.
    eventually("three health checks over TLS", || async {
        checks.load(std::sync::atomic::Ordering::SeqCst) >= 3
    })
    .await;
    let gauge = format!(
        "gatefold_upstream_healthy{{upstream=\"secure\",target=\"https://127.0.0.1:{}\"}} 1",
        addr.port()
    );
    let metrics = get(gw.admin(), "/metrics").await.text();
    assert!(metrics.contains(&gauge), "{metrics}");
    assert_eq!(gw.get("/again").await.status, 200);
    // Without the CA the certificate is not trusted: no connection, 502.
    let untrusting = gateway(&spec.replace(
        "    health: { path: /healthz, interval: 20ms, timeout: 10s, unhealthy-after: 1 }\n",
        "",
    ))
    .await;
    untrusting
        .get("/over-tls")
        .await
        .assert_error(502, "bad gateway");
}
