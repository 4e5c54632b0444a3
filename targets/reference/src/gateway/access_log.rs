//! The access log: one JSON line per request on stdout, in time order.
//!
//! Lines go into one buffer shared by the workers, written to stdout once it
//! holds 32 KiB and at least every 200ms. A line's `time` is read under the
//! buffer's lock, so lines are in the order of their times even across
//! workers (per-worker buffers, flushed each on its own, interleaved 200ms
//! batches out of order). The lock is held for one serialization; stdout is
//! written a few times a second.

use super::clock::{rfc3339_bytes, Clock};
use serde::{Serialize, Serializer};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A line's time, `2026-06-30T12:00:00.123Z`: written into the line as it
/// is (no allocation, no escape check: its characters need none).
#[derive(Default)]
pub struct Stamp(Option<[u8; 24]>);

impl Stamp {
    fn as_str(&self) -> &str {
        self.0
            .as_ref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One access log line.
#[derive(Serialize)]
pub struct Line<'a> {
    /// Set by [`AccessLog::write`] (leave it default).
    pub time: Stamp,
    pub request_id: Option<&'a str>,
    pub client: &'a str,
    pub method: &'a str,
    pub host: Option<&'a str>,
    pub path: &'a str,
    pub route: Option<&'a str>,
    pub consumer: Option<&'a str>,
    pub status: u16,
    pub upstream: Option<&'a str>,
    pub target: Option<&'a str>,
    pub cache: Option<&'static str>,
    /// Milliseconds from the request to the response head.
    pub latency_ms: f64,
}

impl Line<'_> {
    /// Appends the line as JSON: what `serde_json` writes for it (a test
    /// holds the two equal), with the keys written as they are instead of
    /// through the serializer, which took half the cost of a line, and
    /// strings that need no escape copied as they are.
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        macro_rules! fields {
            ($($key:literal: $value:expr),* $(,)?) => {
                let mut sep = b'{';
                $(
                    out.push(sep);
                    sep = b',';
                    out.extend_from_slice(concat!("\"", $key, "\":").as_bytes());
                    $value.write_json(out)?;
                )*
                out.push(b'}');
            };
        }
        fields! {
            "time": self.time,
            "request_id": self.request_id,
            "client": self.client,
            "method": self.method,
            "host": self.host,
            "path": self.path,
            "route": self.route,
            "consumer": self.consumer,
            "status": self.status,
            "upstream": self.upstream,
            "target": self.target,
            "cache": self.cache,
            "latency_ms": self.latency_ms,
        }
        Ok(())
    }
}

/// A value of a line, written as `serde_json` writes it.
trait JsonValue {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()>;
}

/// Whether JSON needs an escape for any byte of `s`: a control character,
/// `"` or `\\` (what `serde_json` escapes). One pass without an early exit,
/// which the compiler vectorizes (eight bytes at a time by hand measured
/// the same).
fn needs_escape(s: &[u8]) -> bool {
    s.iter()
        .fold(false, |e, &b| e | (b < 0x20) | (b == b'"') | (b == b'\\'))
}

impl JsonValue for str {
    /// Most values need no escape: those are copied as they are, the others
    /// go through `serde_json`, whose per-byte escape loop was a third of a
    /// line's cost.
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        if needs_escape(self.as_bytes()) {
            return serde_json::to_writer(out, self);
        }
        out.reserve(self.len() + 2);
        out.push(b'"');
        out.extend_from_slice(self.as_bytes());
        out.push(b'"');
        Ok(())
    }
}

impl JsonValue for Stamp {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.push(b'"');
        // Digits, `-`, `:`, `.`, `T` and `Z` only: no UTF-8 check either.
        out.extend_from_slice(self.0.as_ref().map_or(&[][..], |b| &b[..]));
        out.push(b'"');
        Ok(())
    }
}

impl JsonValue for &str {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        (**self).write_json(out)
    }
}

impl JsonValue for String {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        self.as_str().write_json(out)
    }
}

impl<T: JsonValue> JsonValue for Option<T> {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Some(v) => v.write_json(out),
            None => {
                out.extend_from_slice(b"null");
                Ok(())
            }
        }
    }
}

