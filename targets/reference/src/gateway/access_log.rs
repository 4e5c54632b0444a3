//! The access log: one JSON line per request on stdout, written by a
//! dedicated thread so a slow stdout never blocks a request (lines are
//! dropped, and counted, when it falls 64k lines behind).

use serde::Serialize;
use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

/// One access log line.
#[derive(Serialize)]
pub struct Line<'a> {
    pub time: String,
    pub request_id: Option<&'a str>,
    pub client: String,
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
    Stdout(SyncSender<String>),
    /// Kept in memory (tests).
    Memory(Arc<Mutex<Vec<String>>>),
}

impl AccessLog {
    /// Lines to stdout through a writer thread.
    pub fn stdout() -> AccessLog {
        let (tx, rx) = sync_channel::<String>(65_536);
        std::thread::Builder::new()
            .name("gatefold-access-log".into())
            .spawn(move || write_lines(rx))
            .map(|_| AccessLog::Stdout(tx))
            .unwrap_or(AccessLog::Off)
    }

    pub fn enabled(&self) -> bool {
        !matches!(self, AccessLog::Off)
    }

    /// Writes a line; returns false when it had to be dropped.
    pub fn write(&self, line: &Line<'_>) -> bool {
        let text = match serde_json::to_string(line) {
            Ok(t) => t,
            Err(_) => return false,
        };
        match self {
            AccessLog::Off => true,
            AccessLog::Stdout(tx) => !matches!(tx.try_send(text), Err(TrySendError::Full(_))),
            AccessLog::Memory(m) => {
                m.lock().unwrap_or_else(|e| e.into_inner()).push(text);
                true
            }
        }
    }
}

fn write_lines(rx: Receiver<String>) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    while let Ok(line) = rx.recv() {
        let _ = out.write_all(line.as_bytes());
        let _ = out.write_all(b"\n");
        // Flush when caught up, so lines appear promptly at low traffic and
        // in batches under load.
        while let Ok(more) = rx.try_recv() {
            let _ = out.write_all(more.as_bytes());
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }
}
