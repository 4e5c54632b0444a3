//! LuaJIT's bytecode compiler as a syntax checker for generated Lua, which
//! `nginx -t` does not check.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::locate::{locate, Wanted};
use crate::{io_err, Error, Result};

const WANTED: Wanted = Wanted {
    name: "luajit",
    env: "GATEFOLD_LUAJIT",
    fixed: &["/usr/bin/luajit"],
    install: "scripts/install-runtimes.sh (as root; or: apt-get install -y luajit2)",
};

/// A LuaJIT binary.
#[derive(Debug, Clone)]
pub struct Luajit {
    binary: PathBuf,
}

impl Luajit {
    /// Finds LuaJIT: `$GATEFOLD_LUAJIT`, the project's `.tools/bin/luajit`,
    /// `PATH`, then `/usr/bin/luajit`. The error says how to install it.
    pub fn locate() -> Result<Luajit> {
        locate(&WANTED).map(|binary| Luajit { binary })
    }

    /// The binary's path.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Checks that the Lua file at `path` compiles (`luajit -bl`); the error
    /// carries LuaJIT's message with the file and line.
    pub fn check(&self, path: &Path) -> Result<()> {
        let output = Command::new(&self.binary)
            .arg("-bl")
            .arg(path)
            .output()
            .map_err(io_err(format!("running {} -bl", self.binary.display())))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::Rejected {
                runtime: "luajit",
                message: String::from_utf8_lossy(&output.stderr)
                    .trim_end()
                    .to_string(),
            })
        }
    }
}
