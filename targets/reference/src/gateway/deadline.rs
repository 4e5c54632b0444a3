//! Per-request deadlines (hyper's header read timeout, the upstream read
//! timeout) on one timer per worker thread.
//!
//! tokio's timer gave each deadline an entry in its wheel: registered on the
//! first poll, removed when the request finished, through the time driver's
//! lock. Two per proxied request cost 2,270 of its ~35,500 instructions
//! (bench/instructions.sh, the timers taken out), and almost none of them
//! ever fire: a request ends long before its deadline. Here a worker keeps
//! its deadlines in a slab and a min-heap, and one task, the sweeper, sleeps
//! on tokio's timer until the earliest, wakes what is due and sleeps again.
//! Starting a deadline is a slab insert and a heap push; ending one is a
//! slab remove. The heap keeps ended ones until they reach its top, or
//! until it holds twice as many as are live and is rebuilt without them,
//! so it stays within a constant of the live deadlines.
//!
//! A worker starts its sweeper with [`start_sweeper`]. On a thread without
//! one (the control plane, tests that poll by hand), [`Sleep`] uses tokio's
//! timer as before.

use slab::Slab;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The heap drops its ended deadlines once it holds more than twice as
/// many as are live, plus this many.
const HEAP_SLACK: usize = 64;

/// A live deadline (its time is in the heap).
struct Entry {
    generation: u64,
    waker: Waker,
}

/// One worker thread's deadlines.
struct Deadlines {
    /// Tells this set from one a later sweeper on the same thread makes.
    id: u64,
    live: Slab<Entry>,
    /// `(when, slab key, generation)`, earliest on top; may hold ended ones.
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    next_generation: u64,
    /// The sweeper's waker, and the deadline its timer is set for.
    sweeper: Option<Waker>,
    armed: Option<Instant>,
}

impl Deadlines {
    fn add(&mut self, at: Instant, waker: &Waker) -> (usize, u64) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let key = self.live.insert(Entry {
            generation,
            waker: waker.clone(),
        });
        self.heap.push(Reverse((at, key, generation)));
        // Earlier than what the sweeper sleeps until: it sets its timer
        // again. Deadlines of one length come in order, so this is rare.
        if self.armed.is_none_or(|armed| at < armed) {
            if let Some(w) = &self.sweeper {
                w.wake_by_ref();
            }
        }
        (key, generation)
    }

    fn get_mut(&mut self, key: usize, generation: u64) -> Option<&mut Entry> {
        self.live
            .get_mut(key)
            .filter(|e| e.generation == generation)
    }

    fn remove(&mut self, key: usize, generation: u64) {
        if self.get_mut(key, generation).is_some() {
            self.live.remove(key);
        }
        if self.heap.len() > 2 * self.live.len() + HEAP_SLACK {
            // From the heap, which holds every live deadline once: the
            // slab's slots, empty ones included, stay as many as its
            // busiest moment needed (a review measured a rebuild from them
            // costing more than tokio's wheel after a burst of 50,000).
            let mut entries = std::mem::take(&mut self.heap).into_vec();
            let live = &self.live;
            entries.retain(|&Reverse((_, key, generation))| {
                live.get(key).is_some_and(|e| e.generation == generation)
            });
            self.heap = BinaryHeap::from(entries);
        }
    }

    /// Wakes (and forgets) the deadlines due at `now`; returns the earliest
    /// one left.
    fn sweep(&mut self, now: Instant) -> Option<Instant> {
        while let Some(&Reverse((at, key, generation))) = self.heap.peek() {
            if self.get_mut(key, generation).is_some() {
                if at > now {
                    return Some(at);
                }
                self.live.remove(key).waker.wake();
            }
            self.heap.pop();
        }
        None
    }
}

thread_local! {
    static DEADLINES: RefCell<Option<Deadlines>> = const { RefCell::new(None) };
}

