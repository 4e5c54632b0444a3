//! Shared by the fleet tests: running the `gatefold` binary, contract
//! fakes of the admin APIs that cannot run here (Kong, Cloudflare), and
//! reference gateways run as real processes (`reference`).

pub mod cloudflare;
pub mod gateways;
pub mod http;
pub mod kong;
pub mod reference;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// How long anything may take on a loaded machine: generous.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Writes `dir/fleet.yaml` for `spec`: each of `gateways` is one
/// gateway's YAML (`name: { provider: ... }`, or a block of lines),
/// indented under `gateways:`; `rest` follows (waves, on-failure).
pub fn write_fleet(
    dir: &Path,
    spec: &Path,
    gateways: impl IntoIterator<Item = String>,
    rest: &str,
) -> PathBuf {
    let mut s = format!(
        "gatefold: 1\nfleet:\n  spec: {}\n  gateways:\n",
        spec.display()
    );
    for g in gateways {
        for line in g.lines() {
            s.push_str(&format!("    {line}\n"));
        }
    }
    s.push_str(rest);
    let path = dir.join("fleet.yaml");
    std::fs::write(&path, s).unwrap();
    path
}

/// `gatefold ARGS` with `env` set; fails the test when any of `secrets`
/// appears in stdout or stderr.
pub fn gatefold(args: &[&str], env: &[(&str, &str)], secrets: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatefold"));
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for s in secrets {
        assert!(!all.contains(s), "a secret leaked into the output:\n{all}");
    }
    out
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Stdout and stderr, for assertion messages.
pub fn both(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// A fresh scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatefold-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Stdout as JSON.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(out)))
}
