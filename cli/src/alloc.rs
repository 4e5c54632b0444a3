//! The process's allocator: mimalloc, with its purge delay set per command.
//!
//! For `serve` and `up` mimalloc is a measured throughput gain over glibc's
//! allocator (per-request buffers and headers), and its default of keeping
//! freed pages for 10 ms before returning them saves system calls; the
//! fleet commands (`plan`, `apply`, `drift`, `rollback`) go back to that
//! default once the spec is compiled, for their many threads and
//! connections ([`for_network_phase`]). A
//! one-shot command (`compile`, `validate`, `explain`, `diff`) instead frees
//! the spec's definitions in bulk midway and then builds the IR and output:
//! returning freed pages at once, and committing arena memory only when it
//! is touched, keeps a 100,000-route compile's peak RSS under 200 MB (it
//! was 210-228 MB with the defaults; `docs/performance.md`).
//!
//! Every command runs without transparent huge pages. With them, a fault
//! in a fresh region zeroes 2 MiB at once (and may compact memory first),
//! and freed memory returned to the system is faulted in again the same
//! way: on this project's VMs half a 10,000-route compile's time, and half
//! a gateway's config load, went to `clear_page_erms` (docs/performance.md,
//! "Stop 14").

#![allow(unsafe_code)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` and `mi_option_purge_delay` in
/// mimalloc.h (the same in mimalloc v2 and v3; the sys crate names neither).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Turns transparent huge pages off for this process (and the processes
/// it starts). Call first thing in `main`; a kernel without the setting
/// leaves things as they are.
pub fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process's memory
    // map; it reads no pointer. A failure (old kernel) changes nothing.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Tunes the allocator for a short batch run: freed memory goes back to
/// the system at once. Call before the work starts.
pub fn for_batch_run() {
    // SAFETY: mi_option_set only stores an integer in mimalloc's option
    // table (atomically); any option index and value is accepted.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

/// After a batch run's compile, for work that frees and reuses memory all
/// along (a fleet command's threads and connections to many gateways):
/// freed pages are kept 10 ms again, mimalloc's default. Returned at once
/// they were faulted in again and again (a 50-gateway apply of a 2-route
/// spec: 34 ms of CPU instead of 41; docs/performance.md).
pub fn for_network_phase() {
    // SAFETY: as in `for_batch_run`.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 10);
    }
}