/// Sets up this thread's deadlines and spawns the task that wakes them: the
/// thread must run a current-thread tokio runtime, which keeps the task on
/// it. Until the task ends (abort it when the worker stops), [`Sleep`]s made
/// on this thread use its timer.
pub fn start_sweeper() -> tokio::task::JoinHandle<()> {
    static SETS: AtomicU64 = AtomicU64::new(0);
    let id = SETS.fetch_add(1, Ordering::Relaxed);
    let set = Deadlines {
        id,
        live: Slab::new(),
        heap: BinaryHeap::new(),
        next_generation: 0,
        sweeper: None,
        armed: None,
    };
    let replaced = DEADLINES.with(|d| d.borrow_mut().replace(set));
    // One sweeper per thread: a second would drop the first's deadlines
    // without waking them.
    debug_assert!(replaced.is_none(), "a second sweeper on one thread");
    tokio::spawn(run_sweeper(Installed(id)))
}

/// Held by the sweeper: when it ends, the thread's [`Sleep`]s go back to
/// tokio's timer. Those waiting on the sweeper are woken, find their set
/// gone and wait on tokio's timer for the rest of their time.
struct Installed(u64);

impl Drop for Installed {
    fn drop(&mut self) {
        let gone = DEADLINES
            .try_with(|d| {
                let mut d = d.try_borrow_mut().ok()?;
                // Only its own set (not one a later sweeper made).
                d.take_if(|d| d.id == self.0)
            })
            .ok()
            .flatten();
        if let Some(gone) = gone {
            for (_, e) in gone.live {
                e.waker.wake();
            }
        }
    }
}

async fn run_sweeper(_installed: Installed) {
    let mut timer = Box::pin(tokio::time::sleep(Duration::ZERO));
    let mut timer_at: Option<Instant> = None;
    poll_fn(|cx| loop {
        let next = DEADLINES.with(|d| {
            let mut d = d.borrow_mut();
            let d = d.as_mut()?;
            if !d.sweeper.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                d.sweeper = Some(cx.waker().clone());
            }
            d.armed = d.sweep(Instant::now());
            Some(d.armed)
        });
        match next {
            // Taken down: nothing left to sweep.
            None => return Poll::Ready(()),
            // Nothing to wait for until a deadline is added (it wakes us).
            Some(None) => return Poll::Pending,
            Some(Some(at)) => {
                if timer_at != Some(at) {
                    timer.as_mut().reset(at.into());
                    timer_at = Some(at);
                }
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // The timer went off: sweep again (and set it again, even
                // for the same deadline, should tokio's clock run ahead).
                timer_at = None;
            }
        }
    })
    .await
}

/// A deadline: a future that completes when it comes. Made by the request it
/// bounds, dropped when that ends (which takes it off the worker's list).
pub struct Sleep {
    at: Instant,
    state: State,
}

enum State {
    /// Not polled yet: on no list.
    Idle,
    /// On this worker's list.
    Listed {
        set: u64,
        key: usize,
        generation: u64,
    },
    Done,
    /// On a thread without a sweeper.
    Tokio(Pin<Box<tokio::time::Sleep>>),
}

