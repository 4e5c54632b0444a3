//! The client's request body on its way upstream. It is streamed, not read
//! ahead: counted against the route's size limit as it arrives, cut off
//! when the client sends nothing of it for the client-body timeout, and it
//! tells the proxy whom the upload is waiting on, so the upstream `read`
//! timeout runs only while the upstream is the slow side.

use super::respond;
use super::Body;
use bytes::Bytes;
use http::{Response, StatusCode};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::{sleep, Sleep};

/// Why a request body could not be read: always the client's doing.
#[derive(Debug)]
pub enum ClientBodyError {
    /// Nothing of the body arrived for the client-body timeout: 408.
    TimedOut,
    /// More bytes than the route's limit: 413.
    TooLarge,
    /// The client broke off or sent a malformed body: 400.
    Broken(hyper::Error),
    /// A `content-length` that is not a number: 400.
    BadLength,
}

impl fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientBodyError::TimedOut => f.write_str("client body timeout"),
            ClientBodyError::TooLarge => f.write_str("request body over the limit"),
            ClientBodyError::Broken(e) => write!(f, "client body: {e}"),
            ClientBodyError::BadLength => f.write_str("malformed content-length"),
        }
    }
}

impl std::error::Error for ClientBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientBodyError::Broken(e) => Some(e),
            _ => None,
        }
    }
}

impl ClientBodyError {
    /// The client-body failure somewhere in `e`'s chain (the upstream
    /// client wraps the body's error in its own).
    pub fn find<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a ClientBodyError> {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(found) = err.downcast_ref::<ClientBodyError>() {
                return Some(found);
            }
            cur = err.source();
        }
        None
    }

    /// What the client is told.
    pub fn response(&self) -> Response<Body> {
        match self {
            ClientBodyError::TimedOut => {
                respond::error(StatusCode::REQUEST_TIMEOUT, "request timeout")
            }
            ClientBodyError::TooLarge => respond::payload_too_large(),
            ClientBodyError::Broken(_) | ClientBodyError::BadLength => respond::bad_request(),
        }
    }
}

/// Whom an upload waits on, shared between the body (inside the upstream
/// client) and the proxy waiting for the response.
#[derive(Default)]
pub struct Progress {
    waiting_on_client: AtomicBool,
    changed: Notify,
}

impl Progress {
    /// True while the body waits for the client's next bytes.
    pub fn waiting_on_client(&self) -> bool {
        self.waiting_on_client.load(Ordering::Acquire)
    }

    /// Completes after the next change (a frame handed on, a wait for the
    /// client begun, the end); a change since the last call counts.
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    fn set(&self, waiting_on_client: bool) {
        self.waiting_on_client
            .store(waiting_on_client, Ordering::Release);
        // A stored permit when no one waits: no change is missed.
        self.changed.notify_one();
    }
}

/// A request body read as the upstream asks for it.
pub struct ClientBody {
    inner: Incoming,
    limit: u64,
    received: u64,
    timeout: Duration,
    /// Armed only while waiting on the client.
    idle: Option<Pin<Box<Sleep>>>,
    progress: Option<Arc<Progress>>,
    /// A copy of what passed through, handed over whole at the end (a
    /// `mirror`); dropped unsent if the body fails.
    copy: Option<(Vec<u8>, tokio::sync::oneshot::Sender<Bytes>)>,
}

impl ClientBody {
    /// `limit`: most bytes accepted; `timeout`: longest wait for the next bytes.
    pub fn new(inner: Incoming, limit: u64, timeout: Duration) -> ClientBody {
        ClientBody {
            inner,
            limit,
            received: 0,
            timeout,
            idle: None,
            progress: None,
            copy: None,
        }
    }

    /// Keeps a copy of the body as it passes (it is within the route's
    /// limit), sent on the returned channel once the whole body has passed.
    pub fn copy(&mut self) -> tokio::sync::oneshot::Receiver<Bytes> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.copy = Some((Vec::new(), tx));
        rx
    }

    /// Reports progress to the returned handle from now on.
    pub fn track(&mut self) -> Arc<Progress> {
        self.progress.get_or_insert_with(Default::default).clone()
    }

    fn report(&self, waiting_on_client: bool) {
        if let Some(p) = &self.progress {
            p.set(waiting_on_client);
        }
    }
}

impl HttpBody for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.idle = None;
                // Handed on (or ended): the upstream's turn.
                this.report(false);
                match frame {
                    Some(Ok(f)) => {
                        if let Some(d) = f.data_ref() {
                            this.received += d.len() as u64;
                            if this.received > this.limit {
                                this.copy = None;
                                return Poll::Ready(Some(Err(ClientBodyError::TooLarge)));
                            }
                            if let Some((buf, _)) = &mut this.copy {
                                buf.extend_from_slice(d);
                            }
                        }
                        // The reader may stop here, without asking for the end.
                        if this.inner.is_end_stream() {
                            if let Some((buf, tx)) = this.copy.take() {
                                let _ = tx.send(Bytes::from(buf));
                            }
                        }
                        Poll::Ready(Some(Ok(f)))
                    }
                    Some(Err(e)) => {
                        this.copy = None;
                        Poll::Ready(Some(Err(ClientBodyError::Broken(e))))
                    }
                    None => {
                        if let Some((buf, tx)) = this.copy.take() {
                            let _ = tx.send(Bytes::from(buf));
                        }
                        Poll::Ready(None)
                    }
                }
            }
            Poll::Pending => {
                if this.idle.is_none() {
                    this.idle = Some(Box::pin(sleep(this.timeout)));
                    this.report(true);
                }
                match this.idle.as_mut().map(|s| s.as_mut().poll(cx)) {
                    Some(Poll::Ready(())) => Poll::Ready(Some(Err(ClientBodyError::TimedOut))),
                    _ => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
