//! The launcher: a compiled [`Output`] of any runnable target, materialized
//! into a work directory and run on loopback, reloaded with a new output,
//! stopped with nothing left behind. `gatefold up` and the conformance
//! suite start every target through it.
//!
//! Per target:
//!
//! - **reference**: the reference gateway runs *in this process* (its own
//!   worker threads and a small control-plane runtime), on the IR the output
//!   holds. In-process rather than a `gatefold serve` child: the conformance
//!   suite needs no built `gatefold` binary, starts in milliseconds, and
//!   stopping cannot leave a process behind. Reload swaps the config as
//!   `PUT /config` does (a config that cannot load keeps the old one).
//! - **nginx**: the work directory is the nginx prefix; the manifest's entry
//!   (`conf/nginx.conf`) is started with `nginx -p WORK`. Generated Lua is
//!   checked with `luajit -bl` first (`nginx -t` does not read it). Reload:
//!   the new output is laid out and checked (`luajit`, `nginx -t`) in a
//!   staging prefix `WORK/.next`, then copied over the live prefix and
//!   applied by `nginx -t` + SIGHUP; when a check fails nothing in the live
//!   prefix changes and the old configuration keeps serving.
//! - **envoy**: the entry is the bootstrap; `dynamic/lds.json` and
//!   `dynamic/cds.json`, when the output has them, are the watched dynamic
//!   resources. Reload renames new LDS/CDS files into the watched directory
//!   (checked with `envoy --mode validate` first). An output whose bootstrap
//!   changed (a static-bootstrap-only output, say) cannot be hot-reloaded:
//!   it is validated, then Envoy is restarted on it.
//!
//! - **cloudflare**: the output (`worker.js`, `config.capnp`) is written to
//!   the work directory and served by `workerd serve config.capnp`, the
//!   Worker's secret bindings taken from [`Launch::env`] and this
//!   process's environment. Reload: the new output is written and workerd
//!   restarted on it (workerd has no check-only mode; a Worker that does
//!   not load fails the start, and the old output is not restored).
//!
//! Addresses: nginx, Envoy and workerd listen where their output says, so the caller
//! compiles with [`crate::launch::Launch::listen`] (a free port from
//! [`free_addr`]) in the target's `Options` and passes the same address
//! here, where it is awaited. The reference gateway is told the address.
//!
//! Secrets: [`Launch::env`] is added to the runtime's environment (nginx
//! and Envoy children) or given to the in-process gateway as its secret
//! source, in front of this process's own environment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gatefold_compiler::ir::{TargetKind, ValidIr};
use gatefold_compiler::target::{Output, MANIFEST_FILE};
use gatefold_target_reference::gateway::{self, access_log::AccessLog, secrets::SecretSource};

use crate::{envoy, Result};
use crate::{
    io_err, Envoy, EnvoyConfig, EnvoyInstance, Error, Luajit, Nginx, NginxInstance, Workerd,
    WorkerdInstance,
};

/// How long stopping waits for a graceful exit before killing.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The targets the launcher can run.
pub const RUNNABLE: [TargetKind; 4] = [
    TargetKind::Reference,
    TargetKind::Nginx,
    TargetKind::Envoy,
    TargetKind::Cloudflare,
];

/// What to launch and where.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The target the output was compiled for.
    pub target: TargetKind,
    /// The work directory (created; files of the output are written there).
    pub work: PathBuf,
    /// The plain listener the output was compiled for (`Options::listen`).
    pub listen: SocketAddr,
    /// The TLS listener, when the spec has `gateway.tls`
    /// (`Options::listen_tls`).
    pub listen_tls: Option<SocketAddr>,
    /// Secrets and other variables the runtime is given.
    pub env: BTreeMap<String, String>,
    /// Files written from secrets into the work directory (mode 0600)
    /// before the runtime starts or reloads: relative path -> the variable
    /// holding the contents (looked up in `env`, then this process's
    /// environment). See [`secret_files`].
    pub secret_files: BTreeMap<String, String>,
    /// Reference gateway: write its JSON access log to stdout.
    pub access_log: bool,
    /// Reference gateway: worker threads (`None`: one per core).
    pub workers: Option<usize>,
}

