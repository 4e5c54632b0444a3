//! nginx with its prefix directory on this host (`nginx -p DIR -c
//! conf/nginx.conf`), through the file handling of [`super::files`]:
//! gatefold owns `conf/` and `lua/` (what the nginx target writes); logs,
//! temp files and the pid file are left alone.
//!
//! Checked with `nginx -t` on the staged set as its own prefix, loaded by
//! the fleet file's `reload` command (default `nginx -p DIR -c
//! conf/nginx.conf -s reload`), verified by asking nginx which config it
//! serves: the nginx target's version server ([`VERSION_HOST`],
//! [`VERSION_PATH`]), which answers loopback clients only.
//!
//! A config that resolves upstream host names per request includes the
//! prefix's `resolver.conf` (outside `conf/`: the machine's, not the
//! config's): it is written from that host's `/etc/resolv.conf` into the
//! staged set before `nginx -t` and into the prefix before each reload.
//!
//! The prefix may be on another host (`config-dir: ssh://user@host/path`):
//! the same steps then run there through the `ssh` client (see
//! [`super::host`]), `nginx` being the one on the remote `PATH`, and the
//! version server is asked through `ssh -W` from that host's loopback.

use super::files::{self, ConfigDir, Runtime, Set};
use super::host::{quote, Host, Local, Ssh, SshTarget};
use super::{Error, Provider, Settings};
use gatefold_compiler::ir::ValidIr;
use gatefold_compiler::target::{Options, Target};
use gatefold_target_nginx::{VERSION_HOST, VERSION_PATH};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The nginx side of the file handling.
pub(crate) struct Files {
    dir: PathBuf,
    /// The nginx binary: located here for a local prefix; `nginx` on the
    /// remote `PATH` over SSH.
    binary: Option<String>,
    reload: Option<String>,
    listen: Option<SocketAddr>,
    timeout: Duration,
}

/// nginx on the prefix `dir`, on this host or (`ssh`) on another one;
/// `reload`: a shell command that makes it load its files, run in
/// `dir` on that host (default `nginx -s reload` on the prefix);
/// `listen`: where the config serves plain HTTP (default: every
/// address on the spec's `gateway.listen`).
pub fn provider(
    dir: &Path,
    ssh: Option<&SshTarget>,
    reload: Option<String>,
    listen: Option<SocketAddr>,
    settings: &Settings,
) -> Result<Box<dyn Provider>, Error> {
    let timeout = settings.timeout.min(Duration::from_secs(5));
    let host: Box<dyn Host> = match ssh {
        Some(t) => Box::new(Ssh::new(t.clone(), timeout)),
        None => Box::new(Local),
    };
    let files = Files {
        dir: dir.to_path_buf(),
        binary: ssh.map(|_| "nginx".to_string()),
        reload,
        listen,
        timeout,
    };
    Ok(Box::new(ConfigDir::new(dir, host, files, settings)))
}

impl Files {
    fn options(&self) -> Options {
        Options {
            listen: self.listen,
            ..Options::default()
        }
    }

    /// The nginx binary as a shell word.
    fn binary(&self) -> Result<String, Error> {
        match &self.binary {
            Some(b) => Ok(quote(b)),
            None => {
                let nginx =
                    gatefold_runtime::Nginx::locate().map_err(|e| Error::Failed(e.to_string()))?;
                Ok(quote(&nginx.binary().to_string_lossy()))
            }
        }
    }

    /// Writes `prefix/resolver.conf` from the host's `/etc/resolv.conf`
    /// when the `conf/nginx.conf` under `prefix` includes it.
    fn write_resolver(&self, host: &dyn Host, prefix: &Path) -> Result<(), Error> {
        use gatefold_runtime::nginx::{includes_resolver, resolver_directive, RESOLVER_FILE};
        let conf = host.read(&prefix.join(gatefold_runtime::nginx::CONF))?;
        let conf = conf.as_deref().map(String::from_utf8_lossy);
        if !conf.is_some_and(|c| includes_resolver(&c)) {
            return Ok(());
        }
        let resolv = Path::new("/etc/resolv.conf");
        let text = host.read(resolv)?.unwrap_or_default();
        let directive = resolver_directive(&String::from_utf8_lossy(&text)).ok_or_else(|| {
            Error::Rejected(gatefold_runtime::nginx::no_nameserver(&host.name(resolv)))
        })?;
        host.write_atomically(&prefix.join(RESOLVER_FILE), directive.as_bytes())
    }

