//! The upstream HTTP client. Plain `http://` targets go through
//! [`h1_pool`]: connections per worker thread, driven by the request's own
//! task. `https://` targets go through hyper-util's pooled client, one per
//! worker thread, connect timeout and TLS settings (the connector holds the
//! timeout). Either way a request and its upstream connection live on one
//! thread (no cross-thread wake-ups), and pools outlive config swaps, so a
//! reload keeps warm connections.

use super::h1_pool::{self, PooledBody, SendError};
use super::server::Server;
use crate::gateway::{Body, BoxError};
use bytes::Bytes;
use http::uri::{Parts, Scheme};
use http::{Request, Response, Uri};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::ClientConfig;
use std::cell::RefCell;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Body>;

thread_local! {
    /// TLS clients by connect timeout and TLS settings.
    static SECURE: RefCell<Vec<((Duration, usize), HttpsClient)>> = const { RefCell::new(Vec::new()) };
}

/// A response body from either client.
pub enum UpstreamBody {
    Pooled(PooledBody),
    Shared(Incoming),
}

impl HttpBody for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Pooled(b) => Pin::new(b).poll_frame(cx),
            UpstreamBody::Shared(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Pooled(b) => b.is_end_stream(),
            UpstreamBody::Shared(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Pooled(b) => b.size_hint(),
            UpstreamBody::Shared(b) => b.size_hint(),
        }
    }
}

/// Why an exchange with a target failed.
pub enum Failed {
    /// No connection could be opened: the request never left.
    Connect { timed_out: bool },
    /// Anything later (the upstream broke off, answered badly, or the
    /// client's request body failed: see `ClientBodyError::find`).
    Exchange(BoxError),
}

/// Sends `req` (origin-form URI, `host` set) to `target`, opening a
/// connection within `connect` when no idle one is at hand.
pub async fn send(
    target: &Server,
    connect: Duration,
    tls: &Arc<ClientConfig>,
    req: Request<Body>,
) -> Result<Response<UpstreamBody>, Failed> {
    if !target.tls {
        return match h1_pool::send(&target.addr, connect, req).await {
            Ok(r) => Ok(r.map(UpstreamBody::Pooled)),
            Err(SendError::Connect { timed_out }) => Err(Failed::Connect { timed_out }),
            Err(SendError::Http(e)) => Err(Failed::Exchange(e.into())),
        };
    }
    let (mut parts, body) = req.into_parts();
    // hyper-util's client takes the target from an absolute URI.
    let mut uri = Parts::default();
    uri.scheme = Some(Scheme::HTTPS);
    uri.authority = target.addr.parse().ok();
    uri.path_and_query = parts.uri.path_and_query().cloned();
    parts.uri = Uri::from_parts(uri).map_err(|e| Failed::Exchange(e.into()))?;
    match secure(connect, tls, Request::from_parts(parts, body)).await {
        Ok(r) => Ok(r.map(UpstreamBody::Shared)),
        Err(e) if e.is_connect() => Err(Failed::Connect {
            timed_out: is_timeout(&e),
        }),
        Err(e) => Err(Failed::Exchange(e.into())),
    }
}

fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Sends an `https` request with this thread's client for `connect` and `tls`.
fn secure(connect: Duration, tls: &Arc<ClientConfig>, req: Request<Body>) -> ResponseFuture {
    let key = (connect, Arc::as_ptr(tls) as usize);
    SECURE.with(|clients| {
        let mut clients = clients.borrow_mut();
        if let Some((_, c)) = clients.iter().find(|(k, _)| *k == key) {
            return c.request(req);
        }
        let c = build_https(connect, 1024, tls);
        let fut = c.request(req);
        clients.push((key, c));
        fut
    })
}

fn connector(connect: Duration) -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect));
    connector.set_nodelay(true);
    connector
}

fn builder() -> hyper_util::client::legacy::Builder {
    let mut b = Client::builder(TokioExecutor::new());
    b.timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(1024);
    b
}

/// A client for `http` and `https` targets whose connections time out after
/// `connect`, keeping up to `idle_per_host` idle connections per target.
pub fn build_https<B>(
    connect: Duration,
    idle_per_host: usize,
    tls: &Arc<ClientConfig>,
) -> Client<HttpsConnector<HttpConnector>, B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut plain = connector(connect);
    plain.enforce_http(false);
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config((**tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(plain);
    let mut b = builder();
    b.pool_max_idle_per_host(idle_per_host);
    b.build(connector)
}
