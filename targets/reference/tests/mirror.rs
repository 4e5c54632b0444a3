//! `mirror` (language 1.1) over real sockets: copies reach the mirror
//! upstream with their method, path, query and body; `percent: 0` copies
//! nothing; and a mirror that never answers, or is not there at all,
//! neither delays nor fails the request.

use crate::common;

use common::*;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a mirror upstream received: the request head and body as text.
type Seen = Arc<Mutex<Vec<String>>>;

/// A mirror upstream on a free port that records each request (head and
/// `content-length` body) and then answers 500 (an answer nobody must see),
/// or never answers when `hang`.
struct MirrorServer {
    addr: SocketAddr,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MirrorServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MirrorServer {
    async fn start(hang: bool) -> MirrorServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Seen = Arc::default();
        let kept = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve(stream, kept.clone(), hang));
            }
        });
        MirrorServer { addr, seen, task }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads requests off one connection (HTTP/1.1, `content-length` bodies).
async fn serve(mut stream: TcpStream, seen: Seen, hang: bool) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 65536];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
        buf.drain(..head_end + length);
        seen.lock().unwrap().push(format!("{head}{body}"));
        if hang {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        let answer = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 6\r\n\r\nmirror";
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

fn spec(main: &Upstream, mirror: SocketAddr) -> String {
    format!(
        "gatefold: 1
upstreams:
  main: {{ targets: [{{ url: {main} }}] }}
  shadow:
    targets: [{{ url: \"http://{mirror}\" }}]
    timeouts: {{ read: 60s }}
apis:
  a:
    upstream: main
    routes:
      copied: {{ path: /items/*, policies: [{{ mirror: {{ upstream: shadow }} }}] }}
      never: {{ path: /never/*, policies: [{{ mirror: {{ upstream: shadow, percent: 0 }} }}] }}
",
        main = main.url()
    )
}

#[tokio::test]
async fn copies_reach_the_mirror_with_their_body() {
    let main = Upstream::start("main").await;
    let mirror = MirrorServer::start(false).await;
    let gw = gateway(&spec(&main, mirror.addr)).await;
    let r = gw
        .send(
            "POST",
            "/items/7?x=1",
            &[("content-type", "text/plain")],
            Some("hello mirror"),
        )
        .await;
    // The client gets the main upstream's answer, never the mirror's 500.
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["upstream"], "main");
    assert_eq!(r.json()["body"], "hello mirror");
    eventually("the copy reaches the mirror", || async {
        mirror.seen().len() == 1
    })
    .await;
    let copy = &mirror.seen()[0];
    assert!(copy.starts_with("POST /items/7?x=1 HTTP/1.1\r\n"), "{copy}");
    assert!(copy.ends_with("\r\n\r\nhello mirror"), "{copy}");
    assert!(
        copy.to_ascii_lowercase()
            .contains(&format!("host: {}", mirror.addr)),
        "the mirror target's host: {copy}"
    );
    // A streamed body of many chunks (no retries, so it is not read
    // ahead) is copied whole.
    let big = "x".repeat(300_000);
    let r = gw.send("PUT", "/items/big", &[], Some(&big)).await;
    assert_eq!(r.status, 200);
    eventually("the big copy reaches the mirror", || async {
        mirror.seen().len() == 2
    })
    .await;
    assert!(mirror.seen()[1].ends_with(&big));
    // `percent: 0`: nothing is copied (a copied request after it shows the
    // mirror is reached, and in order).
    for _ in 0..5 {
        assert_eq!(gw.get("/never/x").await.status, 200);
    }
    assert_eq!(gw.get("/items/last").await.status, 200);
    eventually("the last copy reaches the mirror", || async {
        mirror.seen().len() == 3
    })
    .await;
    assert!(mirror.seen()[2].starts_with("GET /items/last "));
    gw.gw.shutdown().await;
}

/// The mirror never answers (its read timeout is 60 s) or nothing listens
/// on its port: every request is answered by the main upstream, promptly.
#[tokio::test]
async fn a_hanging_or_dead_mirror_never_delays_or_fails_the_request() {
    let main = Upstream::start("main").await;
    let hanging = MirrorServer::start(true).await;
    let gw = gateway(&spec(&main, hanging.addr)).await;
    let started = Instant::now();
    // More requests than copies may be under way at once (64).
    for i in 0..80 {
        let r = gw
            .send("POST", &format!("/items/{i}"), &[], Some("body"))
            .await;
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.json()["upstream"], "main");
    }
    // Generous: 80 local requests take well under a second; waiting on a
    // mirror that never answers would take minutes.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}");
    eventually("copies reach the hanging mirror", || async {
        !hanging.seen().is_empty()
    })
    .await;
    gw.gw.shutdown().await;

    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let gw = gateway(&spec(&main, dead)).await;
    for i in 0..10 {
        let r = gw
            .send("POST", &format!("/items/{i}"), &[], Some("body"))
            .await;
        assert_eq!(r.status, 200, "request {i}");
    }
    gw.gw.shutdown().await;
}
