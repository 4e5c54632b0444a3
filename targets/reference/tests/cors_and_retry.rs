//! Language 1.1's smaller additions over real sockets: cors origin
//! patterns, `methods`/`headers: ["*"]`, `credentials` with a wildcard
//! origin (the request's origin, never `*`), `expose` on preflights; and
//! `retry` `on: reset`.

use crate::common;

use common::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn cors_spec(up: &Upstream) -> String {
    format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {url} }}] }}
apis:
  a:
    upstream: up
    routes:
      pattern:
        path: /p/*
        policies:
          - cors:
              origins: [\"https://*.example.com\"]
              methods: [\"*\"]
              headers: [\"*\"]
              expose: [x-request-id, x-upstream]
              credentials: true
      any-credentials:
        path: /c/*
        policies: [{{ cors: {{ origins: [\"*\"], credentials: true }} }}]
      any:
        path: /s/*
        policies: [{{ cors: {{ origins: [\"*\"], methods: [\"*\"], headers: [\"*\"] }} }}]
",
        url = up.url()
    )
}

async fn preflight(gw: &Gw, path: &str, origin: &str) -> Resp {
    gw.send(
        "OPTIONS",
        path,
        &[
            ("origin", origin),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-a, x-b"),
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn wildcard_origins_with_credentials_echo_what_was_asked() {
    let up = Upstream::start("up").await;
    let gw = gateway(&cors_spec(&up)).await;

    // A pattern with credentials: every `*` is answered with what was asked.
    let r = preflight(&gw, "/p/x", "https://app.example.com").await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header_all("vary"), ["origin"]);
    assert_eq!(r.header("access-control-allow-methods"), Some("PUT"));
    assert_eq!(r.header("access-control-allow-headers"), Some("x-a, x-b"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("x-request-id, x-upstream")
    );
    assert_eq!(up.hits(), 0, "preflights are never proxied");
    // Two labels under the domain match too; the bare domain, another
    // scheme and a look-alike do not.
    let r = preflight(&gw, "/p/x", "https://a.b.example.com").await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://a.b.example.com")
    );
    for other in [
        "https://example.com",
        "http://app.example.com",
        "https://app.example.com.evil.net",
        "https://evilexample.com",
    ] {
        let r = preflight(&gw, "/p/x", other).await;
        assert_eq!(r.status, 204, "{other}");
        assert_eq!(r.header("access-control-allow-origin"), None, "{other}");
    }
    // An actual request from a matching origin.
    let r = gw
        .send(
            "GET",
            "/p/x",
            &[("origin", "https://app.example.com")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(r.header_all("vary").contains(&"origin".to_string()));

    // `*` with credentials: the request's origin, never `*`.
    for path in ["/c/x", "/c/y"] {
        let r = gw
            .send("GET", path, &[("origin", "https://anyone.test")], None)
            .await;
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://anyone.test")
        );
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        assert!(r.header_all("vary").contains(&"origin".to_string()));
    }
    let r = preflight(&gw, "/c/x", "https://anyone.test").await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://anyone.test")
    );

    // Without credentials, `*` is answered as `*`, the same for everyone.
    let r = preflight(&gw, "/s/x", "https://anyone.test").await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-methods"), Some("*"));
    assert_eq!(r.header("access-control-allow-headers"), Some("*"));
    assert!(r.header_all("vary").is_empty());
    gw.gw.shutdown().await;
}

/// An upstream that closes the connection, without answering, on the first
/// `resets` requests it reads, then answers 200 `ok`.
async fn resetting_upstream(resets: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                    let mut chunk = [0u8; 4096];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                if counted.fetch_add(1, Ordering::SeqCst) < resets {
                    // Closed before any answer: a reset as the client sees it.
                    return;
                }
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (addr, seen)
}

fn retry_spec(addr: SocketAddr, on: &str) -> String {
    format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: \"http://{addr}\" }}] }}
apis:
  a:
    upstream: up
    routes:
      r: {{ path: /*, policies: [{{ retry: {{ attempts: 1, on: [{on}] }} }}] }}
"
    )
}

#[tokio::test]
async fn reset_retries_idempotent_requests_the_upstream_closed_on() {
    // `on: [reset]`: the GET whose connection was closed is sent again.
    let (addr, seen) = resetting_upstream(1).await;
    let gw = gateway(&retry_spec(addr, "reset")).await;
    let r = gw.get("/x").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    gw.gw.shutdown().await;

    // A POST may have been acted on: not sent again, 502.
    let (addr, seen) = resetting_upstream(1).await;
    let gw = gateway(&retry_spec(addr, "reset")).await;
    let r = gw.send("POST", "/x", &[], Some("b")).await;
    r.assert_error(502, "bad gateway");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    gw.gw.shutdown().await;

    // Without `reset` in `on`, a reset is not retried.
    let (addr, seen) = resetting_upstream(1).await;
    let gw = gateway(&retry_spec(addr, "connect-failure")).await;
    let r = gw.get("/x").await;
    r.assert_error(502, "bad gateway");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    gw.gw.shutdown().await;
}
