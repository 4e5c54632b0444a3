//! A gateway whose config is a set of files in a directory on this host
//! (nginx, Envoy), and how gatefold changes it:
//!
//! * **stage**: the target's files for the new config are written into
//!   `DIR/.gatefold/staged/<hash>/`, a directory laid out like `DIR`;
//! * **check**: the gateway's own checker runs on the staged set;
//! * **switch**: only when the files in `DIR` are still the set the plan
//!   saw, the set in place is copied to `DIR/.gatefold/previous/`, each
//!   staged file is renamed over its place (a reader sees a whole file,
//!   old or new), files the new set lacks are removed, the manifest is
//!   written, and the gateway is told to load them ([`Runtime::activate`]);
//! * **verify**: the running gateway is asked which config it serves
//!   ([`Runtime::served`]), until it answers the new hash;
//! * **revert**: the set kept in `previous/` is put back byte for byte the
//!   same way.
//!
//! The record of the last apply is `DIR/.gatefold/manifest.json`: the
//! [`Manifest`] plus the hash of the file set it wrote (`files`). The IR
//! applied is kept as `DIR/.gatefold/ir/<hash>.json`, for the semantic
//! diff. What runs is known from the files: when they hash to what the
//! manifest records, the gateway runs the manifest's config; otherwise
//! (a hand edit, another tool, never applied) its hash is
//! `files:<sha256 of the set>`, which shows as drift.

use super::{Error, Running, Settings, Staged};
use crate::manifest::Manifest;
use gatefold_compiler::ir::ValidIr;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The prefix of the hash of a file set gatefold did not write (or that
/// was edited since).
pub const FOREIGN: &str = "files:";
/// gatefold's own directory inside the config directory.
pub const STATE: &str = ".gatefold";

/// A file set: relative path to contents.
pub(crate) type Set = BTreeMap<String, Vec<u8>>;

/// What a kind of gateway adds to the file handling.
pub(crate) trait Runtime: Send + Sync {
    /// The files of `ir`'s config, relative to the config directory.
    fn emit(&self, ir: &ValidIr) -> Set;
    /// The files and directories (relative) gatefold owns: what is staged,
    /// swapped, hashed and restored. Everything else is left alone.
    fn managed(&self) -> &'static [&'static str];
    /// When a file is renamed into place: lower first.
    fn rank(&self, _path: &str) -> u8 {
        0
    }
    /// Checks the set staged in `dir` (for `ir`) with the gateway's checker.
    fn check(&self, dir: &Path, ir: &ValidIr) -> Result<(), Error>;
    /// Makes the running gateway load the files now in place.
    fn activate(&self) -> Result<(), Error>;
    /// The version a file set says it serves, when it says one (a config
    /// gatefold compiled does; one written by hand may not).
    fn declared(&self, set: &Set) -> Option<String>;
    /// The hash of the config the running gateway serves; `ir`: the config
    /// expected (where to ask may depend on it).
    fn served(&self, ir: Option<&ValidIr>) -> Result<String, Error>;
}

/// The record of the last apply, `.gatefold/manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    manifest: Manifest,
    /// The hash of the file set written (see [`set_hash`]).
    files: String,
}

/// A config directory and the runtime reading it.
pub(crate) struct ConfigDir<R> {
    dir: PathBuf,
    runtime: R,
    settings: Settings,
    /// Configs staged in this run.
    staged: Mutex<Vec<ValidIr>>,
}

/// What the directory holds now.
struct Seen {
    files: String,
    record: Option<Record>,
}

impl Seen {
    /// The hash reported to the fleet.
    fn hash(&self) -> String {
        match &self.record {
            Some(r) if r.files == self.files => r.manifest.hash.clone(),
            _ => format!("{FOREIGN}{}", hex(&self.files)),
        }
    }
}

fn hex(hash: &str) -> &str {
    hash.strip_prefix("sha256:").unwrap_or(hash)
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Failed(format!("{what}: {e}"))
}