impl Launch {
    /// A launch of `target` in `work` on `listen`, no TLS, no extra
    /// variables, no access log.
    pub fn new(target: TargetKind, work: impl Into<PathBuf>, listen: SocketAddr) -> Launch {
        Launch {
            target,
            work: work.into(),
            listen,
            listen_tls: None,
            env: BTreeMap::new(),
            secret_files: BTreeMap::new(),
            access_log: false,
            workers: None,
        }
    }
}

/// A loopback address with a port that was free a moment ago: for
/// compiling an output that must name its port before the runtime binds
/// it. The port comes from below the kernel's ephemeral range (where
/// port 0 binds and outgoing connections take their local port), so no
/// other process's connection can take it in the meantime; only one that
/// names the same port itself could. Port 0 when that range is too small.
pub fn free_addr() -> Result<SocketAddr> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    const FLOOR: u16 = 10_000;
    if low > FLOOR + 1_000 {
        let span = u64::from(low - FLOOR);
        for attempt in 0..64u64 {
            let port = FLOOR + (scatter(attempt) % span) as u16;
            if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                return l.local_addr().map_err(io_err("reading a bound address"));
            }
        }
    }
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(io_err("binding 127.0.0.1:0"))?;
    listener
        .local_addr()
        .map_err(io_err("reading a bound address"))
}

/// A number that differs between calls, threads and processes (a port
/// pick, not a secret): the standard library's randomly keyed hasher.
fn scatter(attempt: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u64(attempt);
    h.write_u32(std::process::id());
    h.finish()
}

/// The files a target's output expects its runner to write from secrets
/// (private keys are never compiled in): nginx reads a TLS private key that
/// the spec keeps in an environment variable from `keys/cert-N.key` under
/// its prefix (N: the certificate's place in `gateway.tls.certificates`;
/// the nginx target's `tls_key_file`). Other targets read their secrets
/// from the environment themselves.
pub fn secret_files(target: TargetKind, ir: &ValidIr) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    if target == TargetKind::Nginx {
        let certificates = ir.gateway.tls.iter().flat_map(|t| &t.certificates);
        for (i, c) in certificates.enumerate() {
            if let gatefold_compiler::ir::tls::TlsKey::Env(var) = &c.key {
                files.insert(format!("keys/cert-{i}.key"), var.clone());
            }
        }
    }
    files
}

/// Writes `launch.secret_files` under `dir`, each readable by its owner
/// only; a variable that is unset or empty is an error naming it.
fn write_secret_files(dir: &Path, launch: &Launch) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    for (rel, var) in &launch.secret_files {
        let value = LaunchSecrets(launch.env.clone())
            .get(var)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::Rejected {
                runtime: "launcher",
                message: format!(
                    "the secret variable `{var}` (for {rel}) is unset or empty: set it before starting"
                ),
            })?;
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io_err(format!("creating {}", parent.display())))?;
        }
        let _ = std::fs::remove_file(&path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(format!("creating {}", path.display())))?;
        file.write_all(value.as_bytes())
            .map_err(io_err(format!("writing {}", path.display())))?;
    }
    Ok(())
}

/// A running target.
pub struct Launched {
    launch: Launch,
    running: Running,
    /// The files of the running output (paths relative to the work dir).
    files: Vec<String>,
}

enum Running {
    Reference(Box<InProcess>),
    Nginx(NginxInstance),
    Envoy(EnvoyInstance),
    Workerd(WorkerdInstance),
    /// Between stopping Envoy and starting it on a new bootstrap (left so
    /// only when that start fails).
    Stopped,
}