impl JsonValue for u16 {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
}

impl JsonValue for f64 {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
}

/// Where access log lines go.
#[derive(Clone)]
pub enum AccessLog {
    Off,
    /// Buffered lines on their way to stdout.
    Stdout(Arc<Mutex<Vec<u8>>>),
    /// Kept in memory (tests).
    Memory(Arc<Mutex<Vec<String>>>),
}

/// Bytes buffered per worker before they are written.
const FLUSH_AT: usize = 32 * 1024;
/// The longest a line waits in a buffer.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

impl AccessLog {
    /// Lines to stdout.
    pub fn stdout() -> AccessLog {
        AccessLog::Stdout(Arc::default())
    }

    pub fn enabled(&self) -> bool {
        !matches!(self, AccessLog::Off)
    }

    /// Stamps `line` with the time and writes it; returns false when it
    /// could not be written.
    pub fn write(&self, clock: &dyn Clock, line: &mut Line<'_>) -> bool {
        match self {
            AccessLog::Off => true,
            AccessLog::Stdout(buf) => {
                let mut b = buf.lock().unwrap_or_else(|e| e.into_inner());
                line.time = Stamp(Some(rfc3339_bytes(clock.now())));
                if line.write_json(&mut b).is_err() {
                    return false;
                }
                b.push(b'\n');
                if b.len() >= FLUSH_AT {
                    write_out(&mut b)
                } else {
                    true
                }
            }
            AccessLog::Memory(m) => {
                let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                line.time = Stamp(Some(rfc3339_bytes(clock.now())));
                let mut text = Vec::new();
                match line.write_json(&mut text).map(|()| String::from_utf8(text)) {
                    Ok(Ok(text)) => {
                        m.push(text);
                        true
                    }
                    _ => false,
                }
            }
        }
    }

    /// Writes out what is buffered.
    pub fn flush(&self) {
        if let AccessLog::Stdout(buf) = self {
            write_out(&mut buf.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }
}

fn write_out(buf: &mut Vec<u8>) -> bool {
    if buf.is_empty() {
        return true;
    }
    let ok = std::io::stdout().lock().write_all(buf).is_ok();
    buf.clear();
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_that_json_escapes_is_found_at_every_position() {
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=0x7fu8 {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    let s = String::from_utf8(s).unwrap();
                    let escaped = serde_json::to_string(&s).unwrap() != format!("\"{s}\"");
                    assert_eq!(
                        needs_escape(s.as_bytes()),
                        escaped,
                        "{b:#x} at {at} of {len}"
                    );
                }
            }
        }
        // Bytes of multi-byte characters never need one.
        assert!(!needs_escape("\u{e9}\u{1f600}\u{80}\u{7ff}é".as_bytes()));
    }

    #[test]
    fn lines_are_what_serde_json_writes() {
        let mut line = Line {
            time: Stamp(Some(*b"2026-06-30T12:00:00.123Z")),
            request_id: Some("id-1"),
            client: "127.0.0.1",
            method: "GET",
            host: Some("a.example:8080"),
            path: "/q\"uote\\back\nline\u{1}/\u{e9}",
            route: Some("v1.get"),
            consumer: None,
            status: 200,
            upstream: Some("up"),
            target: Some("http://127.0.0.1:9000"),
            cache: Some("hit"),
            latency_ms: 1.25,
        };
        let paths = [
            "/q\"uote\\back\nline\u{1}/\u{e9}",
            "/plain",
            "/\"",
            "/\\",
            "/\u{1f}",
            "/\u{7f}\u{20}",
            "/\u{e9}\u{1f600}",
            "",
        ];
        for (latency, path) in [1.25, 0.0, f64::NAN]
            .into_iter()
            .zip(paths.iter().cycle())
            .chain(paths.iter().map(|p| (2.5, p)))
        {
            line.latency_ms = latency;
            line.path = path;
            let mut ours = Vec::new();
            line.write_json(&mut ours).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&line).unwrap()
            );
        }
    }
}
