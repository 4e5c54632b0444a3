//! Plain-HTTP upstream connections: hyper's `client::conn::http1`, kept per
//! worker thread and target, and driven by the task of the request using
//! them. The request is written and its response read by the task that
//! serves the client: no connection task, no wake-up of another task.
//!
//! A connection is checked out for one exchange and goes back to the idle
//! list when its response body has been read to the end (a body dropped
//! half-read closes it). Idle connections are not polled: a close by the
//! upstream is noticed by the next exchange's first drive, which reads
//! before it writes, and a request that a reused connection turns down
//! before writing anything is sent again on another one. One idle for more
//! than [`IDLE_FOR`] is closed instead of reused (check-ins also close
//! those, on every target, at most once per [`IDLE_FOR`]).

use crate::gateway::Body;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How long a connection may stay idle before it is closed rather than reused.
pub const IDLE_FOR: Duration = Duration::from_secs(60);
/// Idle connections kept per target and worker.
const MAX_IDLE: usize = 1024;

type Conn = Connection<TokioIo<TcpStream>, Body>;

/// Why an exchange failed.
pub enum SendError {
    /// No connection could be opened (the request never left).
    Connect { timed_out: bool },
    /// The exchange failed on an open connection.
    Http(hyper::Error),
}

/// One connection: the handle that sends on it, and the state machine that
/// moves its bytes (`None` once it has finished). Boxed once when opened, so
/// handing it around moves a pointer, not the state machine.
struct Pooled {
    sender: SendRequest<Body>,
    conn: Option<Conn>,
    idle_since: Instant,
}

impl Pooled {
    /// Moves the connection's bytes; false once it has closed or failed.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(c) = &mut self.conn {
            if Pin::new(c).poll(cx).is_ready() {
                self.conn = None;
            }
        }
        self.conn.is_some()
    }

    /// Drives the connection until `ask` (what the task waits for from it:
    /// the exchange's answer, the response body's next frame) is ready, or
    /// else leaves the task's waker where the upstream's next bytes wake it.
    ///
    /// `ask` progresses only when the connection is driven, here, so it is
    /// asked after each drive without a waker of its own. hyper wakes the
    /// waker a drive left when the answer or a frame is taken; the task's
    /// own there would poll the whole task once more for nothing. So the
    /// connection is first driven without one (enough when the bytes are
    /// already read), and with the task's waker only when nothing came of it.
    fn drive_for<T>(&mut self, cx: &mut Context<'_>, mut ask: impl FnMut() -> Poll<T>) -> Poll<T> {
        self.drive(&mut unwoken());
        if let ready @ Poll::Ready(_) = ask() {
            return ready;
        }
        self.drive(cx);
        ask()
    }
}

/// A context that wakes no one, for polls the task follows up itself.
fn unwoken() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// A target's `host:port` and its idle connections, oldest first.
type Slot = (Box<str>, Vec<Box<Pooled>>);

/// A worker's idle connections.
struct Idle {
    /// By target. Slots are never removed, so an index names one target for
    /// the thread's lifetime.
    slots: Vec<Slot>,
    /// When every slot was last cleared of connections idle too long (a
    /// target no longer in the config gets no check-ins of its own).
    swept: Option<Instant>,
}

thread_local! {
    static IDLE: RefCell<Idle> = const {
        RefCell::new(Idle {
            slots: Vec::new(),
            swept: None,
        })
    };
}

/// Names this thread's idle lists (a body dropped on another thread must
/// not put its connection into that thread's lists, whose slots differ).
fn home() -> usize {
    IDLE.with(|idle| idle as *const _ as usize)
}

/// This thread's slot for `addr`.
fn slot(addr: &str) -> usize {
    IDLE.with(|idle| {
        let slots = &mut idle.borrow_mut().slots;
        match slots.iter().position(|(a, _)| &**a == addr) {
            Some(i) => i,
            None => {
                slots.push((addr.into(), Vec::new()));
                slots.len() - 1
            }
        }
    })
}

