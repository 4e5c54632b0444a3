//! Wall-clock time, injected so that rate limits, caches and token checks can
//! be tested by advancing time instead of sleeping.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time since the Unix epoch. Fixed windows, cache TTLs and JWT `exp`
/// are all read from one of these.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Duration;
}

/// The system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicU64,
}

impl ManualClock {
    /// Starts at `start` since the epoch.
    pub fn new(start: Duration) -> ManualClock {
        ManualClock {
            millis: AtomicU64::new(start.as_millis() as u64),
        }
    }

    pub fn advance(&self, by: Duration) {
        self.millis
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn set(&self, to: Duration) {
        self.millis.store(to.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

/// `2026-06-30T12:00:00.123Z` for a time since the epoch.
pub fn rfc3339(t: Duration) -> String {
    String::from_utf8_lossy(&rfc3339_bytes(t)).into_owned()
}

/// [`rfc3339`] as bytes, made without an allocation (access log lines).
pub fn rfc3339_bytes(t: Duration) -> [u8; 24] {
    thread_local! {
        /// The last second written on this thread and its `YYYY-MM-DDTHH:MM:SS`:
        /// a busy worker logs many lines per second, and formatting the date
        /// cost more than the rest of the line.
        static LAST: Cell<Option<(u64, [u8; 19])>> = const { Cell::new(None) };
    }
    let secs = t.as_secs();
    let prefix = LAST.with(|last| match last.get() {
        Some((s, p)) if s == secs => p,
        _ => {
            let p = date_time(secs);
            last.set(Some((secs, p)));
            p
        }
    });
    let ms = t.subsec_millis();
    let mut out = *b"0000-00-00T00:00:00.000Z";
    out[..19].copy_from_slice(&prefix);
    for (at, digit) in [(20, ms / 100), (21, ms / 10 % 10), (22, ms % 10)] {
        out[at] = b'0' + digit as u8;
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SS` for a second since the epoch.
fn date_time(secs: u64) -> [u8; 19] {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let text = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let mut out = *b"0000-00-00T00:00:00";
    // Years past 9999 do not fit; they do not occur.
    if text.len() == out.len() {
        out.copy_from_slice(text.as_bytes());
    }
    out
}

/// `Tue, 30 Jun 2026 00:00:00 GMT` (RFC 9110 IMF-fixdate) for a day since the epoch.
pub fn http_date_of_day(days: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d) = civil_from_days(days);
    let wd = WEEKDAYS[days.rem_euclid(7) as usize];
    format!(
        "{wd}, {d:02} {} {y:04} 00:00:00 GMT",
        MONTHS[m as usize - 1]
    )
}

/// Howard Hinnant's civil_from_days: (year, month 1-12, day 1-31).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format() {
        assert_eq!(http_date_of_day(20_634), "Tue, 30 Jun 2026 00:00:00 GMT");
        assert_eq!(
            rfc3339(Duration::from_millis(1_735_689_600_250)),
            "2025-01-01T00:00:00.250Z"
        );
        // The same second again (cached), then the next one.
        assert_eq!(
            rfc3339(Duration::from_millis(1_735_689_600_007)),
            "2025-01-01T00:00:00.007Z"
        );
        assert_eq!(
            rfc3339(Duration::from_millis(1_735_689_601_999)),
            "2025-01-01T00:00:01.999Z"
        );
    }
}
