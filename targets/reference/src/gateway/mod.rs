//! The reference gateway: executes a [`ValidIr`] natively over HTTP/1.1 and
//! HTTP/2 (h2c), with an admin API, metrics, an access log and hot reload.
//!
//! Shape: a [`Runtime`] is built once per config and swapped atomically
//! (`arc-swap`); each request holds the runtime it started with. The request
//! path is [`service::handle`]: route lookup, then the route's policies in
//! phase order ([`phases`]), then the proxy. Every config change (start-up,
//! `PUT /config`, rollback, `--watch`) goes through [`Shared::apply`].

pub mod access_log;
pub mod admin;
pub mod client_body;
pub mod clock;
// Before the listeners' modules: they use its `drive!` macro.
#[macro_use]
mod conn;
pub mod context;
mod deadline;
pub mod decimal;
mod idle;
pub mod ir_http;
pub mod metrics;
pub mod phases;
pub mod policies;
pub mod proxy;
pub mod respond;
mod rewind;
pub mod runtime;
pub mod secrets;
pub mod service;
pub mod tls_listener;
pub mod upstream;
pub mod watch;

use access_log::AccessLog;
use arc_swap::ArcSwap;
use bytes::Bytes;
use clock::{Clock, SystemClock};
use gatefold_compiler::ir::{ContentHash, ValidIr};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use metrics::Metrics;
use runtime::{BuildEnv, Runtime};
use secrets::{EnvSecrets, SecretSource};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch as signal;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every body the gateway sends.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// How many earlier configs `POST /rollback` can go back to.
const HISTORY: usize = 16;

/// Default of [`Options::max_connections_per_worker`].
pub const DEFAULT_MAX_CONNECTIONS_PER_WORKER: usize = 10_000;

/// How a gateway process runs.
pub struct Options {
    /// Where requests are served.
    pub listen: SocketAddr,
    /// Where requests are served over TLS (`gateway.tls`); `None`: no TLS
    /// listener. The certificates come from each config; while a config has
    /// none, TLS handshakes are refused.
    pub listen_tls: Option<SocketAddr>,
    /// Where the admin API is served; `None`: no admin API.
    pub admin: Option<SocketAddr>,
    /// When `admin` is taken by another process, serve the admin API on a
    /// free port of the same address (saying so) instead of failing: for a
    /// default address the user did not ask for.
    pub admin_fallback: bool,
    /// Bearer token for the admin API; required when it is not on loopback.
    pub admin_token: Option<String>,
    pub clock: Arc<dyn Clock>,
    pub secrets: Arc<dyn SecretSource>,
    pub access_log: AccessLog,
    /// A client must send a request's headers within this time (slowloris).
    pub header_read_timeout: Duration,
    /// A client that sends nothing of its request body for this long gets
    /// 408 (the client-body timeout; it is not held against the upstream).
    pub body_read_timeout: Duration,
    /// Largest request head accepted (HTTP/1 buffer and HTTP/2 header list).
    pub max_header_bytes: usize,
    /// On shutdown, how long in-flight requests may take to finish.
    pub drain_timeout: Duration,
    /// Reload from this spec when it changes.
    pub watch: Option<watch::Source>,
    /// Extra trusted roots (PEM) for https upstreams, beside the system's.
    pub upstream_ca: Option<String>,
    /// Worker threads serving requests, each with its own listener
    /// (`SO_REUSEPORT`), event loop and upstream connection pool.
    pub workers: usize,
    /// Client connections one worker serves at once; past it, new ones wait
    /// in the listen queue until one closes (`--max-connections`).
    pub max_connections_per_worker: usize,
    /// An HTTP/2 connection with no open stream for this long is closed
    /// (GOAWAY). HTTP/1 connections idle between requests are closed by the
    /// header read timeout.
    pub h2_idle_timeout: Duration,
    /// An HTTP/2 connection is closed gracefully after this long, however
    /// busy: no client holds one forever.
    pub h2_max_age: Duration,
}

