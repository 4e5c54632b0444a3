//! Client connections: how long one may live and sit idle, and what a
//! listener does when `accept` fails.
//!
//! HTTP/1 connections are cut by hyper's header read timeout when they sit
//! idle between requests. HTTP/2 has no such timeout in hyper (its PINGs
//! only find dead peers: a client that answers them is alive), so
//! [`drive`] closes an HTTP/2 connection gracefully (GOAWAY, open streams
//! finish) once it has had no open stream for the idle limit, or once it
//! has lived for the age limit however busy it is.

use super::Body;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::sync::watch;

/// The open streams (requests whose response has not been sent whole) of
/// one connection.
#[derive(Clone)]
pub struct Activity(Arc<watch::Sender<usize>>);

impl Activity {
    pub fn new() -> Activity {
        Activity(Arc::new(watch::Sender::new(0)))
    }

    /// Counts a stream as open until the returned guard is dropped.
    pub fn begin(&self) -> Busy {
        self.0.send_modify(|n| *n += 1);
        Busy(self.0.clone())
    }

    /// Resolves once no stream has been open for `limit` in a row.
    async fn idle_for(&self, limit: Duration) {
        let mut rx = self.0.subscribe();
        loop {
            if rx.wait_for(|n| *n == 0).await.is_err() {
                return;
            }
            if tokio::time::timeout(limit, rx.wait_for(|n| *n > 0))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// One open stream; see [`Activity::begin`].
pub struct Busy(Arc<watch::Sender<usize>>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A response body that keeps its stream counted as open until it is sent
/// (or dropped).
pub fn hold(body: Body, busy: Busy) -> Body {
    Held {
        inner: body,
        _busy: busy,
    }
    .boxed_unsync()
}

struct Held {
    inner: Body,
    _busy: Busy,
}

impl HttpBody for Held {
    type Data = bytes::Bytes;
    type Error = super::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Limits on one connection's life.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Closed after this long with no open stream (HTTP/2).
    pub idle: Option<Duration>,
    /// Closed after this long, however busy (HTTP/2).
    pub max_age: Option<Duration>,
}

impl Limits {
    /// No limit of its own: the connection closes when the gateway stops
    /// (HTTP/1, whose idle connections the header read timeout cuts).
    pub const NONE: Limits = Limits {
        idle: None,
        max_age: None,
    };
}

/// Runs a hyper connection to its end: once `closing` resolves it is asked
/// to shut down gracefully, then still driven until its open requests are
/// done. Both listeners (plain and TLS) drive their connections with it. (A
/// macro: as a generic function over both connection types, the spawned
/// future trips rustc's higher-ranked `Send` inference.)
macro_rules! drive {
    ($conn:expr, $closing:expr) => {{
        let mut c = std::pin::pin!($conn);
        let closing = std::pin::pin!($closing);
        if !$crate::gateway::conn::UntilClosing::new(c.as_mut(), closing).await {
            c.as_mut().graceful_shutdown();
            let _ = c.await;
        }
    }};
}

/// Drives a connection until it ends (`true`) or `closing` resolves
/// (`false`). `closing` is polled only when something it waits on woke the
/// task, not on every wake-up of the connection: a request wakes its
/// connection's task several times, and polling the shutdown signal and
/// limits each time was about 1,500 instructions per request.
pub struct UntilClosing<'a, C, S> {
    conn: Pin<&'a mut C>,
    closing: Pin<&'a mut S>,
    /// The waker `closing` was last polled with; `None` before the first poll.
    woken: Option<Arc<ClosingWaker>>,
}

impl<'a, C, S> UntilClosing<'a, C, S> {
    pub fn new(conn: Pin<&'a mut C>, closing: Pin<&'a mut S>) -> Self {
        UntilClosing {
            conn,
            closing,
            woken: None,
        }
    }
}

/// Wakes the task and notes that it was `closing` that woke it.
struct ClosingWaker {
    woken: AtomicBool,
    task: Waker,
}

impl Wake for ClosingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

impl<C: Future, S: Future> Future for UntilClosing<'_, C, S> {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let this = &mut *self;
        let due = match &this.woken {
            None => true,
            Some(w) => w.woken.swap(false, Ordering::Acquire) || !w.task.will_wake(cx.waker()),
        };
        if due {
            let w = Arc::new(ClosingWaker {
                woken: AtomicBool::new(false),
                task: cx.waker().clone(),
            });
            let waker = Waker::from(w.clone());
            this.woken = Some(w);
            if this
                .closing
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
            {
                return Poll::Ready(false);
            }
        }
        this.conn.as_mut().poll(cx).map(|_| true)
    }
}

/// Resolves when a connection should be asked to close: the gateway stops,
/// or a limit is reached (idle needs the connection's [`Activity`]).
pub async fn closing(
    activity: Option<&Activity>,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let idle = async {
        match (limits.idle, activity) {
            (Some(limit), Some(activity)) => activity.idle_for(limit).await,
            _ => std::future::pending().await,
        }
    };
    let old = async {
        match limits.max_age {
            Some(age) => tokio::time::sleep(age).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = stopped.wait_for(|s| *s) => {}
        _ = idle => {}
        _ = old => {}
    }
}

/// What a listener does when `accept` fails (out of file descriptors, say):
/// wait, longer each time up to a second, instead of spinning on the error.
pub struct Backoff {
    wait: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    pub fn new() -> Backoff {
        Backoff { wait: Self::FIRST }
    }

    /// After an accepted connection.
    pub fn reset(&mut self) {
        self.wait = Self::FIRST;
    }

    /// After a failed accept: logs it and sleeps.
    pub async fn failed(&mut self, what: &str, e: &std::io::Error) {
        crate::say!(
            "gatefold: accepting a connection ({what}) failed: {e}; retrying in {}ms",
            self.wait.as_millis()
        );
        tokio::time::sleep(self.wait).await;
        self.wait = (self.wait * 2).min(Self::MAX);
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

impl Default for Activity {
    fn default() -> Activity {
        Activity::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A connection that wakes its task `left` times before it ends.
    struct Busy<'a> {
        left: &'a Cell<u32>,
    }

    impl Future for Busy<'_> {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            match self.left.get() {
                0 => Poll::Ready(()),
                n => {
                    self.left.set(n - 1);
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        }
    }

    /// Counts its polls and resolves once `stopped` says so.
    async fn counted(polls: &Cell<u32>, mut stopped: watch::Receiver<bool>) {
        let mut stop = std::pin::pin!(stopped.wait_for(|s| *s));
        std::future::poll_fn(|cx| {
            polls.set(polls.get() + 1);
            stop.as_mut().poll(cx).map(|_| ())
        })
        .await
    }

    #[tokio::test]
    async fn closing_is_polled_only_when_it_woke_the_task() {
        let (stop, stopped) = watch::channel(false);
        let (left, polls) = (Cell::new(100), Cell::new(0));
        let mut conn = std::pin::pin!(Busy { left: &left });
        let closing = std::pin::pin!(counted(&polls, stopped));
        let ended = UntilClosing::new(conn.as_mut(), closing).await;
        assert!(ended, "the connection ended first");
        assert_eq!(polls.get(), 1, "100 wake-ups of the connection alone");

        // Enough wake-ups to outlast the stop; a lost wake-up of `closing`
        // lets the connection end first, which the assertion catches.
        let (left, polls) = (Cell::new(10_000), Cell::new(0));
        let (stop2, stopped2) = watch::channel(false);
        drop(stop);
        let mut conn = std::pin::pin!(Busy { left: &left });
        let closing = std::pin::pin!(counted(&polls, stopped2));
        let until = UntilClosing::new(conn.as_mut(), closing);
        let stopper = async {
            tokio::task::yield_now().await;
            stop2.send_replace(true);
        };
        let (ended, ()) = tokio::join!(until, stopper);
        assert!(!ended, "closing resolved first");
        assert!(polls.get() <= 3, "polled {} times", polls.get());
    }
}
