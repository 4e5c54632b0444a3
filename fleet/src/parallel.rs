//! Bounded parallelism over blocking work, on scoped threads, and cells
//! that let those threads do a piece of shared work once.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};

/// `f` over every item, at most `max` at once; results in item order.
pub fn each<T: Send, R: Send>(items: Vec<T>, max: usize, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let n = items.len();
    let queue = Mutex::new(items.into_iter().enumerate());
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..max.clamp(1, n.max(1)) {
            s.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some((i, item)) = next else { break };
                let r = f(item);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

/// Work done once per key, shared by the threads that need it.
pub type Cells<K, V> = Mutex<HashMap<K, Arc<OnceLock<V>>>>;

/// The cell for `key`: the first caller fills it, the others wait for it.
pub fn once<K: Eq + Hash, V>(cells: &Cells<K, V>, key: K) -> Arc<OnceLock<V>> {
    cells
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_default()
        .clone()
}