impl<R: Runtime> ConfigDir<R> {
    pub(crate) fn new(dir: &Path, runtime: R, settings: &Settings) -> ConfigDir<R> {
        ConfigDir {
            dir: dir.to_path_buf(),
            runtime,
            settings: settings.clone(),
            staged: Mutex::new(Vec::new()),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.join(STATE)
    }

    fn stage_dir(&self, hash: &str) -> PathBuf {
        self.state().join("staged").join(hex(hash))
    }

    fn ir_path(&self, hash: &str) -> PathBuf {
        self.state().join("ir").join(format!("{}.json", hex(hash)))
    }

    fn read(&self) -> Result<Seen, Error> {
        if !self.dir.is_dir() {
            return Err(Error::Unreachable(format!(
                "{} is not a directory",
                self.dir.display()
            )));
        }
        let files = set_hash(&read_set(&self.dir, self.runtime.managed())?);
        let record = read_record(&self.state().join("manifest.json"))?;
        Ok(Seen { files, record })
    }

    fn load_ir(&self, hash: &str) -> Option<ValidIr> {
        if let Some(ir) = self
            .staged
            .lock()
            .expect("staged lock")
            .iter()
            .find(|ir| ir.hash.as_str() == hash)
        {
            return Some(ir.clone());
        }
        let text = std::fs::read_to_string(self.ir_path(hash)).ok()?;
        ValidIr::from_json(&text)
            .ok()
            .filter(|ir| ir.hash.as_str() == hash)
    }

    /// Moves the managed files of `from` (laid out like the config
    /// directory) into place, in [`Runtime::rank`] order, then removes the
    /// managed files `from` lacks.
    fn install(&self, from: &Path) -> Result<(), Error> {
        let managed = self.runtime.managed();
        let new = read_set(from, managed)?;
        let old = read_set(&self.dir, managed)?;
        let mut order: Vec<&String> = new.keys().collect();
        order.sort_by_key(|p| (self.runtime.rank(p), p.as_str()));
        for path in order {
            let to = self.dir.join(path);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(io(format!("creating {}", parent.display())))?;
            }
            std::fs::rename(from.join(path), &to)
                .map_err(io(format!("moving {} into place", to.display())))?;
        }
        for path in old.keys().filter(|p| !new.contains_key(*p)) {
            let at = self.dir.join(path);
            std::fs::remove_file(&at).map_err(io(format!("removing {}", at.display())))?;
        }
        Ok(())
    }

    /// Keeps the set in place (and its record) in `.gatefold/previous/`.
    fn keep_previous(&self) -> Result<(), Error> {
        let tmp = self.state().join("previous.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        write_set(
            &tmp.join("set"),
            &read_set(&self.dir, self.runtime.managed())?,
        )?;
        let record = self.state().join("manifest.json");
        if record.exists() {
            std::fs::copy(&record, tmp.join("manifest.json"))
                .map_err(io(format!("copying {}", record.display())))?;
        }
        let previous = self.state().join("previous");
        let _ = std::fs::remove_dir_all(&previous);
        std::fs::rename(&tmp, &previous).map_err(io(format!("writing {}", previous.display())))
    }

