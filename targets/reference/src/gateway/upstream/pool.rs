//! An upstream at run time: its targets with their health and load, its
//! balancer and its health-check tasks.
//!
//! Health: targets start healthy. Active checks (when `health` is set) count
//! consecutive results: `unhealthy-after` failures take a target out,
//! `healthy-after` successes put it back. Passive ejection (also only with
//! `health`, which gives the thresholds): connect failures, timeouts and
//! resets seen on live traffic count as failures the same way; only an
//! active check brings such a target back.

use super::balance::Balancer;
use super::health::{self, Checked};
use super::server::Server;
use gatefold_compiler::ir::Upstream;
use http::{HeaderMap, HeaderValue};
use rustls::ClientConfig;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::AbortHandle;

/// Counts a request in flight on a target until dropped.
pub struct InflightGuard(Arc<Pool>, usize);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.targets[self.1]
            .inflight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct Pool {
    pub name: Arc<str>,
    /// The definition it was built from; a reload reuses the pool (and its
    /// health state) when the definition is unchanged.
    pub def: Upstream,
    pub targets: Vec<Server>,
    balancer: Balancer,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Pool {
    /// Builds the pool and starts its health checks (inside a tokio runtime).
    pub fn start(name: &str, def: &Upstream, tls: &Arc<ClientConfig>) -> Result<Arc<Pool>, String> {
        let mut targets = Vec::with_capacity(def.targets.len());
        for t in &def.targets {
            let authority = format!("{}:{}", t.url.host, t.url.port);
            let scheme = if t.url.tls { "https" } else { "http" };
            targets.push(Server {
                label: format!("{scheme}://{authority}").into(),
                authority: HeaderValue::from_str(&authority).map_err(|e| e.to_string())?,
                addr: authority.as_str().into(),
                tls: t.url.tls,
                weight: t.weight.max(1),
                healthy: AtomicBool::new(true),
                fails: AtomicU32::new(0),
                successes: AtomicU32::new(0),
                inflight: AtomicU32::new(0),
            });
        }
        let balancer = Balancer::new(&def.balance, &targets);
        let pool = Arc::new(Pool {
            name: name.into(),
            def: def.clone(),
            targets,
            balancer,
            tasks: Mutex::new(Vec::new()),
        });
        if let Some(h) = &def.health {
            let tasks = (0..pool.targets.len())
                .map(|i| health::spawn(Arc::downgrade(&pool), i, h.clone(), tls.clone()))
                .collect();
            *pool.tasks.lock().unwrap_or_else(|e| e.into_inner()) = tasks;
        }
        Ok(pool)
    }

    pub fn pick(&self, headers: &HeaderMap, tried: &[usize]) -> Option<usize> {
        self.balancer.pick(&self.targets, headers, tried)
    }

    /// Marks a request in flight on target `i` (least-request balancing).
    pub fn begin(self: &Arc<Self>, i: usize) -> InflightGuard {
        self.targets[i].inflight.fetch_add(1, Ordering::Relaxed);
        InflightGuard(self.clone(), i)
    }

    /// Records an active check result.
    pub fn record_check(&self, i: usize, ok: bool) {
        let Some(h) = &self.def.health else { return };
        let t = &self.targets[i];
        if ok {
            t.fails.store(0, Ordering::Relaxed);
            let n = t.successes.fetch_add(1, Ordering::Relaxed) + 1;
            if !t.is_healthy() && n >= h.healthy_after {
                t.healthy.store(true, Ordering::Relaxed);
                crate::say!(
                    "gatefold: upstream {} target {} is healthy again",
                    self.name,
                    t.label
                );
            }
        } else {
            t.successes.store(0, Ordering::Relaxed);
            self.count_failure(i, h.unhealthy_after);
        }
    }

    /// Records a live request's outcome (passive ejection).
    pub fn record_live(&self, i: usize, ok: bool) {
        let Some(h) = &self.def.health else { return };
        if ok {
            // Read first: a store on every request would make the cores
            // trade the line back and forth while nothing changes.
            let fails = &self.targets[i].fails;
            if fails.load(Ordering::Relaxed) != 0 {
                fails.store(0, Ordering::Relaxed);
            }
        } else {
            self.count_failure(i, h.unhealthy_after);
        }
    }

    fn count_failure(&self, i: usize, threshold: u32) {
        let t = &self.targets[i];
        let n = t.fails.fetch_add(1, Ordering::Relaxed) + 1;
        if t.is_healthy() && n >= threshold {
            t.healthy.store(false, Ordering::Relaxed);
            t.successes.store(0, Ordering::Relaxed);
            crate::say!(
                "gatefold: upstream {} target {} is unhealthy",
                self.name,
                t.label
            );
        }
    }
}

impl Checked for Pool {
    fn server(&self, i: usize) -> &Server {
        &self.targets[i]
    }

    fn record_check(&self, i: usize, ok: bool) {
        Pool::record_check(self, i, ok)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for t in self
            .tasks
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}
