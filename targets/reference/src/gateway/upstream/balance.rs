//! Choosing a target within an upstream (policy-spec `balance`): weighted
//! round robin, least requests in flight (weights respected), or consistent
//! hashing of a request header. Unhealthy targets are skipped; targets
//! already tried by this request are avoided while others remain.

use super::server::Server;
use gatefold_compiler::ir::Balance;
use http::{HeaderMap, HeaderName};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

pub enum Balancer {
    RoundRobin(Wrr),
    LeastRequest(AtomicUsize),
    HashHeader {
        header: HeaderName,
        /// (point on the ring, target), sorted by point.
        ring: Vec<(u64, usize)>,
        fallback: Wrr,
    },
}

/// Smooth weighted round robin, precomputed into a schedule walked by one
/// atomic counter (no lock on the hot path).
pub struct Wrr {
    schedule: Vec<usize>,
    next: AtomicUsize,
}

impl Wrr {
    pub fn new(weights: &[u32]) -> Wrr {
        let g = weights.iter().copied().fold(0, gcd).max(1);
        let w: Vec<i64> = weights.iter().map(|x| (*x / g).max(1) as i64).collect();
        let total: i64 = w.iter().sum();
        let mut current = vec![0i64; w.len()];
        let mut schedule = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, wi) in current.iter_mut().zip(&w) {
                *c += wi;
            }
            let best = (0..w.len())
                .max_by_key(|i| (current[*i], -(*i as i64)))
                .unwrap_or(0);
            current[best] -= total;
            schedule.push(best);
        }
        Wrr {
            schedule,
            next: AtomicUsize::new(0),
        }
    }

    fn pick(&self, ok: impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.schedule.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| self.schedule[(start + i) % n])
            .find(|t| ok(*t))
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn hash64(v: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

impl Balancer {
    pub fn new(balance: &Balance, targets: &[Server]) -> Balancer {
        let weights: Vec<u32> = targets.iter().map(|t| t.weight).collect();
        match balance {
            Balance::RoundRobin => Balancer::RoundRobin(Wrr::new(&weights)),
            Balance::LeastRequest => Balancer::LeastRequest(AtomicUsize::new(0)),
            Balance::HashHeader(h) => {
                let mut ring = Vec::new();
                for (i, t) in targets.iter().enumerate() {
                    // 40 points per unit of weight, capped to keep the ring small.
                    for v in 0..(t.weight * 40).min(4000) {
                        ring.push((hash64(format!("{}#{v}", t.label).as_bytes()), i));
                    }
                }
                ring.sort_unstable();
                Balancer::HashHeader {
                    header: HeaderName::from_bytes(h.as_str().as_bytes())
                        .unwrap_or(HeaderName::from_static("x-hash")),
                    ring,
                    fallback: Wrr::new(&weights),
                }
            }
        }
    }

    /// A healthy target, preferring ones not in `tried`; `None` when none is healthy.
    pub fn pick(&self, targets: &[Server], headers: &HeaderMap, tried: &[usize]) -> Option<usize> {
        let healthy = |i: usize| targets[i].is_healthy();
        let fresh = |i: usize| healthy(i) && !tried.contains(&i);
        self.pick_with(targets, headers, &fresh)
            .or_else(|| self.pick_with(targets, headers, &healthy))
    }

    fn pick_with(
        &self,
        targets: &[Server],
        headers: &HeaderMap,
        ok: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        match self {
            Balancer::RoundRobin(w) => w.pick(ok),
            Balancer::LeastRequest(next) => {
                // Fewest in flight per unit of weight; ties rotate.
                let n = targets.len();
                let start = next.fetch_add(1, Ordering::Relaxed);
                let mut best: Option<(u64, u64, usize)> = None;
                for k in 0..n {
                    let i = (start + k) % n;
                    if !ok(i) {
                        continue;
                    }
                    let load = targets[i].inflight() as u64 + 1;
                    let w = targets[i].weight as u64;
                    // load/w < best_load/best_w  <=>  load*best_w < best_load*w
                    if best.is_none_or(|(bl, bw, _)| load * bw < bl * w) {
                        best = Some((load, w, i));
                    }
                }
                best.map(|(_, _, i)| i)
            }
            Balancer::HashHeader {
                header,
                ring,
                fallback,
            } => match headers.get(header) {
                None => fallback.pick(ok),
                Some(v) => {
                    let h = hash64(v.as_bytes());
                    let start = ring.partition_point(|(p, _)| *p < h);
                    (0..ring.len())
                        .map(|k| ring[(start + k) % ring.len()].1)
                        .find(|i| ok(*i))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_wrr_interleaves_by_weight() {
        let w = Wrr::new(&[3, 1]);
        assert_eq!(w.schedule, vec![0, 0, 1, 0]);
        let w = Wrr::new(&[2, 2]);
        assert_eq!(w.schedule, vec![0, 1]);
    }
}
