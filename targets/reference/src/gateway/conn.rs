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
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
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
        tokio::select! {
            _ = c.as_mut() => {}
            _ = $closing => {
                c.as_mut().graceful_shutdown();
                let _ = c.await;
            }
        }
    }};
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