impl Options {
    /// Defaults for serving on `listen`: no admin API, system clock, secrets
    /// from the environment, access log on stdout.
    pub fn new(listen: SocketAddr) -> Options {
        Options {
            listen,
            listen_tls: None,
            admin: None,
            admin_fallback: false,
            admin_token: None,
            clock: Arc::new(SystemClock),
            secrets: Arc::new(EnvSecrets),
            access_log: AccessLog::Off,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
            drain_timeout: Duration::from_secs(30),
            watch: None,
            upstream_ca: None,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_connections_per_worker: DEFAULT_MAX_CONNECTIONS_PER_WORKER,
            h2_idle_timeout: Duration::from_secs(60),
            h2_max_age: Duration::from_secs(3600),
        }
    }
}

/// What every connection and the admin API share.
pub struct Shared {
    pub runtime: ArcSwap<Runtime>,
    history: Mutex<Vec<Arc<ValidIr>>>,
    apply_lock: Mutex<()>,
    /// What the last fleet apply recorded here (opaque JSON text, see
    /// [`Shared::apply_if`]); a config pushed without one leaves it as it
    /// was, so a hand edit shows as drift against it.
    manifest: Mutex<Option<Arc<str>>>,
    pub metrics: Metrics,
    pub tls: Arc<rustls::ClientConfig>,
    pub clock: Arc<dyn Clock>,
    pub secrets: Arc<dyn SecretSource>,
    pub access_log: AccessLog,
    pub started: Instant,
    pub admin_token: Option<String>,
    pub body_read_timeout: Duration,
}

impl Shared {
    fn build(&self, ir: ValidIr, previous: Option<&Runtime>) -> Result<Runtime, Vec<String>> {
        Runtime::build(
            ir,
            &BuildEnv {
                secrets: &*self.secrets,
                clock: self.clock.clone(),
                metrics: &self.metrics,
                tls: self.tls.clone(),
                previous,
            },
        )
    }

    /// Builds a runtime for `ir` and swaps it in; the one it replaces goes
    /// into the rollback history. A config equal to the running one (same
    /// hash) changes nothing. On error the running config stays.
    pub fn apply(&self, ir: ValidIr) -> Result<Arc<Runtime>, Vec<String>> {
        let _guard = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.apply_locked(ir, None)
    }

    /// Loads a config (compiling a spec, say) and applies it under the same
    /// lock as [`Shared::apply`]: loads never run side by side, so memory
    /// holds one config being parsed at a time however many arrive at once.
    /// `Err` is the loader's; `Ok` holds what applying it gave.
    pub fn load_and_apply<E>(
        &self,
        load: impl FnOnce() -> Result<ValidIr, E>,
    ) -> Result<Result<Arc<Runtime>, Vec<String>>, E> {
        let _guard = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        let ir = load()?;
        Ok(self.apply_locked(ir, None))
    }

    /// [`Shared::load_and_apply`] as a compare-and-swap: refused with
    /// [`Refused::Conflict`] when `expect` is given and the running config's
    /// hash is another; on success `manifest`, when given, is recorded
    /// under the same lock (also when the config was already running).
    pub fn load_and_apply_if<E>(
        &self,
        expect: Option<&str>,
        manifest: Option<Arc<str>>,
        load: impl FnOnce() -> Result<ValidIr, E>,
    ) -> Result<Result<Arc<Runtime>, Refused>, E> {
        let _guard = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(conflict) = self.conflict(expect) {
            return Ok(Err(conflict));
        }
        let ir = load()?;
        Ok(self.apply_locked(ir, manifest).map_err(Refused::Invalid))
    }

    /// [`Shared::rollback`] as a compare-and-swap, recording `manifest` (see
    /// [`Shared::load_and_apply_if`]).
    pub fn rollback_if(
        &self,
        expect: Option<&str>,
        manifest: Option<Arc<str>>,
    ) -> Result<Arc<Runtime>, Refused> {
        let _guard = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(conflict) = self.conflict(expect) {
            return Err(conflict);
        }
        self.rollback_locked(manifest).map_err(Refused::Invalid)
    }