/// The reference gateway and the runtime its control plane runs on.
struct InProcess {
    gateway: Option<gateway::Gateway>,
    runtime: tokio::runtime::Runtime,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(gw) = self.gateway.take() {
            self.runtime.block_on(gw.shutdown());
        }
    }
}

/// `env` first, then the process environment.
struct LaunchSecrets(BTreeMap<String, String>);

impl SecretSource for LaunchSecrets {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    }
}

impl Launched {
    /// Materializes `output` into `launch.work` and starts it; returns once
    /// it accepts connections on its listeners.
    pub fn start(launch: Launch, output: &Output) -> Result<Launched> {
        if output.manifest.target != launch.target {
            return Err(Error::Rejected {
                runtime: "launcher",
                message: format!(
                    "the output is for target `{}`, not `{}`",
                    output.manifest.target, launch.target
                ),
            });
        }
        let work = &launch.work;
        std::fs::create_dir_all(work).map_err(io_err(format!("creating {}", work.display())))?;
        let ready_on: Vec<SocketAddr> = std::iter::once(launch.listen)
            .chain(launch.listen_tls)
            .collect();
        let running = match launch.target {
            TargetKind::Reference => {
                materialize(work, output, None)?;
                Running::Reference(Box::new(start_reference(&launch, output)?))
            }
            TargetKind::Nginx => {
                let entry = materialize(work, output, Some(nginx_entry()))?;
                write_secret_files(work, &launch)?;
                check_lua(work, output)?;
                let nginx = Nginx::locate()?.with_env(launch.env.clone());
                Running::Nginx(nginx.start(work, &entry, &ready_on)?)
            }
            TargetKind::Envoy => {
                let config = envoy_config(output)?;
                materialize(work, output, Some(envoy_managed()))?;
                write_secret_files(work, &launch)?;
                let envoy = Envoy::locate()?.with_env(launch.env.clone());
                Running::Envoy(envoy.start(work, &config, &ready_on)?)
            }
            TargetKind::Cloudflare => {
                materialize(work, output, None)?;
                let workerd = Workerd::locate()?.with_env(secret_env(&launch, output));
                Running::Workerd(workerd.start(work, &ready_on)?)
            }
            other => return Err(not_runnable(other)),
        };
        Ok(Launched {
            files: file_list(output),
            launch,
            running,
        })
    }

    /// Replaces the secret files the next [`Launched::reload`] writes (a
    /// new output may have other ones: see [`secret_files`]).
    pub fn set_secret_files(&mut self, files: BTreeMap<String, String>) {
        self.launch.secret_files = files;
    }

    /// The target it runs.
    pub fn target(&self) -> TargetKind {
        self.launch.target
    }

    /// Where it serves plain HTTP.
    pub fn listen(&self) -> SocketAddr {
        match &self.running {
            Running::Reference(p) => p
                .gateway
                .as_ref()
                .map_or(self.launch.listen, |g| g.listen_addr()),
            _ => self.launch.listen,
        }
    }

    /// Where it serves TLS, if it does.
    pub fn listen_tls(&self) -> Option<SocketAddr> {
        match &self.running {
            Running::Reference(p) => p.gateway.as_ref().and_then(|g| g.tls_addr()),
            _ => self.launch.listen_tls,
        }
    }

    /// The work directory.
    pub fn work_dir(&self) -> &Path {
        &self.launch.work
    }

    /// Where its logs are, in words: files, or where the in-process
    /// gateway writes.
    pub fn logs(&self) -> Vec<String> {
        match &self.running {
            Running::Reference(_) => vec![if self.launch.access_log {
                "access log on stdout (JSON lines), errors on stderr".to_string()
            } else {
                "errors on stderr (no access log)".to_string()
            }],
            Running::Nginx(n) => vec![
                n.error_log().display().to_string(),
                n.prefix().join("logs/access.log").display().to_string(),
                n.stderr_log().display().to_string(),
            ],
            Running::Envoy(e) => vec![e.log().display().to_string()],
            Running::Workerd(w) => vec![w.log().display().to_string()],
            Running::Stopped => Vec::new(),
        }
    }

