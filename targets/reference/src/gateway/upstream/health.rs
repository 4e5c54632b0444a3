//! Active health checks: every `interval`, `GET path` on each target with
//! `host` set to the target's host and port; a 2xx or 3xx within `timeout`
//! is a success.

use super::client;
use super::server::Server;
use bytes::Bytes;
use gatefold_compiler::ir::HealthCheck;
use http::header::HOST;
use http::Request;
use http_body_util::Empty;
use rustls::ClientConfig;
use std::sync::{Arc, Weak};
use tokio::task::AbortHandle;
use tokio::time::{interval, timeout, MissedTickBehavior};

/// What a health check needs of the upstream whose server it checks (the
/// pool implements it; this module does not depend on the pool).
pub trait Checked: Send + Sync + 'static {
    /// Server `i`.
    fn server(&self, i: usize) -> &Server;
    /// Counts one check result of server `i`.
    fn record_check(&self, i: usize, ok: bool);
}

/// Checks server `i` of `pool` until the pool is dropped.
pub fn spawn<P: Checked>(
    pool: Weak<P>,
    i: usize,
    cfg: HealthCheck,
    tls: Arc<ClientConfig>,
) -> AbortHandle {
    tokio::spawn(async move {
        let limit = cfg.timeout.as_std();
        let client = client::build_https::<Empty<Bytes>>(limit, 0, &tls);
        let mut tick = interval(cfg.interval.as_std());
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(p) = pool.upgrade() else { return };
            let t = p.server(i);
            let uri = format!("{}{}", t.label, cfg.path);
            let req = Request::get(uri)
                .header(HOST, t.authority.clone())
                .body(Empty::new());
            let ok = match req {
                Ok(req) => matches!(
                    timeout(limit, client.request(req)).await,
                    Ok(Ok(resp)) if resp.status().is_success() || resp.status().is_redirection()
                ),
                Err(_) => false,
            };
            p.record_check(i, ok);
        }
    })
    .abort_handle()
}