    /// The address of the version server in the `nginx.conf` in place.
    fn version_listen(&self, host: &dyn Host) -> Option<SocketAddr> {
        let bytes = host
            .read(&self.dir.join(gatefold_runtime::nginx::CONF))
            .ok()??;
        let conf = String::from_utf8(bytes).ok()?;
        let at = conf.find(&format!("server_name {VERSION_HOST};"))?;
        let before = &conf[..at];
        let listen = before.rfind("listen \"")? + "listen \"".len();
        let end = before[listen..].find('"')?;
        let word = &before[listen..listen + end];
        word.parse::<SocketAddr>().ok().or_else(|| {
            word.parse::<u16>()
                .ok()
                .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
        })
    }
}

impl Runtime for Files {
    fn emit(&self, ir: &ValidIr) -> Set {
        files::output_set(gatefold_target_nginx::Nginx::default().emit(ir, &self.options()))
    }

    fn managed(&self) -> &'static [&'static str] {
        &["conf", "lua"]
    }

    /// The hash the version server of `conf/nginx.conf` answers.
    fn declared(&self, set: &Set) -> Option<String> {
        let conf = std::str::from_utf8(set.get(gatefold_runtime::nginx::CONF)?).ok()?;
        let at = conf.find(&format!("location = {VERSION_PATH}"))?;
        let rest = &conf[at..];
        let ret = rest.find("return 200 \"")? + "return 200 \"".len();
        let end = rest[ret..].find('"')?;
        Some(rest[ret..ret + end].to_string())
    }

    fn check(&self, host: &dyn Host, dir: &Path, _ir: &ValidIr) -> Result<(), Error> {
        // The staged set is its own prefix: `-t` reads its includes and
        // Lua paths there, never the files nginx runs.
        self.write_resolver(host, dir)?;
        let script = format!(
            "mkdir -p logs tmp && {} -t -q -p {} -c {}",
            self.binary()?,
            quote(&format!("{}/", dir.display())),
            gatefold_runtime::nginx::CONF
        );
        host.run(dir, &script, "nginx -t")
            .map(|_| ())
            .map_err(|e| match e {
                Error::Failed(m) => Error::Rejected(m),
                e => e,
            })
    }

    fn activate(&self, host: &dyn Host) -> Result<(), Error> {
        self.write_resolver(host, &self.dir)?;
        match &self.reload {
            Some(line) => host.run(&self.dir, line, line),
            None => {
                let script = format!(
                    "{} -p {} -c {} -e stderr -s reload",
                    self.binary()?,
                    quote(&format!("{}/", self.dir.display())),
                    gatefold_runtime::nginx::CONF
                );
                host.run(&self.dir, &script, "nginx -s reload")
            }
        }
        .map(|_| ())
    }

    fn served(&self, host: &dyn Host, ir: Option<&ValidIr>) -> Result<String, Error> {
        let listen = match (self.listen, ir) {
            (Some(a), _) => a,
            (None, Some(ir)) => SocketAddr::from(([127, 0, 0, 1], ir.gateway.listen)),
            (None, None) => self.version_listen(host).ok_or_else(|| {
                Error::Failed(
                    "which port nginx listens on is unknown: give the gateway `listen:` in the fleet file".into(),
                )
            })?,
        };
        let addr = files::reach(listen);
        let url = format!("http://{addr}{VERSION_PATH}");
        let request = format!(
            "GET {VERSION_PATH} HTTP/1.1\r\nhost: {VERSION_HOST}\r\nconnection: close\r\n\r\n"
        );
        let answer = host.exchange(addr, request.as_bytes(), self.timeout)?;
        let text = String::from_utf8_lossy(&answer);
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .ok_or_else(|| Error::Unreachable(format!("{url}: no HTTP answer")))?;
        let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
        if status == "200" {
            Ok(body.trim().to_string())
        } else {
            Err(Error::Verify(format!(
                "{url} (host {VERSION_HOST}) answered {status}: is it a config gatefold compiled?"
            )))
        }
    }
}
