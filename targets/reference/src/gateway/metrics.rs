//! Prometheus metrics: requests by route and status, a latency histogram per
//! route, rate-limit rejections, upstream target health, config reloads.
//!
//! Per-route counters are plain atomics the request path reaches through its
//! compiled route (no map lookup per request), one cache-line-aligned shard
//! per worker thread so workers never write the same line; a scrape adds the
//! shards up. They are kept by route id across config swaps, so counters
//! only ever grow.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Status codes with their own slot; others share a locked map.
const COMMON: [u16; 24] = [
    200, 201, 202, 204, 206, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 408, 409, 410, 413,
    429, 500, 502, 503, 504,
];

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

thread_local! {
    /// Which shard this thread's updates go to (0: not a worker).
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as worker `n`.
pub fn set_worker(n: usize) {
    SHARD.with(|s| s.set(n + 1));
}

/// One worker's counters for a route, on cache lines of its own.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    statuses: [AtomicU64; COMMON.len()],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    rate_limited: AtomicU64,
}

pub struct RouteMetrics {
    shards: Box<[Shard]>,
    other: Mutex<BTreeMap<u16, u64>>,
}

impl RouteMetrics {
    fn new(shards: usize) -> RouteMetrics {
        RouteMetrics {
            shards: (0..shards.max(1)).map(|_| Shard::default()).collect(),
            other: Mutex::new(BTreeMap::new()),
        }
    }

    fn shard(&self) -> &Shard {
        &self.shards[SHARD.with(Cell::get) % self.shards.len()]
    }

    fn sum(&self, f: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|s| f(s).load(Ordering::Relaxed))
            .sum()
    }

    pub fn observe(&self, status: u16, latency: Duration) {
        let shard = self.shard();
        match COMMON.iter().position(|s| *s == status) {
            Some(i) => {
                shard.statuses[i].fetch_add(1, Ordering::Relaxed);
            }
            None => {
                *self
                    .other
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(status)
                    .or_default() += 1;
            }
        }
        let secs = latency.as_secs_f64();
        if let Some(b) = BUCKETS.iter().position(|le| secs <= *le) {
            shard.buckets[b].fetch_add(1, Ordering::Relaxed);
        }
        shard.count.fetch_add(1, Ordering::Relaxed);
        shard
            .sum_micros
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn rate_limited(&self) {
        self.shard().rate_limited.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every metric of a gateway process.
pub struct Metrics {
    /// Shards per route: one per worker, and one for other threads.
    shards: usize,
    routes: Mutex<HashMap<Arc<str>, Arc<RouteMetrics>>>,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    pub access_log_dropped: AtomicU64,
}

/// One target's health, as sampled when metrics are read.
pub struct TargetHealth {
    pub upstream: String,
    pub target: String,
    pub healthy: bool,
    pub inflight: u32,
}

/// The label for requests that matched no route.
pub const NO_ROUTE: &str = "";

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Metrics for a gateway with `workers` worker threads.
    pub fn new(workers: usize) -> Metrics {
        Metrics {
            shards: workers + 1,
            routes: Mutex::default(),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            access_log_dropped: AtomicU64::new(0),
        }
    }

    /// The counters of a route id, created on first use. Keyed by the
    /// route's own id string: a lookup allocates no key.
    pub fn route(&self, id: &Arc<str>) -> Arc<RouteMetrics> {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.clone())
            .or_insert_with(|| Arc::new(RouteMetrics::new(self.shards)))
            .clone()
    }

    /// The Prometheus text exposition.
    pub fn render(&self, health: &[TargetHealth]) -> String {
        let routes: BTreeMap<Arc<str>, Arc<RouteMetrics>> = self
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = String::new();
        out.push_str("# HELP gatefold_requests_total Requests answered, by route and status.\n");
        out.push_str("# TYPE gatefold_requests_total counter\n");
        for (id, m) in &routes {
            let id = escape(id);
            let mut rows: BTreeMap<u16, u64> = COMMON
                .iter()
                .enumerate()
                .map(|(i, s)| (*s, m.sum(|sh| &sh.statuses[i])))
                .filter(|(_, c)| *c > 0)
                .collect();
            rows.extend(m.other.lock().unwrap_or_else(|e| e.into_inner()).iter());
            for (status, n) in rows {
                let _ = writeln!(
                    out,
                    "gatefold_requests_total{{route=\"{id}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP gatefold_request_duration_seconds Time from request to response head.\n",
        );
        out.push_str("# TYPE gatefold_request_duration_seconds histogram\n");
        for (id, m) in &routes {
            let count = m.sum(|sh| &sh.count);
            if count == 0 {
                continue;
            }
            let id = escape(id);
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += m.sum(|sh| &sh.buckets[i]);
                let _ = writeln!(
                    out,
                    "gatefold_request_duration_seconds_bucket{{route=\"{id}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "gatefold_request_duration_seconds_bucket{{route=\"{id}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "gatefold_request_duration_seconds_sum{{route=\"{id}\"}} {}",
                m.sum(|sh| &sh.sum_micros) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "gatefold_request_duration_seconds_count{{route=\"{id}\"}} {count}"
            );
        }
        out.push_str("# HELP gatefold_rate_limited_total Requests refused by rate-limit (429).\n");
        out.push_str("# TYPE gatefold_rate_limited_total counter\n");
        for (id, m) in &routes {
            let n = m.sum(|sh| &sh.rate_limited);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "gatefold_rate_limited_total{{route=\"{}\"}} {n}",
                    escape(id)
                );
            }
        }
        out.push_str("# HELP gatefold_upstream_healthy Whether an upstream target is in rotation (1) or not (0).\n");
        out.push_str("# TYPE gatefold_upstream_healthy gauge\n");
        for h in health {
            let _ = writeln!(
                out,
                "gatefold_upstream_healthy{{upstream=\"{}\",target=\"{}\"}} {}",
                escape(&h.upstream),
                escape(&h.target),
                u8::from(h.healthy)
            );
        }
        out.push_str("# HELP gatefold_upstream_inflight Requests in flight per upstream target.\n");
        out.push_str("# TYPE gatefold_upstream_inflight gauge\n");
        for h in health {
            let _ = writeln!(
                out,
                "gatefold_upstream_inflight{{upstream=\"{}\",target=\"{}\"}} {}",
                escape(&h.upstream),
                escape(&h.target),
                h.inflight
            );
        }
        out.push_str("# HELP gatefold_config_reloads_total Config loads, by result.\n");
        out.push_str("# TYPE gatefold_config_reloads_total counter\n");
        let _ = writeln!(
            out,
            "gatefold_config_reloads_total{{result=\"ok\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "gatefold_config_reloads_total{{result=\"rejected\"}} {}",
            self.reloads_failed.load(Ordering::Relaxed)
        );
        out.push_str("# HELP gatefold_access_log_dropped_total Access log lines that could not be written to stdout.\n");
        out.push_str("# TYPE gatefold_access_log_dropped_total counter\n");
        let _ = writeln!(
            out,
            "gatefold_access_log_dropped_total {}",
            self.access_log_dropped.load(Ordering::Relaxed)
        );
        out
    }
}