    /// The manifest the last fleet apply recorded, if any.
    pub fn manifest(&self) -> Option<Arc<str>> {
        self.manifest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The running config with the manifest recorded with it: a pair no
    /// change is halfway through (a change swaps the config and records
    /// its manifest under the manifest's lock, taken here too).
    pub fn served(&self) -> (Arc<Runtime>, Option<Arc<str>>) {
        let manifest = self.manifest.lock().unwrap_or_else(|e| e.into_inner());
        (self.runtime.load_full(), manifest.clone())
    }

    fn conflict(&self, expect: Option<&str>) -> Option<Refused> {
        let running = &self.runtime.load().ir.hash;
        match expect {
            Some(e) if e != running.as_str() => Some(Refused::Conflict(running.clone())),
            _ => None,
        }
    }

    fn record(&self, manifest: Option<Arc<str>>) {
        if let Some(m) = manifest {
            *self.manifest.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
        }
    }

    /// Applies `ir`, recording `manifest` (when given) with it; also when
    /// `ir` already runs.
    fn apply_locked(
        &self,
        ir: ValidIr,
        manifest: Option<Arc<str>>,
    ) -> Result<Arc<Runtime>, Vec<String>> {
        let current = self.runtime.load_full();
        if current.ir.hash == ir.hash {
            self.record(manifest);
            return Ok(current);
        }
        let rt = self.swap_in(ir, &current, manifest)?;
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        h.push(current.ir.clone());
        if h.len() > HISTORY {
            h.remove(0);
        }
        Ok(rt)
    }

    /// Goes back to the config before the running one.
    pub fn rollback(&self) -> Result<Arc<Runtime>, Vec<String>> {
        let _guard = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.rollback_locked(None)
    }

    fn rollback_locked(&self, manifest: Option<Arc<str>>) -> Result<Arc<Runtime>, Vec<String>> {
        let current = self.runtime.load_full();
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let Some(previous) = h.last().cloned() else {
            return Err(vec!["there is no earlier config to roll back to".into()]);
        };
        let rt = self.swap_in((*previous).clone(), &current, manifest)?;
        h.pop();
        Ok(rt)
    }

    /// Builds a runtime for `ir` and serves it, recording `manifest` (when
    /// given) in the same step as [`Shared::served`] reads them.
    fn swap_in(
        &self,
        ir: ValidIr,
        current: &Arc<Runtime>,
        manifest: Option<Arc<str>>,
    ) -> Result<Arc<Runtime>, Vec<String>> {
        match self.build(ir, Some(current)) {
            Ok(rt) => {
                let rt = Arc::new(rt);
                {
                    let mut recorded = self.manifest.lock().unwrap_or_else(|e| e.into_inner());
                    self.runtime.store(rt.clone());
                    if let Some(m) = manifest {
                        *recorded = Some(m);
                    }
                }
                self.metrics
                    .reloads_ok
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                crate::say!(
                    "gatefold: serving config {} ({} routes)",
                    rt.ir.hash.short(),
                    rt.routes.len()
                );
                Ok(rt)
            }
            Err(e) => {
                self.metrics
                    .reloads_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// The number of earlier configs that rollback can reach.
    pub fn history_len(&self) -> usize {
        self.history.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Why a compare-and-swap config change was not made.
#[derive(Debug)]
pub enum Refused {
    /// The running config is not the one the caller expected; it holds
    /// the running config's hash.
    Conflict(ContentHash),
    /// The config could not be built (the old one keeps serving).
    Invalid(Vec<String>),
}

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    listen_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    stop: signal::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

impl Gateway {
    /// Loads `ir`, binds the listeners and starts serving. Fails without
    /// serving anything when the config cannot be loaded (a missing secret),
    /// an address cannot be bound, or the admin API would be exposed beyond
    /// loopback without a token.
    pub async fn start(ir: ValidIr, opts: Options) -> Result<Gateway, String> {
        if let Some(admin) = opts.admin {
            if !is_loopback(&admin) && opts.admin_token.is_none() {
                return Err(format!(
                    "the admin API on {admin} is reachable beyond this machine: set GATEFOLD_ADMIN_TOKEN to a bearer token, or bind it to 127.0.0.1"
                ));
            }
        }
        let metrics = Metrics::new(opts.workers.max(1));
        let tls = upstream::tls::client_config(opts.upstream_ca.as_deref())?;
        let first = Runtime::build(
            ir,
            &BuildEnv {
                secrets: &*opts.secrets,
                clock: opts.clock.clone(),
                metrics: &metrics,
                tls: tls.clone(),
                previous: None,
            },
        )
        .map_err(|e| format!("the config cannot be loaded:\n  {}", e.join("\n  ")))?;
        // One listener per worker on the same address; the kernel spreads
        // connections over them.
        let listen_addr =
            claim(opts.listen).map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
        let mut listeners = Vec::new();
        for _ in 0..opts.workers.max(1) {
            listeners.push(
                bind(listen_addr).map_err(|e| format!("cannot listen on {listen_addr}: {e}"))?,
            );
        }
        let tls_addr = match opts.listen_tls {
            Some(a) => Some(claim(a).map_err(|e| format!("cannot listen on {a} (tls): {e}"))?),
            None => None,
        };
        let mut tls_listeners = Vec::new();
        if let Some(a) = tls_addr {
            for _ in 0..opts.workers.max(1) {
                tls_listeners.push(Some(
                    bind(a).map_err(|e| format!("cannot listen on {a} (tls): {e}"))?,
                ));
            }
        }
        tls_listeners.resize_with(opts.workers.max(1), || None);
        let admin_listener = match opts.admin {
            Some(a) => Some(bind_admin(a, opts.admin_fallback).await?),
            None => None,
        };
        let admin_addr = match &admin_listener {
            Some(l) => Some(l.local_addr().map_err(|e| e.to_string())?),
            None => None,
        };
        let shared = Arc::new(Shared {
            runtime: ArcSwap::from_pointee(first),
            history: Mutex::new(Vec::new()),
            apply_lock: Mutex::new(()),
            manifest: Mutex::new(None),
            metrics,
            tls,
            clock: opts.clock.clone(),
            secrets: opts.secrets.clone(),
            access_log: opts.access_log.clone(),
            started: Instant::now(),
            // Pasted tokens often come with a newline.
            admin_token: opts
                .admin_token
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string),
            body_read_timeout: opts.body_read_timeout,
        });
        let (stop, stopped) = signal::channel(false);
        let settings = ConnSettings {
            header_read_timeout: opts.header_read_timeout,
            max_header_bytes: opts.max_header_bytes,
            max_connections: opts.max_connections_per_worker.max(1),
            h2: conn::Limits {
                idle: Some(opts.h2_idle_timeout),
                max_age: Some(opts.h2_max_age),
            },
        };
        let mut tasks = Vec::new();
        for (n, (listener, tls_listener)) in listeners.into_iter().zip(tls_listeners).enumerate() {
            let (shared, stopped) = (shared.clone(), stopped.clone());
            let drain = opts.drain_timeout;
            let (done, finished) = tokio::sync::oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("gatefold-worker-{n}"))
                .spawn(move || {
                    metrics::set_worker(n);
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a worker runtime");
                    rt.block_on(async move {
                        // This worker's per-request deadlines.
                        let sweeper = deadline::start_sweeper();
                        let tls = async {
                            match tls_listener.map(TcpListener::from_std) {
                                Some(Ok(l)) => {
                                    serve(l, shared.clone(), settings, stopped.clone(), drain, true)
                                        .await
                                }
                                Some(Err(e)) => {
                                    crate::say!("gatefold: worker {n} cannot listen (tls): {e}")
                                }
                                None => {}
                            }
                        };
                        let plain = async {
                            match TcpListener::from_std(listener) {
                                Ok(l) => {
                                    serve(
                                        l,
                                        shared.clone(),
                                        settings,
                                        stopped.clone(),
                                        drain,
                                        false,
                                    )
                                    .await
                                }
                                Err(e) => crate::say!("gatefold: worker {n} cannot listen: {e}"),
                            }
                        };
                        tokio::join!(plain, tls);
                        sweeper.abort();
                    });
                    let _ = done.send(());
                })
                .map_err(|e| format!("cannot start a worker thread: {e}"))?;
            tasks.push(tokio::spawn(async move {
                let _ = finished.await;
            }));
        }
        if let Some(l) = admin_listener {
            tasks.push(tokio::spawn(admin::serve(
                l,
                shared.clone(),
                stopped.clone(),
            )));
        }
        if let Some(source) = opts.watch {
            tasks.push(tokio::spawn(watch::run(source, shared.clone(), stopped)));
        }
        Ok(Gateway {
            shared,
            listen_addr,
            tls_addr,
            admin_addr,
            stop,
            tasks,
        })
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// Where the TLS listener serves, when there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Swaps in a new config (as `PUT /config` does).
    pub fn apply(&self, ir: ValidIr) -> Result<(), Vec<String>> {
        self.shared.apply(ir).map(|_| ())
    }

    /// Stops accepting, lets in-flight requests finish (up to the drain
    /// timeout), then returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The admin API's listener on `addr`, or with `fallback`, when `addr` is
/// taken, on a free port of the same address.
async fn bind_admin(addr: SocketAddr, fallback: bool) -> Result<TcpListener, String> {
    match TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        Err(e) if fallback && e.kind() == std::io::ErrorKind::AddrInUse => {
            let free = SocketAddr::new(addr.ip(), 0);
            let l = TcpListener::bind(free)
                .await
                .map_err(|e| format!("cannot listen on {free} (admin): {e}"))?;
            let got = l.local_addr().map_err(|e| e.to_string())?;
            crate::say!(
                "gatefold: {addr} (the admin API's default) is taken; serving the admin API on {got} instead (choose with --admin)"
            );
            Ok(l)
        }
        Err(e) => Err(format!(
            "cannot listen on {addr} (admin): {e}{}",
            if e.kind() == std::io::ErrorKind::AddrInUse {
                "; another process serves it: pick a free address with --admin"
            } else {
                ""
            }
        )),
    }
}

/// Checks that no one serves `addr` yet (and picks the port for port 0): a
/// plain bind fails where another process listens, whereas `SO_REUSEPORT`
/// alone would let a second gateway silently share the port.
fn claim(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.local_addr()
}

/// A listening socket with `SO_REUSEPORT`, handed to a worker thread.
fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(4096)?.into_std()
}

#[derive(Clone, Copy)]
struct ConnSettings {
    header_read_timeout: Duration,
    max_header_bytes: usize,
    max_connections: usize,
    h2: conn::Limits,
}

impl ConnSettings {
    /// The HTTP/2 server every listener (plain and TLS) serves with.
    fn h2_builder(&self) -> hyper::server::conn::http2::Builder<TokioExecutor> {
        let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .max_header_list_size(self.max_header_bytes as u32)
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        b
    }

    /// The HTTP/1 server every listener (plain and TLS) serves with.
    fn h1_builder(&self) -> hyper::server::conn::http1::Builder {
        let mut b = hyper::server::conn::http1::Builder::new();
        // The header read timeout on the worker's deadlines: one per
        // request, started as each head is awaited (`deadline` says why).
        b.timer(deadline::WorkerTimer)
            .header_read_timeout(self.header_read_timeout)
            // One buffer per write instead of hyper's queue for `writev`:
            // fewer instructions per response (the upstream client does the
            // same; together 800 per request, bench/instructions.sh), and
            // what rustls prefers on the TLS listener.
            .writev(false)
            .max_buf_size(self.max_header_bytes.max(8192));
        b
    }
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    settings: ConnSettings,
    mut stopped: signal::Receiver<bool>,
    drain: Duration,
    tls: bool,
) {
    // A permit per open connection: at the cap, the loop stops accepting and
    // new connections wait in the kernel's listen queue. On shutdown, taking
    // every permit back means every connection has finished.
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let flusher = shared.access_log.enabled().then(|| {
        let log = shared.access_log.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(access_log::FLUSH_EVERY).await;
                log.flush();
            }
        })
    });
    let mut backoff = conn::Backoff::new();
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p,
            _ = stopped.wait_for(|s| *s) => break,
        };
        let Ok(permit) = permit else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    backoff.failed("requests", &e).await;
                    continue;
                }
            },
            _ = stopped.wait_for(|s| *s) => break,
        };
        backoff.reset();
        let _ = stream.set_nodelay(true);
        let (shared, stopped) = (shared.clone(), stopped.clone());
        // Boxed: the connection's future is about 10 KB, and tokio moves a
        // spawned future by value several times (into the task, and each
        // time the task's stage changes): 8 copies, 85,000 instructions of
        // `memcpy` per connection, over half of what a one-request
        // connection cost. A box is moved as a pointer.
        tokio::spawn(Box::pin(async move {
            if tls {
                tls_listener::serve_connection(stream, peer, shared, settings, stopped).await;
            } else {
                serve_connection(stream, peer, shared, settings, stopped).await;
            }
            drop(permit);
        }));
    }
    drop(listener);
    let all = settings.max_connections.try_into().unwrap_or(u32::MAX);
    tokio::select! {
        _ = slots.acquire_many(all) => {}
        _ = tokio::time::sleep(drain) => {
            crate::say!("gatefold: drain timeout; closing the connections left");
        }
    }
    if let Some(f) = flusher {
        f.abort();
    }
    shared.access_log.flush();
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads enough of a connection to tell HTTP/2 prior knowledge from
/// HTTP/1, under the header read timeout (hyper's own HTTP/1 timeout starts
/// only once it owns the connection).
async fn sniff(stream: &mut TcpStream, limit: Duration) -> Option<(bool, Bytes)> {
    let mut buf = vec![0u8; H2_PREFACE.len()];
    let mut n = 0;
    let read = async {
        loop {
            let got = stream.read(&mut buf[n..]).await.ok()?;
            if got == 0 {
                return None;
            }
            n += got;
            if buf[..n] != H2_PREFACE[..n] {
                return Some(false);
            }
            if n == H2_PREFACE.len() {
                return Some(true);
            }
        }
    };
    let h2 = tokio::time::timeout(limit, read).await.ok()??;
    buf.truncate(n);
    Some((h2, Bytes::from(buf)))
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    settings: ConnSettings,
    stopped: signal::Receiver<bool>,
) {
    let Some((h2, prefix)) = sniff(&mut stream, settings.header_read_timeout).await else {
        return;
    };
    let io = TokioIo::new(rewind::Rewind::new(stream, prefix));
    // Open streams are counted for HTTP/2's idle limit only.
    let activity = h2.then(conn::Activity::new);
    let streams = activity.clone();
    let svc = service_fn(move |req| {
        let shared = shared.clone();
        let busy = streams.as_ref().map(conn::Activity::begin);
        async move {
            // `redirect-http`: every plain request goes to https.
            if let Some(r) = tls_listener::redirect_http(&shared, &req) {
                return Ok::<_, Infallible>(r);
            }
            let resp = service::handle(shared, peer, req).await;
            Ok::<_, Infallible>(match busy {
                Some(busy) => resp.map(|b| conn::hold(b, busy)),
                None => resp,
            })
        }
    });
    if h2 {
        let c = settings.h2_builder().serve_connection(io, svc);
        drive!(c, conn::closing(activity.as_ref(), settings.h2, stopped));
    } else {
        let c = settings.h1_builder().serve_connection(io, svc);
        // Idle keep-alive connections are cut by the header read timeout.
        drive!(c, conn::closing(None, conn::Limits::NONE, stopped));
    }
}

/// Runs a gateway until SIGTERM or Ctrl-C, then drains (the `gatefold serve`
/// entry point; builds its own tokio runtime).
pub fn run(ir: ValidIr, opts: Options) -> Result<(), String> {
    // The control plane (admin API, health checks, --watch); requests are
    // served by the worker threads `Gateway::start` makes.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let gw = Gateway::start(ir, opts).await?;
        let rt = gw.shared.runtime.load();
        crate::say!(
            "gatefold: serving {} routes (config {}) on http://{}",
            rt.routes.len(),
            rt.ir.hash.short(),
            gw.listen_addr
        );
        drop(rt);
        if let Some(a) = gw.tls_addr {
            crate::say!("gatefold: serving TLS on https://{a}");
        }
        if let Some(a) = gw.admin_addr {
            crate::say!("gatefold: admin API on http://{a}");
        }
        wait_for_stop().await;
        crate::say!("gatefold: stopping; draining in-flight requests");
        gw.shutdown().await;
        Ok(())
    })
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
