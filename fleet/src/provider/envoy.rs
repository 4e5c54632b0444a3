//! Envoy with file-based dynamic config in a directory on this host (its
//! work directory: `bootstrap.yaml`, and `dynamic/lds.json` and
//! `dynamic/cds.json` in the watched directory `dynamic/`), through the
//! file handling of [`super::files`]: gatefold owns `bootstrap.yaml` and
//! `dynamic/`.
//!
//! Checked with `envoy --mode validate` (the listeners and clusters placed
//! in a copy of the bootstrap, as validate mode does not read LDS/CDS
//! files), switched by renaming the clusters, then the listeners, into the
//! watched directory (Envoy reloads on the rename; the bootstrap is read
//! only when Envoy starts), verified through the admin API: `/config_dump`
//! reports the `version_info` of the LDS and CDS files it loaded; Envoy
//! records a file's version only when the update changed one of its
//! resources. The Envoy target sets the listeners' to the IR's hash (and
//! names the route config after it, so every new config changes the
//! listeners) and the clusters' to a hash of the clusters, so Envoy serves
//! a config when its listeners' version is the config's and its clusters'
//! is the one of `dynamic/cds.json` in place. The admin API is the fleet file's
//! `admin`, else the address Envoy wrote to `DIR/admin.address`
//! (`envoy --admin-address-path admin.address`).

use super::files::{self, ConfigDir, Runtime, Set};
use super::host::{Host, Local};
use super::http::Http;
use super::{Error, Provider, Settings};
use gatefold_compiler::ir::ValidIr;
use gatefold_compiler::target::{Options, Target};
use gatefold_target_envoy::{BOOTSTRAP, CDS, DYNAMIC_DIR, LDS};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where Envoy writes its admin address (`--admin-address-path`), relative
/// to its work directory, when the fleet file gives no `admin`.
pub const ADMIN_ADDRESS: &str = "admin.address";

/// The Envoy side of the file handling.
pub(crate) struct Files {
    dir: PathBuf,
    admin: Option<String>,
    listen: Option<SocketAddr>,
    settings: Settings,
}

/// Envoy working in `dir`; `admin`: its admin API's URL (default: the
/// address in `dir/admin.address`); `listen`: where the config serves
/// plain HTTP (default: every address on the spec's `gateway.listen`).
pub fn provider(
    dir: &Path,
    admin: Option<String>,
    listen: Option<SocketAddr>,
    settings: &Settings,
) -> Box<dyn Provider> {
    let files = Files {
        dir: dir.to_path_buf(),
        admin,
        listen,
        settings: settings.clone(),
    };
    Box::new(ConfigDir::new(dir, Box::new(Local), files, settings))
}

impl Files {
    fn admin(&self) -> Result<Http, Error> {
        let base = match &self.admin {
            Some(url) => url.clone(),
            None => {
                let path = self.dir.join(ADMIN_ADDRESS);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    Error::Unreachable(format!(
                        "reading {} ({e}): is Envoy running with `--admin-address-path {ADMIN_ADDRESS}` in this directory? Or give the gateway `admin:` in the fleet file",
                        path.display()
                    ))
                })?;
                format!("http://{}", text.trim())
            }
        };
        Http::new(&base, None, &self.settings)
    }
}

impl Files {
    /// The `version_info` of the clusters file in place (`dynamic/cds.json`).
    fn placed_clusters_version(&self) -> Option<String> {
        let text = std::fs::read(self.dir.join(CDS)).ok()?;
        let cds: serde_json::Value = serde_json::from_slice(&text).ok()?;
        cds["version_info"].as_str().map(str::to_string)
    }
}

/// The `version_info` of the config dump entry whose type ends in `kind`.
fn version_of(dump: &serde_json::Value, kind: &str) -> Option<String> {
    dump["configs"]
        .as_array()?
        .iter()
        .find(|c| c["@type"].as_str().is_some_and(|t| t.ends_with(kind)))
        .map(|c| c["version_info"].as_str().unwrap_or("").to_string())
}

