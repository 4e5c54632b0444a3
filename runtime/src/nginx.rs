//! nginx on a private prefix: `nginx -t`, start in the foreground, reload
//! by SIGHUP after a successful `-t`, graceful stop by SIGQUIT.
//!
//! The configuration is nginx's own text and must run the master in the
//! foreground (`daemon off;`). It should keep every path under the prefix
//! (`pid logs/nginx.pid;`, `error_log logs/error.log;`, every
//! `*_temp_path`), as `docs/runtimes.md` describes: nginx's compiled-in
//! defaults are shared system paths.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::locate::{locate, Wanted};
use crate::process::{children, listens_on, Group};
use crate::{io_err, poll_until, tail, Error, Result, READY_TIMEOUT};

const WANTED: Wanted = Wanted {
    name: "nginx",
    env: "GATEFOLD_NGINX",
    fixed: &["/usr/sbin/nginx"],
    install: "scripts/install-runtimes.sh (as root; or: apt-get install -y nginx libnginx-mod-http-lua libnginx-mod-http-ndk libnginx-mod-http-js luajit2)",
};

/// The main configuration's path, relative to the prefix.
pub const CONF: &str = "conf/nginx.conf";
/// Where a candidate configuration is written to be checked before it
/// replaces [`CONF`], relative to the prefix.
const CANDIDATE: &str = "conf/nginx.conf.candidate";
/// The file holding the `resolver` directive, relative to the prefix: a
/// configuration that resolves upstream host names per request includes
/// it (`include ../resolver.conf;`, the nginx target's `RESOLVER_FILE`),
/// and [`Nginx::check`] writes it from the machine's `/etc/resolv.conf`.
pub const RESOLVER_FILE: &str = "resolver.conf";
/// Where the machine's DNS servers are listed.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// An nginx binary.
#[derive(Debug, Clone)]
pub struct Nginx {
    binary: PathBuf,
    /// Variables added to the master's environment (secrets the
    /// configuration reads through `env` and `os.getenv`).
    env: BTreeMap<String, String>,
    /// The DNS servers written to [`RESOLVER_FILE`] instead of
    /// `/etc/resolv.conf`'s (see [`Nginx::with_resolver`]).
    resolver: Option<Vec<SocketAddr>>,
}

impl Nginx {
    /// Finds nginx: `$GATEFOLD_NGINX`, the project's `.tools/bin/nginx`,
    /// `PATH`, then `/usr/sbin/nginx`. The error says how to install it.
    pub fn locate() -> Result<Nginx> {
        locate(&WANTED).map(Nginx::at)
    }

    /// The nginx binary at `binary`, unchecked.
    pub fn at(binary: impl Into<PathBuf>) -> Nginx {
        Nginx {
            binary: binary.into(),
            env: BTreeMap::new(),
            resolver: None,
        }
    }

    /// The same binary, asking `servers` (UDP, in this order) for the
    /// upstream host names a configuration resolves per request, instead
    /// of the DNS servers `/etc/resolv.conf` names.
    pub fn with_resolver(mut self, servers: Vec<SocketAddr>) -> Nginx {
        self.resolver = Some(servers);
        self
    }

    /// The same binary, started with `vars` added to its environment.
    pub fn with_env(mut self, vars: BTreeMap<String, String>) -> Nginx {
        self.env = vars;
        self
    }

    /// The binary's path.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Checks `conf` (the text of `nginx.conf`) with `nginx -t` on `prefix`,
    /// where files it includes must already be (relative includes resolve
    /// against `prefix/conf`). Creates `prefix/conf`, `prefix/logs` and
    /// `prefix/tmp` (for temp paths such as `tmp/proxy`).
    /// nginx does not check Lua inside `*_by_lua_block`: see
    /// [`crate::Luajit`].
    ///
    /// When `conf` includes [`RESOLVER_FILE`], it is written first from
    /// `/etc/resolv.conf` (an error says so when that names no DNS server).
    pub fn check(&self, prefix: &Path, conf: &str) -> Result<()> {
        lay_out(prefix)?;
        if includes_resolver(conf) {
            write_resolver(prefix, self.resolver.as_deref())?;
        }
        let candidate = prefix.join(CANDIDATE);
        std::fs::write(&candidate, conf)
            .map_err(io_err(format!("writing {}", candidate.display())))?;
        let result = self.test(prefix, CANDIDATE);
        let _ = std::fs::remove_file(&candidate);
        result
    }

