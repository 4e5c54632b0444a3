//! The small record each gateway keeps of the last apply: there is no
//! central state file; git holds the desired state, each gateway what it
//! runs plus this.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// What `gatefold apply` (or `rollback`) last set on a gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Manifest {
    /// Content hash of the config applied (`sha256:...`).
    pub hash: String,
    /// The hash that ran before it, which `gatefold rollback` returns to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The spec's git commit, when the spec is in a git checkout
    /// (`+dirty` when it has uncommitted changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// When, RFC 3339 UTC.
    pub applied_at: String,
    /// The gatefold version that applied it.
    pub gatefold: String,
    /// `apply` or `rollback`.
    pub action: Action,
}

/// What wrote a manifest.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Apply,
    Rollback,
}

impl Manifest {
    /// A manifest for applying `hash` now over `previous`.
    pub fn new(
        hash: &str,
        previous: Option<&str>,
        revision: Option<String>,
        action: Action,
    ) -> Manifest {
        Manifest {
            hash: hash.to_string(),
            previous: previous.map(str::to_string),
            revision,
            applied_at: rfc3339(SystemTime::now()),
            gatefold: env!("CARGO_PKG_VERSION").to_string(),
            action,
        }
    }

    /// One-line JSON (fits an HTTP header).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("manifest serializes")
    }
}

/// The git commit of the checkout holding `spec`, `+dirty` when it has
/// uncommitted changes; `None` outside git (or without git installed).
pub fn revision(spec: &Path) -> Option<String> {
    let dir = if spec.is_dir() {
        spec
    } else {
        spec.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    };
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--", "."]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}+dirty") } else { head })
}

/// `2026-11-30T17:00:00Z`.
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let date = gatefold_compiler::ir::Date::from_days_since_epoch(days as i64);
    format!(
        "{date}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // 2024-02-29 12:34:56 UTC, a leap day.
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
    }
}
