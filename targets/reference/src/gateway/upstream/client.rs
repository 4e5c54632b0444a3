//! The upstream HTTP client: hyper's pooled client, one per worker thread
//! and connect timeout (the connector holds the timeout). Each worker keeps
//! its own pool, so a request and its upstream connection live on one thread
//! (no cross-thread wake-ups), and pools outlive config swaps, so a reload
//! keeps warm connections.

use crate::gateway::Body;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::ClientConfig;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Body>;
pub type HttpClient = Client<HttpConnector, Body>;

thread_local! {
    /// Plain-HTTP clients by connect timeout.
    static PLAIN: RefCell<Vec<(Duration, HttpClient)>> = const { RefCell::new(Vec::new()) };
    /// TLS clients by connect timeout and TLS settings.
    static SECURE: RefCell<Vec<((Duration, usize), HttpsClient)>> = const { RefCell::new(Vec::new()) };
}

/// Sends `req` with this thread's client for `connect` (and `tls` for an
/// `https` URI). Plain targets get a client without the TLS connector: its
/// request futures are smaller, and that is the common case.
pub fn request(
    connect: Duration,
    tls: &Arc<ClientConfig>,
    req: http::Request<Body>,
) -> ResponseFuture {
    if req.uri().scheme() == Some(&http::uri::Scheme::HTTPS) {
        let key = (connect, Arc::as_ptr(tls) as usize);
        return SECURE.with(|clients| {
            let mut clients = clients.borrow_mut();
            if let Some((_, c)) = clients.iter().find(|(k, _)| *k == key) {
                return c.request(req);
            }
            let c = build_https(connect, 1024, tls);
            let fut = c.request(req);
            clients.push((key, c));
            fut
        });
    }
    PLAIN.with(|clients| {
        let mut clients = clients.borrow_mut();
        if let Some((_, c)) = clients.iter().find(|(d, _)| *d == connect) {
            return c.request(req);
        }
        let c = builder().build(connector(connect));
        let fut = c.request(req);
        clients.push((connect, c));
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