    /// `nginx -t` on the configuration file at `conf` (relative to `prefix`).
    fn test(&self, prefix: &Path, conf: &str) -> Result<()> {
        let output = Command::new(&self.binary)
            .arg("-t")
            .arg("-q")
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(conf)
            .output()
            .map_err(io_err(format!("running {} -t", self.binary.display())))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::Rejected {
                runtime: "nginx",
                message: String::from_utf8_lossy(&output.stderr)
                    .trim_end()
                    .to_string(),
            })
        }
    }

    /// Checks `conf`, writes it as `prefix/conf/nginx.conf` and starts nginx
    /// on `prefix`; returns once the master listens on every address in
    /// `ready_on` and it accepts connections. The master's stderr goes to
    /// `prefix/logs/stderr.log`.
    pub fn start(
        &self,
        prefix: &Path,
        conf: &str,
        ready_on: &[SocketAddr],
    ) -> Result<NginxInstance> {
        if !runs_in_foreground(conf) {
            return Err(Error::Rejected {
                runtime: "nginx",
                message: "the configuration must contain `daemon off;` at its top level: \
                          gatefold runs the master in the foreground to stop it and its workers"
                    .into(),
            });
        }
        workers_can_reach(prefix, conf)?;
        self.check(prefix, conf)?;
        let live = prefix.join(CONF);
        std::fs::write(&live, conf).map_err(io_err(format!("writing {}", live.display())))?;
        let stderr_log = prefix.join("logs/stderr.log");
        let mut command = Command::new(&self.binary);
        command
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(CONF)
            .envs(&self.env);
        let group = Group::spawn(command, &stderr_log)?;
        let mut instance = NginxInstance {
            nginx: self.clone(),
            prefix: prefix.to_path_buf(),
            stderr_log,
            group,
        };
        let ready = poll_until(READY_TIMEOUT, || {
            if let Some(status) = instance.group.exited() {
                return Err(instance.failure(format!("exited while starting ({status})")));
            }
            let pid = instance.pid();
            Ok(ready_on
                .iter()
                .all(|addr| listens_on(pid, *addr) && crate::accepts(*addr)))
        })?;
        if !ready {
            return Err(instance.failure(format!(
                "not accepting on {ready_on:?} after {READY_TIMEOUT:?}"
            )));
        }
        Ok(instance)
    }
}

/// Creates the prefix's `conf/`, `logs/` and `tmp/` directories (nginx
/// makes only the last part of a `*_temp_path`: `tmp/proxy` needs `tmp/`).
fn lay_out(prefix: &Path) -> Result<()> {
    for dir in ["conf", "logs", "tmp"] {
        let path = prefix.join(dir);
        std::fs::create_dir_all(&path).map_err(io_err(format!("creating {}", path.display())))?;
    }
    Ok(())
}

/// Whether `conf` includes the prefix's [`RESOLVER_FILE`] (a line
/// `include ../resolver.conf;` outside comments).
pub fn includes_resolver(conf: &str) -> bool {
    let include = format!("../{RESOLVER_FILE};");
    conf.lines().any(|line| {
        let code = line.split('#').next().unwrap_or("");
        code.split_whitespace().collect::<Vec<_>>() == ["include", include.as_str()]
    })
}

/// The `resolver` directive for the DNS servers `resolv_conf` (the text of
/// an `/etc/resolv.conf`) lists, in its order; `None` when it lists none
/// nginx can use (an IPv6 address with a zone, `fe80::1%eth0`, is
/// skipped: nginx takes none). `ipv6=off`: names resolve to IPv4
/// addresses only, since nginx, unlike the system resolver, does not fall
/// back to another address of a name when one cannot be reached.
pub fn resolver_directive(resolv_conf: &str) -> Option<String> {
    let servers: Vec<String> = resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then_some(())?;
            match words.next()?.parse::<std::net::IpAddr>().ok()? {
                std::net::IpAddr::V4(a) => Some(a.to_string()),
                std::net::IpAddr::V6(a) => Some(format!("[{a}]")),
            }
        })
        .collect();
    directive(&servers)
}

/// `resolver SERVERS ipv6=off;`, or `None` without a server.
fn directive(servers: &[String]) -> Option<String> {
    (!servers.is_empty()).then(|| format!("resolver {} ipv6=off;\n", servers.join(" ")))
}

/// Writes `prefix/resolver.conf`: `servers`, else `GATEFOLD_DNS`'s
/// ([`crate::dns`]), else from `/etc/resolv.conf`.
fn write_resolver(prefix: &Path, servers: Option<&[SocketAddr]>) -> Result<()> {
    let directive = match servers {
        Some(servers) => directive(
            &servers
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>(),
        ),
        None => match crate::dns::from_env()? {
            Some(servers) => directive(
                &servers
                    .iter()
                    .map(SocketAddr::to_string)
                    .collect::<Vec<_>>(),
            ),
            None => resolver_directive(&std::fs::read_to_string(RESOLV_CONF).unwrap_or_default()),
        },
    };
    let directive = directive.ok_or_else(|| Error::Failed {
        runtime: "nginx",
        what: no_nameserver(RESOLV_CONF),
        log: None,
        tail: String::new(),
    })?;
    let path = prefix.join(RESOLVER_FILE);
    std::fs::write(&path, directive).map_err(io_err(format!("writing {}", path.display())))
}

