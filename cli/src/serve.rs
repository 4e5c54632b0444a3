//! `gatefold serve SPEC [--listen ADDR] [--listen-tls ADDR] [--admin ADDR] [--watch]`: the
//! reference gateway in the foreground until SIGTERM or Ctrl-C.
//!
//! SPEC is a spec file or folder, or a compiled `gatefold.ir.json`.
//! Defaults: requests on `127.0.0.1:<gateway.listen>`, the admin API on
//! `127.0.0.1:9901`; when 9901 is taken and `--admin` was not given, the
//! gateway says so and serves the admin API on a free loopback port, which
//! it prints (an explicit `--admin` that is taken is an error). With
//! `gateway.tls`, requests are also served over TLS on
//! `127.0.0.1:<gateway.tls.listen>` (`--listen-tls`); `--listen-tls` given
//! without `gateway.tls` listens, but refuses handshakes until a config
//! with certificates is pushed. `--listen` and `--admin` hold across config pushes
//! (a pushed config's `gateway.listen` does not move a running listener).
//! `GATEFOLD_ADMIN_TOKEN`, when set, is the admin API's bearer token; it is
//! required when the admin API binds beyond loopback. Secrets (`{ env: NAME
//! }`) are read from the environment whenever a config is loaded; a missing
//! or empty one refuses the config (at start-up: the gateway does not start).
//! `https://` upstream targets are verified against the system's trust
//! store; `SSL_CERT_FILE` / `SSL_CERT_DIR` point it elsewhere.

use gatefold_target_reference::gateway::{self, access_log::AccessLog, watch::Source, Options};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Default address of the admin API.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9901";

/// What `gatefold serve` was told on its command line.
pub struct Settings {
    pub listen: Option<SocketAddr>,
    /// `None`: `127.0.0.1:<gateway.tls.listen>` when the spec has `tls`.
    pub listen_tls: Option<SocketAddr>,
    /// `None`: [`DEFAULT_ADMIN`], or a free loopback port when it is taken.
    pub admin: Option<SocketAddr>,
    pub watch: bool,
    pub access_log: bool,
    /// `None`: one per core.
    pub workers: Option<usize>,
    pub max_connections: usize,
}

pub fn run(spec: &Path, settings: Settings) -> ExitCode {
    let Settings {
        listen,
        listen_tls,
        admin,
        watch,
        access_log,
        workers,
        max_connections,
    } = settings;
    let source = Source {
        path: spec.to_path_buf(),
        interval: Duration::from_millis(500),
    };
    let ir = match gateway::watch::load(&source) {
        Ok(ir) => ir,
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            if !diagnostics.ends_with('\n') {
                eprintln!();
            }
            eprintln!("error: `{}` cannot be served", spec.display());
            return ExitCode::from(1);
        }
    };
    let listen = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], ir.gateway.listen)));
    let mut opts = Options::new(listen);
    opts.listen_tls = listen_tls.or_else(|| {
        let tls = ir.gateway.tls.as_ref()?;
        Some(SocketAddr::from(([127, 0, 0, 1], tls.listen)))
    });
    opts.admin_fallback = admin.is_none();
    opts.admin = admin.or_else(|| DEFAULT_ADMIN.parse().ok());
    if let Some(n) = workers {
        opts.workers = n;
    }
    opts.max_connections_per_worker = max_connections;
    opts.admin_token = std::env::var("GATEFOLD_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    opts.access_log = if access_log {
        AccessLog::stdout()
    } else {
        AccessLog::Off
    };
    opts.watch = watch.then_some(source);
    match gateway::run(ir, opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
