//! An upstream's origin server at run time (policy-spec `targets`): its
//! address and its health and load counters, which the pool, the balancer,
//! the health checks and the client share.

use http::HeaderValue;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

/// One origin server of an upstream at run time: where to connect, and
/// its health and load.
pub struct Server {
    /// `http(s)://host:port`: the base of the URIs sent, and the name in logs and metrics.
    pub label: Arc<str>,
    /// `host:port`, sent as `host` upstream.
    pub authority: HeaderValue,
    /// `host:port`, where connections go.
    pub addr: Box<str>,
    /// `https://`.
    pub tls: bool,
    pub weight: u32,
    pub(super) healthy: AtomicBool,
    pub(super) fails: AtomicU32,
    pub(super) successes: AtomicU32,
    pub(super) inflight: AtomicU32,
}

impl Server {
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn inflight(&self) -> u32 {
        self.inflight.load(Ordering::Relaxed)
    }
}
