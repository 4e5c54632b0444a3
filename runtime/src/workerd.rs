//! workerd, Cloudflare's Workers runtime (npm `workerd`), running the
//! Cloudflare target's output: `workerd serve config.capnp` in the work
//! directory, the Worker's secret bindings read from its environment.
//!
//! workerd has no check-only mode; a Worker that does not load makes it
//! exit while starting, and the error names the log with its last lines.
//! Reload: stop and start again on the new output (a Worker holds no
//! state gatefold needs kept).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::locate::{locate, Wanted};
use crate::process::{listens_on, Group};
use crate::{poll_until, tail, Error, Result, READY_TIMEOUT};

/// The config file of the Cloudflare target's output.
pub const CONFIG: &str = "config.capnp";

const WANTED: Wanted = Wanted {
    name: "workerd",
    env: "GATEFOLD_WORKERD",
    fixed: &[],
    install: "scripts/install-runtimes.sh (no root needed; it runs: npm install --prefix .tools/workerd workerd@1.20261117.1, and links .tools/bin/workerd)",
};

/// A workerd binary and the environment it runs with.
#[derive(Debug, Clone)]
pub struct Workerd {
    binary: PathBuf,
    env: BTreeMap<String, String>,
}

impl Workerd {
    /// `$GATEFOLD_WORKERD`, else `.tools/bin/workerd`, else `PATH`.
    pub fn locate() -> Result<Workerd> {
        locate(&WANTED).map(Workerd::at)
    }

    /// The binary at `binary`.
    pub fn at(binary: impl Into<PathBuf>) -> Workerd {
        Workerd {
            binary: binary.into(),
            env: BTreeMap::new(),
        }
    }

    /// Variables (the Worker's secrets) added to workerd's environment.
    pub fn with_env(mut self, vars: BTreeMap<String, String>) -> Workerd {
        self.env = vars;
        self
    }

    /// Serves `work/config.capnp`; returns once every address of
    /// `ready_on` accepts connections from this workerd.
    pub fn start(&self, work: &Path, ready_on: &[SocketAddr]) -> Result<WorkerdInstance> {
        let log = work.join("workerd.log");
        let _ = std::fs::remove_file(&log);
        let mut command = Command::new(&self.binary);
        command
            .arg("serve")
            .arg(CONFIG)
            .envs(&self.env)
            .current_dir(work);
        let group = Group::spawn(command, &log)?;
        let mut instance = WorkerdInstance { log, group };
        let ready = poll_until(READY_TIMEOUT, || {
            if let Some(status) = instance.group.exited() {
                return Err(instance.failure(format!("exited while starting ({status})")));
            }
            Ok(ready_on
                .iter()
                .all(|addr| listens_on(instance.pid(), *addr) && crate::accepts(*addr)))
        })?;
        if !ready {
            return Err(instance.failure(format!(
                "not listening on {ready_on:?} after {READY_TIMEOUT:?}"
            )));
        }
        Ok(instance)
    }
}

/// A running workerd; dropping it stops it.
pub struct WorkerdInstance {
    log: PathBuf,
    group: Group,
}

impl WorkerdInstance {
    pub fn pid(&self) -> u32 {
        self.group.pid()
    }

    /// stdout and stderr of workerd (the Worker's console output too).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// SIGTERM, then whatever is left is killed after `grace`.
    pub fn stop(mut self, grace: Duration) -> Result<()> {
        if self.group.stop(libc::SIGTERM, grace) {
            Ok(())
        } else {
            Err(self.failure(format!("did not exit within {grace:?} of SIGTERM; killed")))
        }
    }

    fn failure(&self, what: String) -> Error {
        Error::Failed {
            runtime: "workerd",
            what,
            tail: tail(&self.log, 10),
            log: Some(self.log.clone()),
        }
    }
}

impl std::fmt::Debug for WorkerdInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerdInstance")
            .field("pid", &self.pid())
            .field("log", &self.log)
            .finish()
    }
}
