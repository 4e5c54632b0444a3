//! The integration tests of this crate, one test binary: each file here is
//! a module of it. One binary instead of one per file keeps a fresh build
//! small and quick to link (each binary links every dependency again).
//! A new `tests/NAME.rs` is added as `mod NAME;` below; the workspace test
//! `every_test_file_is_compiled` fails if it is not.

mod jwt_json;
mod worker;
mod workerd;
mod wrangler;

use std::path::{Path, PathBuf};

/// A tool the tests run: `$ENV`, the project's `.tools/bin/NAME`, then
/// `PATH`. Missing is a failure, never a skip: the message names the
/// installer.
fn tool(name: &str, env: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.tools/bin")
        .join(name);
    if tools.exists() {
        return tools;
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|c| c.exists())
        })
        .unwrap_or_else(|| {
            panic!(
                "{name} not found (${env} unset, no {}, none on PATH): run scripts/install-runtimes.sh",
                tools.display()
            )
        })
}