/// The most recently used idle connection of `slot` that has not idled too
/// long.
///
/// It is not polled here: the exchange's first drive reads before it
/// writes, so a close the upstream sent while the connection was idle is
/// noticed then, and hyper hands the unwritten request back (`send` tries
/// another connection). Polling here too cost a whole drive per request.
fn checkout(slot: usize) -> Option<Box<Pooled>> {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = &mut idle.slots.get_mut(slot)?.1;
        let now = Instant::now();
        while let Some(c) = list.pop() {
            if now - c.idle_since < IDLE_FOR && c.conn.is_some() && c.sender.is_ready() {
                return Some(c);
            }
        }
        None
    })
}

fn checkin(slot: usize, mut c: Box<Pooled>) {
    let now = Instant::now();
    c.idle_since = now;
    let fresh = |old: &Pooled| now - old.idle_since < IDLE_FOR;
    IDLE.with(|idle| {
        let idle = &mut *idle.borrow_mut();
        if idle.swept.is_none_or(|t| now - t >= IDLE_FOR) {
            idle.swept = Some(now);
            for (_, list) in &mut idle.slots {
                list.retain(|c| fresh(c));
            }
        }
        if let Some((_, list)) = idle.slots.get_mut(slot) {
            // The oldest are at the front: close one that has idled too long.
            if list.first().is_some_and(|old| !fresh(old)) {
                list.remove(0);
            }
            if list.len() < MAX_IDLE {
                list.push(c);
            }
        }
    });
}

async fn connect(addr: &str, limit: Duration) -> Result<Box<Pooled>, SendError> {
    let stream = match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Err(_) => return Err(SendError::Connect { timed_out: true }),
        Ok(Err(e)) => {
            return Err(SendError::Connect {
                timed_out: e.kind() == std::io::ErrorKind::TimedOut,
            })
        }
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    // A request's head and body written from one buffer instead of hyper's
    // queue for `writev`, for a copy of the body's bytes: with the server's
    // same setting, 800 instructions per request fewer (bench/instructions.sh).
    let (sender, conn) = http1::Builder::new()
        .writev(false)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(SendError::Http)?;
    Ok(Box::new(Pooled {
        sender,
        conn: Some(conn),
        idle_since: Instant::now(),
    }))
}

/// Sends `req` (origin-form URI, `host` set) to `addr` (`host:port`) on an
/// idle connection of this worker or a new one opened within `connect`.
pub async fn send(
    addr: &str,
    connect_limit: Duration,
    mut req: Request<Body>,
) -> Result<Response<PooledBody>, SendError> {
    let slot = slot(addr);
    loop {
        let reused = checkout(slot);
        let fresh = reused.is_none();
        let mut c = match reused {
            Some(c) => c,
            // Boxed: opening a connection is rare, and its future would
            // otherwise be part of every request's.
            None => Box::pin(connect(addr, connect_limit)).await?,
        };
        // Outside tokio's cooperative budget: the answer arrives through a
        // tokio oneshot, which, with the task's budget spent, says "not
        // yet" and wakes the waker it was given, here none, so the request
        // would wait for its read timeout. The drives around it keep the
        // budget.
        let mut exchange =
            std::pin::pin!(tokio::task::unconstrained(c.sender.try_send_request(req)));
        // Asked after each drive, without a waker (see `Pooled::drive_for`).
        let mut answer = || exchange.as_mut().poll(&mut unwoken());
        // The first drive writes the request: no answer can come of it, so
        // it keeps the task's waker at once (one drive fewer per request).
        let mut written = false;
        let result = poll_fn(|cx| {
            if std::mem::replace(&mut written, true) {
                c.drive_for(cx, &mut answer)
            } else {
                c.drive(cx);
                answer()
            }
        })
        .await;
        match result {
            Ok(resp) => {
                return Ok(resp.map(|inner| PooledBody {
                    inner,
                    ended: false,
                    conn: Some(c),
                    slot,
                    home: home(),
                }))
            }
            Err(mut e) => match e.take_message() {
                // Turned down before a byte was written (the upstream had
                // closed the idle connection): try another connection.
                Some(r) if !fresh => req = r,
                _ => return Err(SendError::Http(e.into_error())),
            },
        }
    }
}

