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
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// An upstream on 127.0.0.1 that counts the connections it accepts and
/// serves each with `serve`.
async fn upstream<F, Fut>(serve: F) -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream));
        }
    });
    (addr, accepted, task)
}

/// Reads from `stream` until a request head has ended: false when the
/// connection closed first. What came after the head is kept in `buf`.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            return true;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// An upstream that counts the connections it accepts. `/chunked` answers
/// with a chunked body, `/trickle` with a large one sent in pieces with
/// pauses between them, anything else with a `content-length` one.
async fn counting_upstream() -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
    upstream(|stream| async move {
        let svc = service_fn(|req: Request<Incoming>| async move {
            let body = match req.uri().path() {
                "/chunked" => Chunks(vec!["one ", "two"]).boxed(),
                "/trickle" => trickle().boxed(),
                _ => Full::new(Bytes::from("one two")).boxed(),
            };
            Ok::<_, Infallible>(Response::new(body))
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), svc)
            .await;
    })
    .await
}

/// An upstream that answers one request per connection and then closes it
/// without saying so (no `connection: close`), as one whose keep-alive
/// timeout ran out between two requests.
async fn one_shot_upstream() -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
    upstream(|mut stream| async move {
        if read_head(&mut stream, &mut Vec::new()).await {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\none two")
                .await;
        }
    })
    .await
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

/// Bytes of the `/trickle` body: five pieces of 256 KiB, 30 ms apart.
const TRICKLE_PIECES: u8 = 5;
const TRICKLE_PIECE: usize = 256 * 1024;

/// The `/trickle` body: each piece is a different letter, so a lost or
/// reordered piece shows.
fn trickle() -> Piped {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for i in 0..TRICKLE_PIECES {
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            let piece = Bytes::from(vec![b'a' + i; TRICKLE_PIECE]);
            if tx.send(piece).await.is_err() {
                return;
            }
        }
    });
    Piped(rx)
}

/// A body whose pieces come through a channel as a task sends them.
struct Piped(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for Piped {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|piece| piece.map(|b| Ok(Frame::data(b))))
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

/// A response body that arrives in pieces, the upstream pausing between
/// them, reaches the client whole, and its connection is used again: the
/// pooled connection is driven by the request's task, which must be woken
/// by each piece the upstream sends (a lost wake-up hangs the request).
#[tokio::test]
async fn a_body_the_upstream_sends_in_pieces_arrives_whole_on_a_reused_connection() {
    let (addr, accepted, task) = counting_upstream().await;
    let gw = gateway_with(&spec(addr), &[], |o| o.workers = 1).await;
    let expected: String = (0..TRICKLE_PIECES)
        .map(|i| char::from(b'a' + i).to_string().repeat(TRICKLE_PIECE))
        .collect();
    for _ in 0..3 {
        let r = tokio::time::timeout(std::time::Duration::from_secs(20), gw.get("/trickle"))
            .await
            .expect("the response came whole within 20 s");
        assert_eq!(r.status, 200);
        assert!(
            r.text() == expected,
            "{} bytes, not the upstream's",
            r.text().len()
        );
    }
    assert_eq!(gw.get("/fixed").await.text(), "one two");
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection, reused");
    task.abort();
}

/// An upstream that answers every request on a connection with a chunked
/// body followed by trailers (hyper's server sends trailers only to a
/// client that asked with `te: trailers`, which the gateway never forwards).
async fn trailers_upstream() -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
    upstream(|mut stream| async move {
        let mut buf = Vec::new();
        while read_head(&mut stream, &mut buf).await {
            let answer = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\
                          trailer: x-sum\r\n\r\n7\r\none two\r\n0\r\nx-sum: 7\r\n\r\n";
            if stream.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_connection_whose_response_ended_with_trailers_is_reused() {
    let (addr, accepted, task) = trailers_upstream().await;
    let gw = gateway_with(&spec(addr), &[], |o| o.workers = 1).await;
    for te in [None, Some("trailers")] {
        for _ in 0..5 {
            let headers: Vec<(&str, &str)> = te.map(|t| ("te", t)).into_iter().collect();
            let r = gw.send("GET", "/t", &headers, None).await;
            assert_eq!((r.status, r.text().as_str()), (200, "one two"), "te {te:?}");
        }
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one upstream connection"
    );
    task.abort();
}
