//! `retry` and an upstream's `retries` as a Kong service's `retries`.
//!
//! Kong retries through nginx's balancer (`set_more_tries`) with nginx's
//! default `proxy_next_upstream error timeout`: a refused or timed-out
//! connection for every method (the request was not sent), a connection
//! closed or reset before the response head (`error`) and a read timeout
//! for every method but POST, PATCH and LOCK, whatever the spec's `on`
//! lists; never on an answer's status. The spec retries only what `on`
//! lists, resets and timeouts only for GET, HEAD, OPTIONS, TRACE, PUT and
//! DELETE, and statuses too. So `attempts: 0` (or no retry) is exact, as
//! `retries: 0`; anything else is declared approximate with these
//! differences.

use gatefold_compiler::ir::policy::{Retry, RetryOn};

/// Why a retry with attempts is approximate on Kong.
pub const ATTEMPTS: &str = "Kong's service `retries` (nginx's `proxy_next_upstream error timeout`) retries a refused or timed-out connection for every method, and a reset connection or a read timeout for every method but POST, PATCH and LOCK, whatever `on` lists (the spec retries only what `on` lists, resets and timeouts only for GET, HEAD, OPTIONS, TRACE, PUT and DELETE); its balancer picks the next target as for a new request, which may be one already tried";

/// Why statuses in `on` are approximate on Kong.
pub const STATUSES: &str = "Kong never retries on an answer's status: 500, 502, 503 and 504 in `on` are not carried out (with only statuses in `on`, the service has no retries)";

/// The value the capability matrix shows for the statuses of `on`.
pub const STATUS_VALUES: &str = "500, 502, 503, 504";

/// The value the capability matrix shows for attempts that retry.
pub const ATTEMPTS_VALUE: &str = "over 0";

/// A Kong service's `retries` for the spec's retry: its attempts when
/// `on` names a failure Kong retries (a connection failure, a reset, a
/// timeout), else none (Kong cannot retry statuses, and retrying
/// connections the spec does not would add retries).
pub fn kong_retries(r: Option<&Retry>) -> u32 {
    match r {
        Some(r) if r.on.iter().any(|o| !is_status(*o)) => r.attempts,
        _ => 0,
    }
}

fn is_status(o: RetryOn) -> bool {
    !matches!(
        o,
        RetryOn::ConnectFailure | RetryOn::Reset | RetryOn::Timeout
    )
}

/// The notes of a retry that differs from the spec's on Kong: retries
/// Kong makes (attempts over 0 and a failure in `on`), then statuses in
/// `on`.
pub fn differences(r: &Retry) -> Vec<&'static str> {
    let mut out = Vec::new();
    if r.attempts > 0 {
        if kong_retries(Some(r)) > 0 {
            out.push(ATTEMPTS);
        }
        if r.on.iter().any(|o| is_status(*o)) {
            out.push(STATUSES);
        }
    }
    out
}
