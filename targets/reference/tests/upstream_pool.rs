//! The upstream connection pool, over real sockets: connections are kept
//! and reused, whatever the response body's framing, and one the upstream
//! has closed while idle is not used again.

use crate::common;

use bytes::Bytes;
use common::*;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// An upstream that counts the connections it accepts. `/chunked` answers
/// with a chunked body, anything else with a `content-length` one.
async fn counting_upstream() -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let body = if req.uri().path() == "/chunked" {
                        Chunks(vec!["one ", "two"]).boxed()
                    } else {
                        Full::new(Bytes::from("one two")).boxed()
                    };
                    Ok::<_, Infallible>(Response::new(body))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, accepted, task)
}

/// An upstream that answers one request per connection and then closes it
/// without saying so (no `connection: close`), as one whose keep-alive
/// timeout ran out between two requests.
async fn one_shot_upstream() -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\none two")
                    .await;
            });
        }
    });
    (addr, accepted, task)
}

/// A body of ready pieces with no known length: sent chunked.
struct Chunks(Vec<&'static str>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.0.is_empty() {
            return Poll::Ready(None);
        }
        let piece = self.0.remove(0);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(piece)))))
    }
}

fn spec(addr: SocketAddr) -> String {
    format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: http://{addr} }}] }}
apis:
  main:
    upstream: up
    routes:
      all: {{ path: /* }}
"
    )
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection() {
    let (addr, accepted, task) = counting_upstream().await;
    // One worker: every request meets the same idle list.
    let gw = gateway_with(&spec(addr), &[], |o| o.workers = 1).await;
    for path in ["/fixed", "/chunked"] {
        for _ in 0..10 {
            let r = gw.get(path).await;
            assert_eq!((r.status, r.text().as_str()), (200, "one two"), "{path}");
        }
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    task.abort();
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_not_reused() {
    let (addr, accepted, task) = one_shot_upstream().await;
    let gw = gateway_with(&spec(addr), &[], |o| o.workers = 1).await;
    for _ in 0..10 {
        let r = gw.get("/fixed").await;
        assert_eq!((r.status, r.text().as_str()), (200, "one two"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 10);
    task.abort();
}
