//! `rate-limit` (phase 6): fixed windows aligned to multiples of `per` since
//! the Unix epoch. Over the limit: 429 with `retry-after`. Every response of
//! a counted request carries `x-ratelimit-limit`, `-remaining` and `-reset`.
//!
//! Counters belong to the place the policy is attached (see
//! [`crate::gateway::runtime`]); a config reload that keeps the same policy in
//! the same place keeps its counters, so a reload never resets a limit.

use crate::gateway::clock::Clock;
use crate::gateway::context::Ctx;
use crate::gateway::decimal::decimal;
use crate::gateway::metrics::RouteMetrics;
use crate::gateway::phases::{Flow, PhaseHooks};
use crate::gateway::respond;
use gatefold_compiler::ir::policy::{RateKey, RateLimit};
use hashbrown::hash_table::{Entry, HashTable};
use http::header::RETRY_AFTER;
use http::{request, HeaderMap, HeaderName, HeaderValue, StatusCode};
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// What one request is counted by.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Global,
    /// Every new key once its shard is full: they share the shard's overflow
    /// counter, so a flood of distinct keys is limited together (failing
    /// closed) instead of growing memory.
    Overflow,
    Ip(IpAddr),
    Consumer(Arc<str>),
    Text(Box<str>),
}

const SHARDS: usize = 16;
/// Distinct keys counted per shard and window (a million per policy).
const MAX_KEYS_PER_SHARD: usize = 65_536;

/// The counters of one attached rate-limit policy.
pub struct FixedWindow {
    pub requests: u64,
    pub per_secs: u64,
    shards: [Mutex<Shard>; SHARDS],
    /// Keyed (SipHash, a random key per policy): clients choose the keys.
    hasher: RandomState,
    overflow_hash: u64,
    max_keys_per_shard: usize,
}

/// Each key's count in the current window. A hash table that takes the
/// hash already made to pick the shard: a map hashed each key twice (300
/// instructions per request, bench/instructions.sh).
#[derive(Default)]
struct Shard {
    window: u64,
    counts: HashTable<(Key, u64)>,
}

impl FixedWindow {
    pub fn new(cfg: &RateLimit) -> FixedWindow {
        let hasher = RandomState::new();
        FixedWindow {
            requests: cfg.requests,
            per_secs: (cfg.per.millis / 1000).max(1),
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
            overflow_hash: hasher.hash_one(&Key::Overflow),
            hasher,
            max_keys_per_shard: MAX_KEYS_PER_SHARD,
        }
    }

    /// Counts one request at `now_ms`; returns (count so far, ms until the window ends).
    fn hit(&self, key: Key, now_ms: u64) -> (u64, u64) {
        let per_ms = self.per_secs * 1000;
        let window = now_ms / per_ms;
        let left = per_ms - now_ms % per_ms;
        let hash = self.hasher.hash_one(&key);
        // The shard from bits the table uses for neither its buckets (the
        // low ones) nor its tags (the top seven).
        let shard_index = (hash >> 32) as usize % SHARDS;
        let mut shard = self.shards[shard_index]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if shard.window != window {
            // A new window: every old count is void. Clearing keeps memory
            // bounded by the keys seen in one window.
            shard.window = window;
            shard.counts.clear();
        }
        let full = shard.counts.len() >= self.max_keys_per_shard;
        let (key, hash) = if full && shard.counts.find(hash, |(k, _)| *k == key).is_none() {
            (Key::Overflow, self.overflow_hash)
        } else {
            (key, hash)
        };
        let rehash = |(k, _): &(Key, u64)| self.hasher.hash_one(k);
        let n = match shard.counts.entry(hash, |(k, _)| *k == key, rehash) {
            Entry::Occupied(e) => {
                let n = &mut e.into_mut().1;
                *n += 1;
                *n
            }
            Entry::Vacant(e) => {
                e.insert((key, 1));
                1
            }
        };
        (n, left)
    }
}

/// The `x-ratelimit-*` headers a counted request's responses carry. Kept
/// as numbers until a response is made: formatting them and promising them
/// as headers cost about 800 instructions a request (bench/instructions.sh).
pub struct RateHeaders {
    limit: HeaderValue,
    remaining: u64,
    reset_secs: u64,
}