/// What is wrong when the configuration resolves upstream host names per
/// request and `resolv_conf` (where it was read) names no DNS server.
pub fn no_nameserver(resolv_conf: &str) -> String {
    format!(
        "the configuration resolves upstream host names per request (it includes {RESOLVER_FILE}), \
         and {resolv_conf} names no DNS server to ask: add a `nameserver ADDRESS` line there, \
         or give the upstream targets as IP addresses"
    )
}

/// Started as root, nginx runs its workers as `nobody` unless the
/// configuration names a `user`; they then read the prefix's Lua and
/// static files. A prefix under a directory others cannot enter (a 0700
/// `mktemp -d`, a home directory) would make every request fail with 500
/// "module not found": say so before starting instead.
fn workers_can_reach(prefix: &Path, conf: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let names_user = conf.lines().any(|line| {
        let code = line.split('#').next().unwrap_or("");
        code.split_whitespace().next() == Some("user")
    });
    if !root || names_user {
        return Ok(());
    }
    let full = prefix
        .canonicalize()
        .map_err(io_err(format!("resolving {}", prefix.display())))?;
    match closed_to_others(&full)? {
        None => Ok(()),
        Some((dir, mode)) => Err(Error::Rejected {
            runtime: "nginx",
            message: format!(
                "started as root, nginx runs its workers as `nobody`, which cannot enter {} \
                 (mode {mode:04o}), so they could not read {}; \
                 use a work directory under one others may enter (`chmod o+x {}`), \
                 or run gatefold as another user",
                dir.display(),
                full.display(),
                dir.display()
            ),
        }),
    }
}

/// The first of `dir` and its ancestors that other users cannot enter,
/// with its permission bits.
fn closed_to_others(dir: &Path) -> Result<Option<(PathBuf, u32)>> {
    use std::os::unix::fs::PermissionsExt;
    for d in dir.ancestors() {
        let mode = std::fs::metadata(d)
            .map_err(io_err(format!("reading {}", d.display())))?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o001 == 0 {
            return Ok(Some((d.to_path_buf(), mode)));
        }
    }
    Ok(None)
}

/// Whether `conf` has a `daemon off;` line (a daemonizing master would
/// escape the process group that stopping relies on).
fn runs_in_foreground(conf: &str) -> bool {
    conf.lines().any(|line| {
        let code = line.split('#').next().unwrap_or("");
        code.split_whitespace().collect::<Vec<_>>() == ["daemon", "off;"]
    })
}

/// A running nginx (master and workers). Dropping it stops them all
/// (SIGTERM, then SIGKILL to the process group after 10 s).
pub struct NginxInstance {
    nginx: Nginx,
    prefix: PathBuf,
    stderr_log: PathBuf,
    group: Group,
}

impl NginxInstance {
    /// The master process's ID.
    pub fn pid(&self) -> u32 {
        self.group.pid()
    }

    /// The worker processes' IDs (children of the master).
    pub fn workers(&self) -> Vec<u32> {
        children(self.pid())
    }

    /// The private prefix it runs on.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The master's stdout and stderr (nginx's default error log).
    pub fn stderr_log(&self) -> &Path {
        &self.stderr_log
    }

    /// `prefix/logs/error.log`, where a configuration that keeps its paths
    /// under the prefix sends `error_log`.
    pub fn error_log(&self) -> PathBuf {
        self.prefix.join("logs/error.log")
    }

