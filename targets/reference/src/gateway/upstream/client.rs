//! The upstream HTTP client: hyper's pooled client, one per worker thread
//! and connect timeout (the connector holds the timeout). Each worker keeps
//! its own pool, so a request and its upstream connection live on one thread
//! (no cross-thread wake-ups), and pools outlive config swaps, so a reload
//! keeps warm connections.

use crate::gateway::Body;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::cell::RefCell;
use std::time::Duration;

pub type HttpClient = Client<HttpConnector, Body>;

thread_local! {
    static LOCAL: RefCell<Vec<(Duration, HttpClient)>> = const { RefCell::new(Vec::new()) };
}

/// Sends `req` with this thread's client for `connect`.
pub fn request(connect: Duration, req: http::Request<Body>) -> ResponseFuture {
    LOCAL.with(|clients| {
        let mut clients = clients.borrow_mut();
        if let Some((_, c)) = clients.iter().find(|(d, _)| *d == connect) {
            return c.request(req);
        }
        let c = build(connect, 1024);
        let fut = c.request(req);
        clients.push((connect, c));
        fut
    })
}

/// A client whose connections time out after `connect`, keeping up to
/// `idle_per_host` idle connections per target.
pub fn build<B>(connect: Duration, idle_per_host: usize) -> Client<HttpConnector, B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(idle_per_host)
        .build(connector)
}