impl RateHeaders {
    /// How many headers [`RateHeaders::write`] adds.
    pub const COUNT: usize = 3;

    /// Sets the three headers on a response, replacing any it had.
    pub fn write(&self, h: &mut HeaderMap) {
        h.insert(LIMIT.clone(), self.limit.clone());
        h.insert(REMAINING.clone(), decimal(self.remaining));
        h.insert(RESET.clone(), decimal(self.reset_secs));
    }
}

pub struct RateLimitPolicy {
    key: RateKey,
    counters: Arc<FixedWindow>,
    clock: Arc<dyn Clock>,
    metrics: Arc<RouteMetrics>,
    limit_value: HeaderValue,
}

impl RateLimitPolicy {
    pub fn new(
        cfg: &RateLimit,
        counters: Arc<FixedWindow>,
        clock: Arc<dyn Clock>,
        metrics: Arc<RouteMetrics>,
    ) -> RateLimitPolicy {
        RateLimitPolicy {
            key: cfg.key.clone(),
            limit_value: decimal(counters.requests),
            counters,
            clock,
            metrics,
        }
    }
}

impl PhaseHooks for RateLimitPolicy {
    fn request_filter(&self, req: &request::Parts, ctx: &mut Ctx) -> Flow {
        let ip = || Key::Ip(ctx.client_ip());
        let key = match &self.key {
            RateKey::Global => Key::Global,
            RateKey::Ip => ip(),
            RateKey::Consumer => match &ctx.consumer {
                Some(c) => Key::Consumer(c.name.clone()),
                None => ip(),
            },
            RateKey::Header(h) => match req.headers.get(h.as_str()) {
                Some(v) => Key::Text(String::from_utf8_lossy(v.as_bytes()).into()),
                None => ip(),
            },
        };
        let (count, left_ms) = self.counters.hit(key, self.clock.now().as_millis() as u64);
        let reset_secs = left_ms.div_ceil(1000);
        // A later rate-limit's headers replace an earlier one's.
        ctx.rate_headers = Some(RateHeaders {
            limit: self.limit_value.clone(),
            remaining: self.counters.requests.saturating_sub(count),
            reset_secs,
        });
        if count > self.counters.requests {
            self.metrics.rate_limited();
            let mut resp = respond::error(StatusCode::TOO_MANY_REQUESTS, "too many requests");
            resp.headers_mut().insert(RETRY_AFTER, decimal(reset_secs));
            return Flow::Stop(resp);
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatefold_compiler::ir::Duration;

    #[test]
    fn windows_reset_and_new_keys_past_the_cap_share_a_counter() {
        let mut w = FixedWindow::new(&RateLimit {
            requests: 2,
            per: Duration::from_secs(10),
            key: RateKey::Ip,
        });
        w.max_keys_per_shard = 4;
        let k = |i: u32| Key::Text(i.to_string().into());
        assert_eq!(w.hit(k(1), 1_000), (1, 9_000));
        assert_eq!(w.hit(k(1), 9_999).0, 2);
        assert_eq!(w.hit(k(1), 10_000), (1, 10_000));
        // Fill every shard past its cap; unseen keys then land on overflow
        // counters. Keys hash with a random seed, so fill generously: with
        // 64 keys per shard on average, a shard left without an overflow
        // count (5 keys or fewer) is a one-in-10^17 event, not a flake.
        for i in 0..(SHARDS * 64) as u32 {
            w.hit(k(i + 10), 10_000);
        }
        for shard in &w.shards {
            let n = shard.lock().unwrap().counts.len();
            assert!(n <= 5, "bounded: 4 keys and the overflow, not {n}");
        }
        let fresh: Vec<u64> = (0..64)
            .map(|i| w.hit(Key::Text(format!("fresh-{i}").into()), 10_000).0)
            .collect();
        assert!(fresh.iter().all(|n| *n > 1), "{fresh:?}");
        // A key counted before the shards filled keeps its own count.
        assert_eq!(w.hit(k(1), 10_001).0, 2);
    }
}