    /// The runtime's process IDs (master first); empty for the in-process
    /// reference gateway.
    pub fn pids(&self) -> Vec<u32> {
        match &self.running {
            Running::Reference(_) => Vec::new(),
            Running::Nginx(n) => std::iter::once(n.pid()).chain(n.workers()).collect(),
            Running::Envoy(e) => vec![e.pid()],
            Running::Workerd(w) => vec![w.pid()],
            Running::Stopped => Vec::new(),
        }
    }

    /// Replaces the running configuration with `output`. The new one is
    /// checked first; when it fails (or the runtime refuses it) the error
    /// says why and the old configuration keeps serving.
    pub fn reload(&mut self, output: &Output) -> Result<()> {
        if output.manifest.target != self.launch.target {
            return Err(not_runnable(output.manifest.target));
        }
        let work = self.launch.work.clone();
        match &mut self.running {
            Running::Reference(p) => {
                let ir = reference_ir(output)?;
                let gw = p.gateway.as_ref().expect("a running gateway");
                gw.apply(ir).map_err(|errors| Error::Rejected {
                    runtime: "reference",
                    message: errors.join("\n"),
                })?;
                materialize(&work, output, None)?;
            }
            Running::Nginx(instance) => {
                let staging = work.join(".next");
                let _ = std::fs::remove_dir_all(&staging);
                let entry = materialize(&staging, output, Some(nginx_entry()))?;
                write_secret_files(&staging, &self.launch)?;
                check_lua(&staging, output)?;
                Nginx::locate()?.check(&staging, &entry)?;
                let _ = std::fs::remove_dir_all(&staging);
                remove_stale(&work, &self.files, output);
                materialize(&work, output, Some(nginx_entry()))?;
                write_secret_files(&work, &self.launch)?;
                instance.reload(&entry)?;
            }
            Running::Workerd(_) => {
                let ready_on: Vec<SocketAddr> = std::iter::once(self.launch.listen)
                    .chain(self.launch.listen_tls)
                    .collect();
                let workerd = Workerd::locate()?.with_env(secret_env(&self.launch, output));
                if let Running::Workerd(old) =
                    std::mem::replace(&mut self.running, Running::Stopped)
                {
                    let _ = old.stop(STOP_GRACE);
                }
                remove_stale(&work, &self.files, output);
                materialize(&work, output, None)?;
                self.running = Running::Workerd(workerd.start(&work, &ready_on)?);
            }
            Running::Stopped => {
                return Err(Error::Failed {
                    runtime: "envoy",
                    what: "not running (its last restart failed)".into(),
                    log: None,
                    tail: String::new(),
                })
            }
            Running::Envoy(instance) => {
                let config = envoy_config(output)?;
                let bootstrap = std::fs::read_to_string(work.join("bootstrap.yaml"))
                    .map_err(io_err("reading the running bootstrap"))?;
                if bootstrap == config.bootstrap {
                    write_secret_files(&work, &self.launch)?;
                    instance.reload(config.lds.as_deref(), config.cds.as_deref())?;
                    remove_stale(&work, &self.files, output);
                    materialize(&work, output, Some(envoy_managed()))?;
                } else {
                    // A new bootstrap needs a new process: validate before
                    // stopping the old one, so a bad one changes nothing.
                    let envoy = Envoy::locate()?.with_env(self.launch.env.clone());
                    envoy.check(&work, &config)?;
                    let ready_on: Vec<SocketAddr> = std::iter::once(self.launch.listen)
                        .chain(self.launch.listen_tls)
                        .collect();
                    if let Running::Envoy(old) =
                        std::mem::replace(&mut self.running, Running::Stopped)
                    {
                        let _ = old.stop(STOP_GRACE);
                    }
                    remove_stale(&work, &self.files, output);
                    materialize(&work, output, Some(envoy_managed()))?;
                    write_secret_files(&work, &self.launch)?;
                    self.running = Running::Envoy(envoy.start(&work, &config, &ready_on)?);
                }
            }
        }
        self.files = file_list(output);
        Ok(())
    }

