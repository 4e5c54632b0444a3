//! A body with an idle timeout: an error when no frame arrives within the
//! limit. Used for upstream responses (the `read` timeout between two reads)
//! and for request bodies (a client that stops sending mid-body).

use super::BoxError;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{sleep, Sleep};

pub struct IdleTimeout<B, G = ()> {
    inner: B,
    limit: Duration,
    /// Armed only while waiting, so a body that is always ready costs no timer.
    idle: Option<Pin<Box<Sleep>>>,
    what: &'static str,
    /// Held until the body is dropped (an in-flight count, say).
    _guard: G,
}

impl<B, G> IdleTimeout<B, G> {
    /// `what` names the timeout in the error (`"upstream read timeout"`).
    pub fn new(inner: B, limit: Duration, what: &'static str, guard: G) -> IdleTimeout<B, G> {
        IdleTimeout {
            inner,
            limit,
            idle: None,
            what,
            _guard: guard,
        }
    }
}

impl<B, G> HttpBody for IdleTimeout<B, G>
where
    B: HttpBody + Unpin,
    B::Error: Into<BoxError>,
    G: Unpin,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(f) => {
                this.idle = None;
                Poll::Ready(f.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let limit = this.limit;
                let idle = this.idle.get_or_insert_with(|| Box::pin(sleep(limit)));
                match idle.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(this.what.into()))),
                    Poll::Pending => Poll::Pending,
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