impl Sleep {
    /// Completes `d` from now.
    pub fn new(d: Duration) -> Sleep {
        let now = Instant::now();
        // As tokio does for a deadline past what `Instant` holds: far away.
        let at = now
            .checked_add(d)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30));
        Sleep::until(at)
    }

    /// Completes at `at`.
    pub fn until(at: Instant) -> Sleep {
        Sleep {
            at,
            state: State::Idle,
        }
    }

    /// Waits for the deadline on tokio's timer from now on (no worker list
    /// to be on).
    fn on_tokio(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut sleep = Box::pin(tokio::time::sleep_until(self.at.into()));
        let polled = sleep.as_mut().poll(cx);
        self.state = State::Tokio(sleep);
        polled
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        match &mut this.state {
            State::Done => Poll::Ready(()),
            State::Tokio(sleep) => sleep.as_mut().poll(cx),
            State::Idle => {
                let listed = DEADLINES.with(|d| {
                    let mut d = d.borrow_mut();
                    let d = d.as_mut()?;
                    let (key, generation) = d.add(this.at, cx.waker());
                    Some(State::Listed {
                        set: d.id,
                        key,
                        generation,
                    })
                });
                match listed {
                    Some(listed) => {
                        this.state = listed;
                        Poll::Pending
                    }
                    None => this.on_tokio(cx),
                }
            }
            &mut State::Listed {
                set,
                key,
                generation,
            } => {
                let listed = DEADLINES.with(|d| {
                    let mut d = d.borrow_mut();
                    let d = d.as_mut().filter(|d| d.id == set)?;
                    let Some(e) = d.get_mut(key, generation) else {
                        // Swept: the deadline came.
                        return Some(false);
                    };
                    if !e.waker.will_wake(cx.waker()) {
                        e.waker = cx.waker().clone();
                    }
                    Some(true)
                });
                match listed {
                    Some(true) => Poll::Pending,
                    Some(false) => {
                        this.state = State::Done;
                        Poll::Ready(())
                    }
                    // Its set is gone (the sweeper ended) or is another
                    // thread's (the future moved): tokio's timer for the rest.
                    None => this.on_tokio(cx),
                }
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let State::Listed {
            set,
            key,
            generation,
        } = self.state
        {
            // `try_`: a sleep dropped while the list is being swept (by a
            // waker that owned its task) or after the thread's locals are
            // gone stays listed until it comes, which is harmless.
            let _ = DEADLINES.try_with(|d| {
                if let Ok(mut d) = d.try_borrow_mut() {
                    if let Some(d) = d.as_mut().filter(|d| d.id == set) {
                        d.remove(key, generation);
                    }
                }
            });
        }
    }
}

/// hyper's timer for the listeners' connections (the header read timeout),
/// on the worker's deadlines.
#[derive(Clone, Copy, Debug)]
pub struct WorkerTimer;

impl hyper::rt::Sleep for Sleep {}

impl hyper::rt::Timer for WorkerTimer {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep::new(d))
    }

    fn sleep_until(&self, at: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep::until(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn deadlines_come_in_order_and_on_time_and_ended_ones_never() {
        runtime().block_on(async {
            let sweeper = start_sweeper();
            let start = Instant::now();
            let fired = Rc::new(std::cell::RefCell::new(Vec::new()));
            let local = tokio::task::LocalSet::new();
            for ms in [120u64, 40, 80, 10] {
                let fired = fired.clone();
                local.spawn_local(async move {
                    Sleep::new(Duration::from_millis(ms)).await;
                    fired.borrow_mut().push((ms, start.elapsed()));
                });
            }
            // Ended before its deadline: taken off the list, never fires.
            let ended = Rc::new(Cell::new(false));
            let e = ended.clone();
            local.spawn_local(async move {
                tokio::select! {
                    _ = Sleep::new(Duration::from_millis(60)) => e.set(true),
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                }
            });
            local.await;
            let fired = fired.borrow();
            let order: Vec<u64> = fired.iter().map(|(ms, _)| *ms).collect();
            assert_eq!(order, [10, 40, 80, 120]);
            for (ms, took) in fired.iter() {
                assert!(
                    *took >= Duration::from_millis(*ms),
                    "{ms} ms came at {took:?}"
                );
                assert!(
                    *took < Duration::from_millis(ms + 200),
                    "{ms} ms came at {took:?}"
                );
            }
            assert!(!ended.get());
            DEADLINES.with(|d| {
                let d = d.borrow();
                let d = d.as_ref().unwrap();
                assert!(d.live.is_empty(), "{} left", d.live.len());
            });
            sweeper.abort();
        });
    }

    #[test]
    fn an_earlier_deadline_than_the_sweeper_waits_for_still_comes_on_time() {
        runtime().block_on(async {
            let sweeper = start_sweeper();
            let far = tokio::spawn(Sleep::new(Duration::from_secs(30)));
            tokio::task::yield_now().await;
            let start = Instant::now();
            Sleep::new(Duration::from_millis(20)).await;
            assert!(start.elapsed() < Duration::from_millis(500));
            far.abort();
            sweeper.abort();
        });
    }

    #[test]
    fn the_list_stays_within_a_constant_of_the_live_deadlines() {
        runtime().block_on(async {
            let sweeper = start_sweeper();
            // One long deadline stays; a million short-lived ones end.
            let mut kept = Box::pin(Sleep::new(Duration::from_secs(60)));
            let waker = Waker::noop();
            let mut cx = Context::from_waker(waker);
            assert!(kept.as_mut().poll(&mut cx).is_pending());
            for _ in 0..1_000_000 {
                let mut s = Box::pin(Sleep::new(Duration::from_secs(30)));
                assert!(s.as_mut().poll(&mut cx).is_pending());
            }
            DEADLINES.with(|d| {
                let d = d.borrow();
                let d = d.as_ref().unwrap();
                assert_eq!(d.live.len(), 1);
                assert!(d.heap.len() <= 2 + HEAP_SLACK, "{}", d.heap.len());
            });
            sweeper.abort();
        });
    }

    #[test]
    fn without_a_sweeper_a_sleep_uses_tokios_timer() {
        runtime().block_on(async {
            let start = Instant::now();
            Sleep::new(Duration::from_millis(20)).await;
            assert!(start.elapsed() >= Duration::from_millis(20));
        });
    }

    #[test]
    fn when_the_sweeper_ends_waiting_sleeps_keep_their_deadlines_on_tokios_timer() {
        runtime().block_on(async {
            let sweeper = start_sweeper();
            let start = Instant::now();
            let waiting = tokio::spawn(Sleep::new(Duration::from_millis(300)));
            tokio::task::yield_now().await;
            sweeper.abort();
            waiting.await.unwrap();
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(300), "came early: {took:?}");
            assert!(took < Duration::from_secs(5), "came late: {took:?}");
            // Later ones use tokio's timer.
            let start = Instant::now();
            Sleep::new(Duration::from_millis(10)).await;
            assert!(start.elapsed() >= Duration::from_millis(10));
        });
    }

    #[test]
    fn a_sleep_polled_on_another_thread_keeps_its_deadline() {
        let rt = runtime();
        let _in = rt.enter();
        let _sweeper = start_sweeper();
        let mut sleep = Box::pin(Sleep::new(Duration::from_millis(300)));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        let start = Instant::now();
        std::thread::spawn(move || runtime().block_on(sleep))
            .join()
            .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(150), "came early");
    }

    #[test]
    fn rebuilding_the_list_after_a_burst_keeps_every_live_deadline() {
        runtime().block_on(async {
            let sweeper = start_sweeper();
            let mut cx = Context::from_waker(Waker::noop());
            // A burst leaves the slab large; the live ones are scattered.
            let mut burst: Vec<_> = (0..10_000)
                .map(|_| Box::pin(Sleep::new(Duration::from_secs(30))))
                .collect();
            for s in &mut burst {
                assert!(s.as_mut().poll(&mut cx).is_pending());
            }
            let kept: Vec<_> = burst.drain(..).step_by(1000).collect();
            drop(burst);
            DEADLINES.with(|d| {
                let d = d.borrow();
                let d = d.as_ref().unwrap();
                assert_eq!(d.live.len(), kept.len());
                assert!(d.heap.len() <= 2 * kept.len() + HEAP_SLACK + 1);
                let mut listed: Vec<usize> = d.heap.iter().map(|r| r.0 .1).collect();
                listed.sort();
                let mut live: Vec<usize> = d.live.iter().map(|(k, _)| k).collect();
                live.sort();
                for k in &live {
                    assert!(listed.contains(k), "live deadline {k} left off the heap");
                }
            });
            drop(kept);
            sweeper.abort();
        });
    }
}
