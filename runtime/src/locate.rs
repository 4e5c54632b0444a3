//! Finding a runtime's binary: environment override, the project's
//! `.tools/bin`, then `PATH` (and the distribution's fixed paths).

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// What to look for and how to say it is missing.
pub(crate) struct Wanted {
    /// The binary's name, as on `PATH` and in `.tools/bin`.
    pub name: &'static str,
    /// The environment variable that overrides the search.
    pub env: &'static str,
    /// Absolute paths to try after `PATH` (e.g. `/usr/sbin/nginx`, which a
    /// non-root `PATH` often lacks).
    pub fixed: &'static [&'static str],
    /// The exact command that installs it.
    pub install: &'static str,
}

/// Finds the binary `wanted` describes.
pub(crate) fn locate(wanted: &Wanted) -> Result<PathBuf> {
    if let Some(value) = std::env::var_os(wanted.env) {
        let path = PathBuf::from(&value);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(Error::NotFound {
                runtime: wanted.name,
                searched: format!(
                    "{}={} is not an executable file",
                    wanted.env,
                    path.display()
                ),
                install: wanted.install,
            })
        };
    }
    let mut searched = vec![format!("${} unset", wanted.env)];
    for root in project_roots() {
        let candidate = root.join(".tools/bin").join(wanted.name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
        searched.push(candidate.display().to_string());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(wanted.name);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    searched.push("PATH".into());
    for fixed in wanted.fixed {
        if is_executable(Path::new(fixed)) {
            return Ok(PathBuf::from(fixed));
        }
        searched.push((*fixed).into());
    }
    Err(Error::NotFound {
        runtime: wanted.name,
        searched: format!("looked at {}", searched.join(", ")),
        install: wanted.install,
    })
}

/// Where a project's `.tools/` may be: the current directory and its
/// ancestors, then the workspace this crate was built in.
fn project_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = std::env::current_dir()
        .map(|dir| dir.ancestors().map(Path::to_path_buf).collect())
        .unwrap_or_default();
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Ok(root) = built_in.canonicalize() {
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    roots
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
