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

use super::files::{self, ConfigDir, Runtime, Set};
use super::{Error, Provider, Running, Settings, Staged};
use crate::manifest::Manifest;
use gatefold_compiler::ir::ValidIr;
use gatefold_compiler::target::{Options, Target};
use gatefold_target_nginx::{VERSION_HOST, VERSION_PATH};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An nginx prefix directory and how to reload the nginx serving it.
pub struct Nginx(ConfigDir<Files>);

/// The nginx side of the file handling.
pub(crate) struct Files {
    dir: PathBuf,
    reload: Option<String>,
    listen: Option<SocketAddr>,
    client: reqwest::blocking::Client,
}

impl Nginx {
    /// nginx on the prefix `dir`; `reload`: a shell command that makes it
    /// load its files (default `nginx -s reload` on the prefix); `listen`:
    /// where the config serves plain HTTP (default: every address on the
    /// spec's `gateway.listen`).
    pub fn new(
        dir: &Path,
        reload: Option<String>,
        listen: Option<SocketAddr>,
        settings: &Settings,
    ) -> Result<Nginx, Error> {
        let client = reqwest::blocking::Client::builder()
            .timeout(settings.timeout.min(std::time::Duration::from_secs(5)))
            .no_proxy()
            .build()
            .map_err(|e| Error::Failed(format!("cannot make an HTTP client: {e}")))?;
        let files = Files {
            dir: dir.to_path_buf(),
            reload,
            listen,
            client,
        };
        Ok(Nginx(ConfigDir::new(dir, files, settings)))
    }
}

impl Files {
    fn options(&self) -> Options {
        Options {
            listen: self.listen,
            ..Options::default()
        }
    }
}

impl Files {
    /// The address of the version server in the `nginx.conf` on disk.
    fn version_listen(&self) -> Option<SocketAddr> {
        let conf = std::fs::read_to_string(self.dir.join(gatefold_runtime::nginx::CONF)).ok()?;
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

    fn check(&self, dir: &Path, _ir: &ValidIr) -> Result<(), Error> {
        let nginx = gatefold_runtime::Nginx::locate().map_err(|e| Error::Failed(e.to_string()))?;
        let conf = std::fs::read_to_string(dir.join(gatefold_runtime::nginx::CONF))
            .map_err(|e| Error::Failed(format!("reading the staged nginx.conf: {e}")))?;
        // The staged set is its own prefix: `-t` reads its includes and
        // Lua paths there, never the files nginx runs.
        nginx.check(dir, &conf).map_err(|e| match e {
            gatefold_runtime::Error::Rejected { message, .. } => {
                Error::Rejected(format!("nginx -t: {message}"))
            }
            e => Error::Failed(e.to_string()),
        })
    }

    fn activate(&self) -> Result<(), Error> {
        let mut cmd = match &self.reload {
            Some(line) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(line);
                c
            }
            None => {
                let nginx =
                    gatefold_runtime::Nginx::locate().map_err(|e| Error::Failed(e.to_string()))?;
                let mut c = Command::new(nginx.binary());
                c.arg("-p")
                    .arg(format!("{}/", self.dir.display()))
                    .args(["-c", gatefold_runtime::nginx::CONF, "-e", "stderr"])
                    .args(["-s", "reload"]);
                c
            }
        };
        let what = self
            .reload
            .clone()
            .unwrap_or_else(|| "nginx -s reload".to_string());
        let out = cmd
            .current_dir(&self.dir)
            .output()
            .map_err(|e| Error::Failed(format!("running `{what}`: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Failed(format!(
                "`{what}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    fn served(&self, ir: Option<&ValidIr>) -> Result<String, Error> {
        let listen = match (self.listen, ir) {
            (Some(a), _) => a,
            (None, Some(ir)) => SocketAddr::from(([127, 0, 0, 1], ir.gateway.listen)),
            (None, None) => self.version_listen().ok_or_else(|| {
                Error::Failed(
                    "which port nginx listens on is unknown: give the gateway `listen:` in the fleet file".into(),
                )
            })?,
        };
        let url = format!("http://{}{VERSION_PATH}", files::reach(listen));
        let r = self
            .client
            .get(&url)
            .header("host", VERSION_HOST)
            .send()
            .map_err(|e| Error::Unreachable(format!("{url}: {}", e.without_url())))?;
        let status = r.status();
        let text = r.text().unwrap_or_default();
        if status.is_success() {
            Ok(text.trim().to_string())
        } else {
            Err(Error::Verify(format!(
                "{url} (host {VERSION_HOST}) answered {status}: is it a config gatefold compiled?"
            )))
        }
    }
}

impl Provider for Nginx {
    fn running(&self) -> Result<Running, Error> {
        self.0.running()
    }
    fn manifest(&self) -> Result<Option<Manifest>, Error> {
        self.0.manifest()
    }
    fn stage(&self, desired: &ValidIr) -> Result<Staged, Error> {
        self.0.stage(desired)
    }
    fn check(&self, staged: &Staged) -> Result<(), Error> {
        self.0.check(staged)
    }
    fn switch(&self, staged: &Staged, expect: &str, manifest: &Manifest) -> Result<(), Error> {
        self.0.switch(staged, expect, manifest)
    }
    fn verify(&self, hash: &str) -> Result<(), Error> {
        self.0.verify(hash)
    }
    fn revert(&self, expect: &str, back_to: &str, manifest: &Manifest) -> Result<(), Error> {
        self.0.revert(expect, back_to, manifest)
    }
}
