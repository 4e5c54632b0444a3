//! The access log: one JSON line per request on stdout.
//!
//! Each worker thread appends lines to its own buffer and writes the buffer
//! to stdout once it holds 32 KiB, and at least every 200ms (a flush task per
//! worker), so logging costs no lock, no cross-thread hand-off and few
//! syscalls per request.

use serde::Serialize;
use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// One access log line.
#[derive(Serialize)]
pub struct Line<'a> {
    pub time: String,
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

/// Where access log lines go.
#[derive(Clone)]
pub enum AccessLog {
    Off,
    Stdout,
    /// Kept in memory (tests).
    Memory(Arc<Mutex<Vec<String>>>),
}

/// Bytes buffered per worker before they are written.
const FLUSH_AT: usize = 32 * 1024;
/// The longest a line waits in a buffer.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl AccessLog {
    /// Lines to stdout.
    pub fn stdout() -> AccessLog {
        AccessLog::Stdout
    }

    pub fn enabled(&self) -> bool {
        !matches!(self, AccessLog::Off)
    }

    /// Writes a line; returns false when it could not be written.
    pub fn write(&self, line: &Line<'_>) -> bool {
        match self {
            AccessLog::Off => true,
            AccessLog::Stdout => BUFFER.with(|b| {
                let mut b = b.borrow_mut();
                if serde_json::to_writer(&mut *b, line).is_err() {
                    return false;
                }
                b.push(b'\n');
                if b.len() >= FLUSH_AT {
                    write_out(&mut b)
                } else {
                    true
                }
            }),
            AccessLog::Memory(m) => match serde_json::to_string(line) {
                Ok(text) => {
                    m.lock().unwrap_or_else(|e| e.into_inner()).push(text);
                    true
                }
                Err(_) => false,
            },
        }
    }

    /// Writes out what this thread has buffered.
    pub fn flush(&self) {
        if matches!(self, AccessLog::Stdout) {
            BUFFER.with(|b| write_out(&mut b.borrow_mut()));
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