    fn write_record(&self, record: &Record) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(record).expect("record serializes") + "\n";
        write_atomically(&self.state().join("manifest.json"), text.as_bytes())
    }

    /// Removes IR files no record names any more.
    fn prune_irs(&self, keep: &[Option<&str>]) {
        let keep: Vec<PathBuf> = keep.iter().flatten().map(|h| self.ir_path(h)).collect();
        if let Ok(entries) = std::fs::read_dir(self.state().join("ir")) {
            for e in entries.flatten() {
                if !keep.contains(&e.path()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    pub(crate) fn running(&self) -> Result<Running, Error> {
        let seen = self.read()?;
        let hash = seen.hash();
        let ir = if hash.starts_with(FOREIGN) {
            None
        } else {
            self.load_ir(&hash)
        };
        Ok(Running { hash, ir })
    }

    pub(crate) fn manifest(&self) -> Result<Option<Manifest>, Error> {
        Ok(self.read()?.record.map(|r| r.manifest))
    }

    pub(crate) fn stage(&self, desired: &ValidIr) -> Result<Staged, Error> {
        let dir = self.stage_dir(desired.hash.as_str());
        let _ = std::fs::remove_dir_all(&dir);
        let set = self.runtime.emit(desired);
        write_set(&dir, &set)?;
        self.staged
            .lock()
            .expect("staged lock")
            .push(desired.clone());
        Ok(Staged {
            hash: desired.hash.to_string(),
            body: set_hash(&set),
        })
    }

    pub(crate) fn check(&self, staged: &Staged) -> Result<(), Error> {
        let ir = self
            .load_ir(&staged.hash)
            .ok_or_else(|| Error::Failed(format!("{} was not staged", staged.hash)))?;
        self.runtime.check(&self.stage_dir(&staged.hash), &ir)
    }

    pub(crate) fn switch(
        &self,
        staged: &Staged,
        expect: &str,
        manifest: &Manifest,
    ) -> Result<(), Error> {
        let now = self.read()?.hash();
        if now != staged.hash {
            if now != expect {
                return Err(Error::Conflict {
                    expected: expect.to_string(),
                    running: now,
                });
            }
            let ir = self
                .load_ir(&staged.hash)
                .ok_or_else(|| Error::Failed(format!("{} was not staged", staged.hash)))?;
            let from = self.stage_dir(&staged.hash);
            let files = set_hash(&read_set(&from, self.runtime.managed())?);
            self.keep_previous()?;
            // The IR first: the record naming it is the commit point.
            write_atomically(&self.ir_path(&staged.hash), ir.to_json().as_bytes())?;
            self.install(&from)?;
            self.write_record(&Record {
                manifest: manifest.clone(),
                files,
            })?;
            let _ = std::fs::remove_dir_all(&from);
            self.prune_irs(&[Some(&manifest.hash), manifest.previous.as_deref()]);
        }
        // Also when an earlier attempt moved the files: load them.
        self.runtime.activate()
    }

    pub(crate) fn verify(&self, hash: &str) -> Result<(), Error> {
        let deadline = Instant::now() + self.settings.timeout.max(Duration::from_secs(5));
        if hash.starts_with(FOREIGN) {
            // A set the manifest does not name: the files are the ones
            // wanted, and the gateway serves the version they declare
            // (when they declare one), else at least answers.
            let set = read_set(&self.dir, self.runtime.managed())?;
            let on_disk = format!("{FOREIGN}{}", hex(&set_hash(&set)));
            if on_disk != hash {
                return Err(Error::Verify(format!(
                    "its files are {on_disk}, not {hash}"
                )));
            }
            let Some(declared) = self.runtime.declared(&set) else {
                return self.runtime.served(None).map(|_| ());
            };
            let ir = self.load_ir(&declared);
            loop {
                let answer = self.runtime.served(ir.as_ref());
                match answer {
                    Ok(seen) if seen == declared => return Ok(()),
                    Ok(seen) if Instant::now() >= deadline => {
                        return Err(Error::Verify(format!(
                            "its files declare {declared}; it serves {seen}"
                        )))
                    }
                    Err(e) if Instant::now() >= deadline => return Err(e),
                    _ => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        let ir = self.load_ir(hash);
        loop {
            let answer = self.runtime.served(ir.as_ref());
            match &answer {
                Ok(seen) if seen == hash => return Ok(()),
                _ if Instant::now() >= deadline => {
                    return match answer {
                        Ok(seen) => super::serving(&seen, hash),
                        Err(e) => Err(e),
                    }
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    pub(crate) fn revert(
        &self,
        expect: &str,
        back_to: &str,
        manifest: &Manifest,
    ) -> Result<(), Error> {
        if super::reverted_already(&self.read()?.hash(), expect, back_to)? {
            return Ok(());
        }
        let previous = self.state().join("previous");
        if !previous.is_dir() {
            return Err(Error::Failed(format!(
                "no earlier config is kept in {}",
                previous.display()
            )));
        }
        let set = read_set(&previous.join("set"), self.runtime.managed())?;
        let files = set_hash(&set);
        let before = read_record(&previous.join("manifest.json"))?;
        let kept = Seen {
            files: files.clone(),
            record: before,
        }
        .hash();
        if kept != back_to {
            return Err(Error::Failed(format!(
                "the earlier config kept here is {kept}, not {back_to}"
            )));
        }
        // Copies: `previous/` stays whole until the next apply.
        let from = self.state().join("staged").join("rollback");
        let _ = std::fs::remove_dir_all(&from);
        write_set(&from, &set)?;
        self.install(&from)?;
        let _ = std::fs::remove_dir_all(&from);
        let record = self.state().join("manifest.json");
        if manifest.hash == back_to {
            self.write_record(&Record {
                manifest: manifest.clone(),
                files,
            })?;
        } else if previous.join("manifest.json").exists() {
            // The record as it was, byte for byte.
            let text = std::fs::read(previous.join("manifest.json"))
                .map_err(io(format!("reading {}", previous.display())))?;
            write_atomically(&record, &text)?;
        } else {
            let _ = std::fs::remove_file(&record);
        }
        self.runtime.activate()
    }
}

fn read_record(path: &Path) -> Result<Option<Record>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::Failed(format!(
                "{} is not a manifest gatefold wrote: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Failed(format!("reading {}: {e}", path.display()))),
    }
}

/// The managed files under `root`: regular files at or below each of
/// `managed`, names beginning with `.` left out (temporary files).
pub(crate) fn read_set(root: &Path, managed: &[&str]) -> Result<Set, Error> {
    fn walk(root: &Path, rel: &str, out: &mut Set) -> Result<(), Error> {
        let path = root.join(rel);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::Failed(format!("reading {}: {e}", path.display()))),
        };
        if meta.is_file() {
            let bytes = std::fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
            out.insert(rel.to_string(), bytes);
        } else if meta.is_dir() {
            let mut names: Vec<String> = std::fs::read_dir(&path)
                .map_err(io(format!("reading {}", path.display())))?
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| !n.starts_with('.'))
                .collect();
            names.sort();
            for n in names {
                walk(root, &format!("{rel}/{n}"), out)?;
            }
        }
        Ok(())
    }
    let mut out = Set::new();
    for m in managed {
        walk(root, m, &mut out)?;
    }
    Ok(out)
}

/// Writes `set` under `root`.
fn write_set(root: &Path, set: &Set) -> Result<(), Error> {
    std::fs::create_dir_all(root).map_err(io(format!("creating {}", root.display())))?;
    for (path, bytes) in set {
        let to = root.join(path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("creating {}", parent.display())))?;
        }
        std::fs::write(&to, bytes).map_err(io(format!("writing {}", to.display())))?;
    }
    Ok(())
}

/// `sha256:` of every path and its contents, in path order.
pub(crate) fn set_hash(set: &Set) -> String {
    let mut h = Sha256::new();
    for (path, bytes) in set {
        h.update((path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    let digest = h.finalize();
    let mut out = String::from("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Writes `bytes` beside `path`, then renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("writing {}", path.display())))
}

/// The output files of a target, by path.
pub(crate) fn output_set(out: gatefold_compiler::target::Output) -> Set {
    out.files
        .into_iter()
        .map(|f| (f.path.as_str().to_string(), f.bytes))
        .collect()
}

/// Where a gateway configured to listen on `listen` is reached from here:
/// an unspecified address (every interface) through loopback.
pub(crate) fn reach(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    let mut at = listen;
    if at.ip().is_unspecified() {
        at.set_ip(match at {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_hash_tells_path_from_contents() {
        // "ab" + "c" and "a" + "bc" must not hash alike.
        let one = Set::from([("ab".into(), b"c".to_vec())]);
        let two = Set::from([("a".into(), b"bc".to_vec())]);
        assert_ne!(set_hash(&one), set_hash(&two));
        assert_eq!(set_hash(&one), set_hash(&one.clone()));
    }
}
