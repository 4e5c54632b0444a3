//! The upstream HTTP client: hyper's pooled client, one per connect timeout
//! (the connector holds the timeout). Clients outlive config swaps, so a
//! reload keeps warm connections.

use crate::gateway::Body;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub type HttpClient = Client<HttpConnector, Body>;

/// Clients by connect timeout.
#[derive(Default)]
pub struct Clients {
    by_connect: Mutex<HashMap<Duration, HttpClient>>,
}

impl Clients {
    pub fn get(&self, connect: Duration) -> HttpClient {
        let mut map = self.by_connect.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(connect)
            .or_insert_with(|| build(connect, 1024))
            .clone()
    }
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