    /// Replaces the running configuration with `conf`: checked with
    /// `nginx -t` first (when it fails, nothing changes and the old
    /// configuration keeps serving), then written over `conf/nginx.conf` and
    /// applied by SIGHUP (what `nginx -s reload` sends) to the same master.
    /// Returns once workers of the new configuration run and the old ones
    /// have exited (or, if a long request keeps one busy, after
    /// [`READY_TIMEOUT`]).
    pub fn reload(&mut self, conf: &str) -> Result<()> {
        if !runs_in_foreground(conf) {
            return Err(Error::Rejected {
                runtime: "nginx",
                message: "the configuration must contain `daemon off;`".into(),
            });
        }
        self.nginx.check(&self.prefix, conf)?;
        let live = self.prefix.join(CONF);
        let staged = self.prefix.join(CANDIDATE);
        std::fs::write(&staged, conf).map_err(io_err(format!("writing {}", staged.display())))?;
        std::fs::rename(&staged, &live).map_err(io_err(format!("replacing {}", live.display())))?;
        let old_workers = self.workers();
        self.group.signal(libc::SIGHUP);
        // The master starts new workers only once the new configuration is
        // in force; when applying it fails, it keeps the old workers.
        let reloaded = poll_until(READY_TIMEOUT, || {
            if let Some(status) = self.group.exited() {
                return Err(self.failure(format!("exited while reloading ({status})")));
            }
            Ok(self.workers().iter().any(|pid| !old_workers.contains(pid)))
        })?;
        if reloaded {
            // Until the master tells them to quit, old workers still accept
            // connections: wait for them to go (they finish their requests
            // first; one kept busy past the deadline does not fail the
            // reload, the new configuration is in force either way).
            poll_until(READY_TIMEOUT, || {
                let workers = self.workers();
                Ok(!workers.iter().any(|pid| old_workers.contains(pid)))
            })?;
            Ok(())
        } else {
            Err(self.failure(format!(
                "no worker of the new configuration after {READY_TIMEOUT:?}: \
                 the old configuration keeps serving"
            )))
        }
    }

    /// Stops nginx gracefully (SIGQUIT, what `nginx -s quit` sends: workers
    /// finish their requests), killing what is left after `grace`.
    pub fn stop(mut self, grace: Duration) -> Result<()> {
        if self.group.stop(libc::SIGQUIT, grace) {
            Ok(())
        } else {
            Err(self.failure(format!("did not quit within {grace:?}; killed")))
        }
    }

    fn failure(&self, what: String) -> Error {
        let log = if self.error_log().exists() {
            self.error_log()
        } else {
            self.stderr_log.clone()
        };
        Error::Failed {
            runtime: "nginx",
            what,
            tail: tail(&log, 10),
            log: Some(log),
        }
    }
}

impl std::fmt::Debug for NginxInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NginxInstance")
            .field("pid", &self.pid())
            .field("prefix", &self.prefix)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{closed_to_others, includes_resolver, resolver_directive, runs_in_foreground};
    use std::os::unix::fs::PermissionsExt;

    /// A work folder inside a 0700 folder (what `mktemp -d` makes) is
    /// found, and named, not the folder below it.
    #[test]
    fn a_folder_others_cannot_enter_is_found() {
        let outer = std::env::temp_dir().join(format!("gf-closed-{}", std::process::id()));
        let inner = outer.join("work");
        std::fs::create_dir_all(&inner).unwrap();
        let mode = |m| std::fs::set_permissions(&outer, std::fs::Permissions::from_mode(m));
        mode(0o755).unwrap();
        assert_eq!(closed_to_others(&inner).unwrap(), None);
        mode(0o700).unwrap();
        let found = closed_to_others(&inner).unwrap();
        mode(0o755).unwrap();
        std::fs::remove_dir_all(&outer).unwrap();
        assert_eq!(found, Some((outer.clone(), 0o700)));
    }

    /// Every usable `nameserver`, in order, IPv6 in brackets; comments,
    /// other keywords and addresses nginx cannot take left out.
    #[test]
    fn the_resolver_lists_the_machines_nameservers() {
        let text = "# generated\nsearch example.internal\nnameserver 10.0.0.2\n\
                    nameserver   2001:db8::53 \nnameserver fe80::1%eth0\n;nameserver 10.9.9.9\n\
                    options ndots:5\nnameserver 127.0.0.53\n";
        assert_eq!(
            resolver_directive(text).as_deref(),
            Some("resolver 10.0.0.2 [2001:db8::53] 127.0.0.53 ipv6=off;\n")
        );
    }

    /// No server to ask is `None` (the caller's clear error), not a
    /// `resolver` line nginx would refuse.
    #[test]
    fn no_nameserver_gives_no_resolver() {
        assert_eq!(resolver_directive(""), None);
        assert_eq!(
            resolver_directive("search example.internal\nnameserver fe80::1%eth0\n"),
            None
        );
    }

    #[test]
    fn the_resolver_include_is_recognized_outside_comments_only() {
        assert!(includes_resolver(
            "http {\n    include ../resolver.conf;\n}\n"
        ));
        assert!(!includes_resolver("    # include ../resolver.conf;\n"));
        assert!(!includes_resolver("    include resolver.conf;\n"));
    }

    #[test]
    fn daemon_off_is_recognized_outside_comments_only() {
        assert!(runs_in_foreground(
            "worker_processes 1;\n  daemon   off; # here\n"
        ));
        assert!(!runs_in_foreground("# daemon off;\nworker_processes 1;\n"));
        assert!(!runs_in_foreground("daemon on;\n"));
    }
}
