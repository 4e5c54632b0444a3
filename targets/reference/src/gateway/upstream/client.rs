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

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

/// A client's identity: its connect timeout and TLS settings.
type Key = (Duration, usize);

thread_local! {
    static LOCAL: RefCell<Vec<(Key, HttpClient)>> = const { RefCell::new(Vec::new()) };
}

/// Sends `req` with this thread's client for `connect` and `tls`.
pub fn request(
    connect: Duration,
    tls: &Arc<ClientConfig>,
    req: http::Request<Body>,
) -> ResponseFuture {
    let key = (connect, Arc::as_ptr(tls) as usize);
    LOCAL.with(|clients| {
        let mut clients = clients.borrow_mut();
        if let Some((_, c)) = clients.iter().find(|(k, _)| *k == key) {
            return c.request(req);
        }
        let c = build(connect, 1024, tls);
        let fut = c.request(req);
        clients.push((key, c));
        fut
    })
}

/// A client whose connections time out after `connect`, keeping up to
/// `idle_per_host` idle connections per target.
pub fn build<B>(
    connect: Duration,
    idle_per_host: usize,
    tls: &Arc<ClientConfig>,
) -> Client<HttpsConnector<HttpConnector>, B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect));
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config((**tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(idle_per_host)
        .build(connector)
}