    /// Stops the runtime (gracefully, then by force) and every process it
    /// started.
    pub fn stop(self) -> Result<()> {
        let Launched { running, .. } = self;
        match running {
            Running::Reference(p) => {
                drop(p);
                Ok(())
            }
            Running::Nginx(n) => n.stop(STOP_GRACE),
            Running::Envoy(e) => e.stop(STOP_GRACE),
            Running::Workerd(w) => w.stop(STOP_GRACE),
            Running::Stopped => Ok(()),
        }
    }
}

impl std::fmt::Debug for Launched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launched")
            .field("target", &self.launch.target)
            .field("listen", &self.listen())
            .field("work", &self.launch.work)
            .finish()
    }
}

fn not_runnable(target: TargetKind) -> Error {
    Error::Rejected {
        runtime: "launcher",
        message: format!(
            "target `{target}` cannot be run here: runnable targets are {}",
            RUNNABLE.map(TargetKind::as_str).join(", ")
        ),
    }
}

/// The Worker's secret bindings for workerd: each secret the manifest
/// names, from [`Launch::env`], else this process's environment (workerd
/// gets only these, so a binding is never an unrelated variable).
fn secret_env(launch: &Launch, output: &Output) -> BTreeMap<String, String> {
    let source = LaunchSecrets(launch.env.clone());
    let mut env = launch.env.clone();
    let names = output
        .manifest
        .secrets
        .iter()
        .map(|s| {
            let gatefold_compiler::ir::Secret::Env(name) = s;
            name
        })
        .chain(&output.manifest.public_key_env);
    for name in names {
        if let Some(v) = source.get(name) {
            env.insert(name.clone(), v);
        }
    }
    env
}

/// The paths an output writes, with its manifest.
fn file_list(output: &Output) -> Vec<String> {
    output
        .files
        .iter()
        .map(|f| f.path.to_string())
        .chain(std::iter::once(MANIFEST_FILE.to_string()))
        .collect()
}

/// What [`materialize`] leaves for the runtime's own code to write.
struct Managed {
    /// Files written by the runtime module (checked first), not here.
    skip: Vec<&'static str>,
    /// The file whose text is returned.
    entry: &'static str,
}

fn nginx_entry() -> Managed {
    Managed {
        skip: vec![crate::nginx::CONF],
        entry: crate::nginx::CONF,
    }
}

fn envoy_managed() -> Managed {
    Managed {
        skip: vec!["bootstrap.yaml", envoy::LDS_PATH, envoy::CDS_PATH],
        entry: "bootstrap.yaml",
    }
}

/// Writes the output's files and manifest under `dir`, except those
/// `managed` leaves to the runtime; returns the text of its entry.
fn materialize(dir: &Path, output: &Output, managed: Option<Managed>) -> Result<String> {
    let mut entry = String::new();
    for file in &output.files {
        let rel = file.path.as_str();
        if let Some(m) = &managed {
            if rel == m.entry {
                entry = String::from_utf8(file.bytes.clone()).map_err(|_| Error::Rejected {
                    runtime: "launcher",
                    message: format!("{rel} is not UTF-8 text"),
                })?;
            }
            if m.skip.contains(&rel) {
                continue;
            }
        }
        write(&dir.join(rel), &file.bytes)?;
    }
    if let Some(m) = &managed {
        if !output.files.iter().any(|f| f.path.as_str() == m.entry) {
            return Err(Error::Rejected {
                runtime: "launcher",
                message: format!(
                    "the {} output has no `{}` (files: {})",
                    output.manifest.target,
                    m.entry,
                    file_list(output).join(", ")
                ),
            });
        }
    }
    let manifest = serde_json::to_string_pretty(&output.manifest).expect("a manifest is JSON");
    write(&dir.join(MANIFEST_FILE), manifest.as_bytes())?;
    Ok(entry)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(io_err(format!("creating {}", parent.display())))?;
    }
    std::fs::write(path, bytes).map_err(io_err(format!("writing {}", path.display())))
}

