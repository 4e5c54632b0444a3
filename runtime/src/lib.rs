//! The real gateway runtimes gatefold's targets run on: nginx, Envoy and
//! workerd (Cloudflare Workers).
//!
//! Each runtime has the same small shape, blocking and on loopback only:
//! `locate` the binary (environment override, then the project's `.tools/`,
//! then `PATH`), `check` a configuration with the runtime's own checker,
//! `start` it on a private prefix / work directory (the returned instance
//! stops the runtime and all its processes when dropped), `reload` it with
//! the old configuration kept when the new one fails, and `stop` it.
//!
//! Install the runtimes with `scripts/install-runtimes.sh` (see
//! `docs/runtimes.md`).

mod admin;
pub mod dns;
pub mod envoy;
pub mod launch;
mod locate;
pub mod lua;
pub mod nginx;
mod process;
pub mod workerd;

use std::path::PathBuf;
use std::time::Duration;

pub use envoy::{Envoy, EnvoyConfig, EnvoyInstance};
pub use launch::{Launch, Launched};
pub use lua::Luajit;
pub use nginx::{Nginx, NginxInstance};
pub use workerd::{Workerd, WorkerdInstance};

/// How long `start` and `reload` wait for a runtime before giving up:
/// generous, so that a loaded machine still passes. A runtime that exits
/// is reported at once; this bounds only one that neither exits nor
/// listens. nginx takes 7-24 s to load a 10,000-route config on a busy
/// 2-core machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What can go wrong finding, checking or running a runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime's binary is not installed (or an override points nowhere).
    #[error("{runtime} not found ({searched}); install it with {install}")]
    NotFound {
        /// `nginx`, `envoy` or `luajit`.
        runtime: &'static str,
        /// Where it was looked for.
        searched: String,
        /// The exact command that installs it.
        install: &'static str,
    },
    /// The runtime's own checker rejected a configuration.
    #[error("{runtime} rejected the configuration:\n{message}")]
    Rejected {
        /// The runtime that rejected it.
        runtime: &'static str,
        /// The checker's own message.
        message: String,
    },
    /// The runtime did not start, reload or stop as it should.
    #[error("{runtime}: {what}{}", log_note(.log, .tail))]
    Failed {
        /// The runtime.
        runtime: &'static str,
        /// What went wrong.
        what: String,
        /// The log to read for details.
        log: Option<PathBuf>,
        /// The last lines of that log.
        tail: String,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn log_note(log: &Option<PathBuf>, tail: &str) -> String {
    match log {
        Some(path) if tail.is_empty() => format!(" (log: {})", path.display()),
        Some(path) => format!(
            " (log: {}, last lines:\n{})",
            path.display(),
            tail.trim_end()
        ),
        None => String::new(),
    }
}

/// The result of every runtime operation.
pub type Result<T> = std::result::Result<T, Error>;

/// An [`Error::Io`] saying what was being done.
fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// The last `lines` lines of a log file, or nothing if it cannot be read.
fn tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `ready` every 20 ms until it says yes, fails, or `timeout` passes
/// (then `Ok(false)`).
fn poll_until(timeout: Duration, mut ready: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if ready()? {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether something accepts TCP connections at `addr` right now.
fn accepts(addr: std::net::SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}