/// An upstream response body that keeps its connection moving while it is
/// read, and gives the connection back once it has been read to the end.
pub struct PooledBody {
    inner: Incoming,
    /// Read to the end (a chunked body says so only by ending, or by its
    /// trailers).
    ended: bool,
    conn: Option<Box<Pooled>>,
    slot: usize,
    home: usize,
}

impl HttpBody for PooledBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let mut frame = || {
            let frame = Pin::new(&mut this.inner).poll_frame(&mut unwoken());
            // Trailers are a body's last frame: a reader may stop there
            // (hyper's server does) without asking for the end.
            match &frame {
                Poll::Ready(None) => this.ended = true,
                Poll::Ready(Some(Ok(f))) if f.is_trailers() => this.ended = true,
                _ => {}
            }
            frame
        };
        // A frame already read needs no drive.
        if let ready @ Poll::Ready(_) = frame() {
            return ready;
        }
        match &mut this.conn {
            Some(c) => c.drive_for(cx, frame),
            None => frame(),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            // Only a connection whose response was read to the end can carry
            // another request; a dropped half-read one is closed.
            let read_whole = self.ended || self.inner.is_end_stream();
            if read_whole && c.conn.is_some() && self.home == home() {
                checkin(self.slot, c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// An upstream on a thread: it reads one request head, and 50 ms later
    /// answers with the head and half of a 10-byte body (the rest later),
    /// so the body's channel is left full when the response is read.
    fn slow_upstream() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            std::thread::sleep(Duration::from_millis(50));
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello");
            std::thread::sleep(Duration::from_millis(1500));
            let _ = s.write_all(b"world");
        });
        addr
    }

    /// The exchange is polled without the task's waker, and tokio's
    /// oneshot that carries hyper's answer says "not yet" (waking that
    /// waker) when the task has spent its cooperative budget: the answer
    /// must still be taken at once, whatever the task spent before (a
    /// request used to wait for its read timeout when the budget ran out on
    /// the read that brought the response).
    #[test]
    fn a_response_is_taken_at_once_whatever_budget_the_task_has_spent() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let slow: Vec<(usize, Duration)> = rt.block_on(async {
            let tasks: Vec<_> = (0..=130)
                .map(|spent| {
                    tokio::spawn(async move {
                        let addr = slow_upstream();
                        let req = Request::builder()
                            .uri("/")
                            .header("host", "upstream")
                            .body(crate::gateway::respond::empty_body())
                            .unwrap();
                        let mut sent = Box::pin(send(&addr, Duration::from_secs(1), req));
                        // Connect and write the request.
                        tokio::select! {
                            _ = &mut sent => panic!("answered before the upstream did"),
                            _ = tokio::time::sleep(Duration::from_millis(30)) => {}
                        }
                        // The answer arrives meanwhile.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        for _ in 0..spent {
                            tokio::task::consume_budget().await;
                        }
                        let started = Instant::now();
                        let answered = tokio::time::timeout(Duration::from_secs(2), sent).await;
                        assert!(matches!(answered, Ok(Ok(_))), "spent {spent}: no answer");
                        (spent, started.elapsed())
                    })
                })
                .collect();
            let mut slow = Vec::new();
            for t in tasks {
                let (spent, took) = t.await.unwrap();
                if took > Duration::from_millis(500) {
                    slow.push((spent, took));
                }
            }
            slow
        });
        assert!(
            slow.is_empty(),
            "(budget spent, time to the answer): {slow:?}"
        );
    }
}