impl Runtime for Files {
    fn emit(&self, ir: &ValidIr) -> Set {
        let options = Options {
            listen: self.listen,
            ..Options::default()
        };
        files::output_set(gatefold_target_envoy::Envoy::default().emit(ir, &options))
    }

    fn managed(&self) -> &'static [&'static str] {
        &[BOOTSTRAP, DYNAMIC_DIR]
    }

    /// Clusters before the listeners that route to them.
    fn rank(&self, path: &str) -> u8 {
        match path {
            CDS => 0,
            LDS => 1,
            _ => 2,
        }
    }

    /// The listeners file's `version_info`.
    fn declared(&self, set: &Set) -> Option<String> {
        let lds: serde_json::Value = serde_json::from_slice(set.get(LDS)?).ok()?;
        lds["version_info"].as_str().map(str::to_string)
    }

    fn check(&self, _host: &dyn Host, dir: &Path, _ir: &ValidIr) -> Result<(), Error> {
        let envoy = gatefold_runtime::Envoy::locate().map_err(|e| Error::Failed(e.to_string()))?;
        let read = |p: &str| {
            std::fs::read_to_string(dir.join(p))
                .map_err(|e| Error::Failed(format!("reading the staged {p}: {e}")))
        };
        let config = gatefold_runtime::EnvoyConfig {
            bootstrap: read(BOOTSTRAP)?,
            lds: Some(read(LDS)?),
            cds: Some(read(CDS)?),
        };
        envoy.check(dir, &config).map_err(|e| match e {
            gatefold_runtime::Error::Rejected { message, .. } => {
                Error::Rejected(format!("envoy --mode validate: {message}"))
            }
            e => Error::Failed(e.to_string()),
        })
    }

    /// Envoy watches `dynamic/`: the renames are the reload.
    fn activate(&self, _host: &dyn Host) -> Result<(), Error> {
        Ok(())
    }

    fn served(&self, _host: &dyn Host, _ir: Option<&ValidIr>) -> Result<String, Error> {
        let http = self.admin()?;
        // Only the versions: the whole dump of a 5,000-route config is
        // some 40 MB that Envoy's main thread takes seconds to write (and
        // verify asks every 100 ms); masked, it is a few hundred bytes.
        let r = http.send("/config_dump?mask=version_info", |c, u| c.get(u))?;
        if !r.status().is_success() {
            return Err(Error::Failed(format!(
                "Envoy's admin API answered {} to /config_dump?mask=version_info",
                r.status()
            )));
        }
        let dump: serde_json::Value = r
            .json()
            .map_err(|e| Error::Failed(format!("/config_dump is not JSON: {e}")))?;
        // The listeners' version (their file is renamed after the
        // clusters'), when the clusters are the ones in place. Envoy
        // reports no clusters' version while a config has none (a spec of
        // mocks only).
        let lds = version_of(&dump, "ListenersConfigDump").unwrap_or_default();
        let cds = version_of(&dump, "ClustersConfigDump").unwrap_or_default();
        let placed = self.placed_clusters_version();
        Ok(if cds.is_empty() || Some(&cds) == placed.as_ref() {
            lds
        } else {
            format!(
                "listeners {lds}, clusters {cds} (dynamic/cds.json holds {})",
                placed.as_deref().unwrap_or("no version")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_the_listener_and_cluster_dumps() {
        let dump = serde_json::json!({ "configs": [
            { "@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump" },
            { "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "version_info": "sha256:b" },
            { "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "version_info": "sha256:a" }
        ]});
        assert_eq!(
            version_of(&dump, "ListenersConfigDump").as_deref(),
            Some("sha256:a")
        );
        assert_eq!(
            version_of(&dump, "ClustersConfigDump").as_deref(),
            Some("sha256:b")
        );
    }
}