/// Removes files of the previous output that the new one no longer has.
fn remove_stale(dir: &Path, previous: &[String], output: &Output) {
    let now = file_list(output);
    for old in previous.iter().filter(|f| !now.contains(f)) {
        let _ = std::fs::remove_file(dir.join(old));
    }
}

/// `luajit -bl` over every `.lua` file of the output, as laid out in `dir`.
fn check_lua(dir: &Path, output: &Output) -> Result<()> {
    let lua: Vec<&str> = output
        .files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| p.ends_with(".lua"))
        .collect();
    if lua.is_empty() {
        return Ok(());
    }
    let luajit = Luajit::locate()?;
    for file in lua {
        luajit.check(&dir.join(file))?;
    }
    Ok(())
}

/// The Envoy configuration an output holds.
fn envoy_config(output: &Output) -> Result<EnvoyConfig> {
    let text = |path: &str| -> Result<Option<String>> {
        output
            .files
            .iter()
            .find(|f| f.path.as_str() == path)
            .map(|f| {
                String::from_utf8(f.bytes.clone()).map_err(|_| Error::Rejected {
                    runtime: "launcher",
                    message: format!("{path} is not UTF-8 text"),
                })
            })
            .transpose()
    };
    let entry = output.manifest.entry.as_str();
    let bootstrap = text(entry)?.ok_or_else(|| Error::Rejected {
        runtime: "launcher",
        message: format!("the envoy output has no entry file `{entry}`"),
    })?;
    Ok(EnvoyConfig {
        bootstrap,
        lds: text(envoy::LDS_PATH)?,
        cds: text(envoy::CDS_PATH)?,
    })
}

/// The IR a reference output holds.
fn reference_ir(output: &Output) -> Result<ValidIr> {
    let file = output
        .files
        .iter()
        .find(|f| f.path.as_str() == gatefold_target_reference::IR_FILE)
        .ok_or_else(|| Error::Rejected {
            runtime: "reference",
            message: format!("the output has no {}", gatefold_target_reference::IR_FILE),
        })?;
    let text = std::str::from_utf8(&file.bytes).map_err(|_| Error::Rejected {
        runtime: "reference",
        message: "the IR is not UTF-8".into(),
    })?;
    ValidIr::from_json(text).map_err(|message| Error::Rejected {
        runtime: "reference",
        message,
    })
}

fn start_reference(launch: &Launch, output: &Output) -> Result<InProcess> {
    let ir = reference_ir(output)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("gatefold-launch")
        .enable_all()
        .build()
        .map_err(io_err("building the control-plane runtime"))?;
    let mut opts = gateway::Options::new(launch.listen);
    opts.listen_tls = launch.listen_tls;
    opts.secrets = Arc::new(LaunchSecrets(launch.env.clone()));
    opts.drain_timeout = Duration::from_secs(5);
    if let Some(n) = launch.workers {
        opts.workers = n.max(1);
    }
    opts.access_log = if launch.access_log {
        AccessLog::stdout()
    } else {
        AccessLog::Off
    };
    let gw = runtime
        .block_on(gateway::Gateway::start(ir, opts))
        .map_err(|what| Error::Failed {
            runtime: "reference",
            what,
            log: None,
            tail: String::new(),
        })?;
    Ok(InProcess {
        gateway: Some(gw),
        runtime,
    })
}
