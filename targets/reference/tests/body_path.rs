//! The request body's way through the gateway, over real sockets: the
//! client-body timeout is the client's (408, no health penalty) and the
//! upstream `read` timeout the upstream's; bodies stream, and a refused
//! request's body is not read.

use crate::common;

use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads everything the gateway sends until it closes (or 10 s pass).
async fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// One upstream whose `read` timeout is `read`, and extra upstream YAML.
fn spec(up: &Upstream, read: &str, extra: &str) -> String {
    format!(
        "gatefold: 1
upstreams:
  up:
    targets: [{{ url: {url} }}]
    timeouts: {{ read: {read} }}
{extra}apis:
  main:
    upstream: up
    routes:
      all: {{ path: /* }}
",
        url = up.url()
    )
}

/// The two ways an HTTP/1.1 body is framed: a request head, then the body
/// as pieces of one byte each, then what ends it.
const FRAMINGS: [(&str, &str, &str); 2] = [
    ("content-length: 12\r\n", "x", ""),
    ("transfer-encoding: chunked\r\n", "1\r\nx\r\n", "0\r\n\r\n"),
];

#[tokio::test]
async fn a_slow_upload_within_the_body_timeout_outlasts_the_upstream_read_timeout() {
    let up = Upstream::start("up").await;
    // read 1s (room for a loaded machine to answer once the body is in);
    // the client-body timeout 5s.
    let gw = gateway_with(&spec(&up, "1s", ""), &[], |o| {
        o.body_read_timeout = Duration::from_secs(5);
    })
    .await;
    for (framing, piece, end) in FRAMINGS {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(
            format!("POST /up HTTP/1.1\r\nhost: h\r\nconnection: close\r\n{framing}\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        // 12 bytes, 250ms apart: 3 s in all, three times the read timeout,
        // each gap well within the client-body timeout.
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            s.write_all(piece.as_bytes()).await.unwrap();
        }
        s.write_all(end.as_bytes()).await.unwrap();
        let got = read_all(&mut s).await;
        assert!(got.starts_with("HTTP/1.1 200"), "{framing:?} -> {got:?}");
        assert!(got.contains(r#""body":"xxxxxxxxxxxx""#), "{got:?}");
    }
}

#[tokio::test]
async fn a_stalled_upload_gets_408() {
    let up = Upstream::start("up").await;
    // A client-body timeout of 300ms; read stays 30s, so only the
    // client-body timeout can end these.
    let gw = gateway_with(&spec(&up, "30s", ""), &[], |o| {
        o.body_read_timeout = Duration::from_millis(300);
    })
    .await;
    for (framing, piece, _) in FRAMINGS {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(format!("POST /up HTTP/1.1\r\nhost: h\r\n{framing}\r\n{piece}").as_bytes())
            .await
            .unwrap();
        let got = read_all(&mut s).await;
        assert!(got.starts_with("HTTP/1.1 408"), "{framing:?} -> {got:?}");
        assert!(got.contains("content-type: application/json"), "{got:?}");
        assert!(got.ends_with(r#"{"error":"request timeout"}"#), "{got:?}");
    }
}

#[tokio::test]
async fn stalled_uploads_do_not_take_a_healthy_target_out_of_rotation() {
    let up = Upstream::start("up").await;
    // Passive ejection after 3 failures; the active check never runs within
    // the test, so it cannot put the target back. The upstream read timeout
    // (500ms) is shorter than the client-body timeout (1.5s): were it
    // running during the upload, each stall would count as a failure.
    let health = "    health: { path: /healthz, interval: 1h, unhealthy-after: 3 }\n";
    let gw = gateway_with(&spec(&up, "500ms", health), &[], |o| {
        o.body_read_timeout = Duration::from_millis(1500);
    })
    .await;
    for _ in 0..3 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(b"POST /up HTTP/1.1\r\nhost: h\r\ncontent-length: 10\r\n\r\nabc")
            .await
            .unwrap();
        let got = read_all(&mut s).await;
        assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");
    }
    // The target is still in rotation.
    let r = gw.get("/up").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn an_unauthenticated_chunked_upload_is_refused_before_its_body_is_read() {
    let up = Upstream::start("up").await;
    let spec = format!(
        "gatefold: 1
gateway:
  baseline: {{ max-body: 200MiB }}
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
consumers:
  c: {{ credentials: {{ key: {{ env: K }} }} }}
apis:
  a:
    upstream: up
    routes:
      upload: {{ path: /upload, methods: [POST], policies: [{{ key-auth: {{}} }}] }}
",
        up.url()
    );
    let gw = gateway_with(&spec, &[("K", "k")], |o| {
        o.body_read_timeout = Duration::from_secs(10);
    })
    .await;
    let s = TcpStream::connect(gw.addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    // 96 MiB in chunks of 64 KiB. The writer blocks once the socket buffers
    // are full, so what it managed to send when the answer comes is what the
    // gateway read plus what the kernel buffers hold (a few MiB).
    const TOTAL: u64 = 96 << 20;
    let sent = Arc::new(AtomicU64::new(0));
    let writer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let head = "POST /upload HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n";
            wr.write_all(head.as_bytes()).await?;
            let chunk = format!("10000\r\n{}\r\n", "z".repeat(1 << 16));
            while sent.load(Ordering::SeqCst) < TOTAL {
                wr.write_all(chunk.as_bytes()).await?;
                sent.fetch_add(1 << 16, Ordering::SeqCst);
            }
            wr.write_all(b"0\r\n\r\n").await
        })
    };
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(20), rd.read_exact(&mut head))
        .await
        .expect("an answer within 20s")
        .unwrap();
    let sent_before_answer = sent.load(Ordering::SeqCst);
    assert_eq!(&head, b"HTTP/1.1 401", "{}", String::from_utf8_lossy(&head));
    assert!(
        sent_before_answer < 32 << 20,
        "the client sent {} MiB before the 401",
        sent_before_answer >> 20
    );
    writer.abort();
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn an_upstream_that_stops_taking_the_body_still_meets_its_read_timeout() {
    // A target that accepts connections and never reads from them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let spec = format!(
        "gatefold: 1
gateway:
  baseline: {{ max-body: 200MiB }}
upstreams:
  up:
    targets: [{{ url: http://{addr} }}]
    timeouts: {{ read: 300ms }}
apis:
  main:
    upstream: up
    routes:
      all: {{ path: /* }}
"
    );
    let gw = gateway_with(&spec, &[], |o| {
        o.body_read_timeout = Duration::from_secs(30);
    })
    .await;
    let s = TcpStream::connect(gw.addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    // The client sends as fast as it can; the upload stalls only because the
    // target takes nothing once the socket buffers are full.
    let writer = tokio::spawn(async move {
        let total = 128usize << 20;
        wr.write_all(
            format!("POST /up HTTP/1.1\r\nhost: h\r\ncontent-length: {total}\r\n\r\n").as_bytes(),
        )
        .await?;
        let chunk = vec![b'z'; 1 << 16];
        for _ in 0..total >> 16 {
            wr.write_all(&chunk).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(20), rd.read_exact(&mut head))
        .await
        .expect("an answer within 20s, long before the 30s client-body timeout")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 504", "{}", String::from_utf8_lossy(&head));
    writer.abort();
    holder.abort();
}

#[tokio::test]
async fn a_chunked_body_streams_to_the_upstream_as_it_arrives() {
    // A target that answers as soon as it has seen the first piece of the
    // body, before the client has sent the rest.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let target = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("hello") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the gateway closed before sending the first piece");
            seen.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .unwrap();
        // Held open: the rest of the body never comes.
        let _ = s.read(&mut buf).await;
    });
    let spec = format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: http://{addr} }}] }}
apis:
  main:
    upstream: up
    routes:
      all: {{ path: /* }}
"
    );
    let gw = gateway_with(&spec, &[], |o| {
        o.body_read_timeout = Duration::from_secs(60);
    })
    .await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    // The first piece, and then nothing: were the body read whole before
    // it goes upstream, no answer could come before the client-body timeout
    // (60s, well past the 20s a loaded machine is given to answer).
    s.write_all(
        b"POST /up HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await
    .unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut head))
        .await
        .expect("an answer within 20s, before the 60s client-body timeout")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
    target.abort();
}
