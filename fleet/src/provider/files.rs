//! A gateway whose config is a set of files in a directory (nginx,
//! Envoy), on this host or, for nginx, on another one over SSH (the file
//! and command primitives are [`super::host::Host`]'s), and how gatefold
//! changes it:
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

use super::host::Host;
use super::{Error, Provider, Running, Settings, Staged, Switched};
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
    fn check(&self, host: &dyn Host, dir: &Path, ir: &ValidIr) -> Result<(), Error>;
    /// Makes the running gateway load the files now in place.
    fn activate(&self, host: &dyn Host) -> Result<(), Error>;
    /// The version a file set says it serves, when it says one (a config
    /// gatefold compiled does; one written by hand may not).
    fn declared(&self, set: &Set) -> Option<String>;
    /// The hash of the config the running gateway serves; `ir`: the config
    /// expected (where to ask may depend on it).
    fn served(&self, host: &dyn Host, ir: Option<&ValidIr>) -> Result<String, Error>;
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
    host: Box<dyn Host>,
    runtime: R,
    settings: Settings,
    /// Configs staged in this run.
    staged: Mutex<Vec<ValidIr>>,
}

/// Answers in a row, each on a new connection, that must name the new
/// config before verify says it is served.
const SERVED_IN_A_ROW: usize = 3;

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

impl<R: Runtime> ConfigDir<R> {
    pub(crate) fn new(
        dir: &Path,
        host: Box<dyn Host>,
        runtime: R,
        settings: &Settings,
    ) -> ConfigDir<R> {
        ConfigDir {
            dir: dir.to_path_buf(),
            host,
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
        if !self.host.is_dir(&self.dir)? {
            return Err(Error::Unreachable(format!(
                "{} is not a directory",
                self.host.name(&self.dir)
            )));
        }
        let files = set_hash(&self.read_set(&self.dir)?);
        let record = self.read_record(&self.state().join("manifest.json"))?;
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
        let bytes = self.host.read(&self.ir_path(hash)).ok()??;
        let text = String::from_utf8(bytes).ok()?;
        ValidIr::from_json(&text)
            .ok()
            .filter(|ir| ir.hash.as_str() == hash)
    }

    fn read_set(&self, root: &Path) -> Result<Set, Error> {
        self.host.read_set(root, self.runtime.managed())
    }

    fn read_record(&self, path: &Path) -> Result<Option<Record>, Error> {
        match self.host.read(path)? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::Failed(format!(
                    "{} is not a manifest gatefold wrote: {e}",
                    self.host.name(path)
                ))
            }),
            None => Ok(None),
        }
    }

    /// Moves the managed files of `from` (laid out like the config
    /// directory) into place, in [`Runtime::rank`] order, then removes the
    /// managed files `from` lacks.
    fn install(&self, from: &Path) -> Result<(), Error> {
        let new = self.read_set(from)?;
        let old = self.read_set(&self.dir)?;
        let mut order: Vec<&str> = new.keys().map(String::as_str).collect();
        order.sort_by_key(|p| (self.runtime.rank(p), *p));
        let remove: Vec<&str> = old
            .keys()
            .filter(|p| !new.contains_key(*p))
            .map(String::as_str)
            .collect();
        self.host.install(from, &self.dir, &order, &remove)
    }

    /// Keeps the set in place (and its record) in `.gatefold/previous/`.
    fn keep_previous(&self) -> Result<(), Error> {
        let tmp = self.state().join("previous.tmp");
        self.host.remove_all(&tmp)?;
        self.host
            .write_set(&tmp.join("set"), &self.read_set(&self.dir)?)?;
        let record = self.state().join("manifest.json");
        if let Some(bytes) = self.host.read(&record)? {
            self.host
                .write_atomically(&tmp.join("manifest.json"), &bytes)?;
        }
        let previous = self.state().join("previous");
        self.host.remove_all(&previous)?;
        self.host.rename(&tmp, &previous)
    }

    fn write_record(&self, record: &Record) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(record).expect("record serializes") + "\n";
        self.host
            .write_atomically(&self.state().join("manifest.json"), text.as_bytes())
    }

    /// Removes IR files no record names any more.
    fn prune_irs(&self, keep: &[Option<&str>]) {
        let keep: Vec<PathBuf> = keep.iter().flatten().map(|h| self.ir_path(h)).collect();
        let dir = self.state().join("ir");
        for name in self.host.list(&dir).unwrap_or_default() {
            let path = dir.join(name);
            if !keep.contains(&path) {
                let _ = self.host.remove_all(&path);
            }
        }
    }
}

/// The steps every config-directory gateway takes; only the files, the
/// checker and the way to ask what it serves ([`Runtime`]) differ.
impl<R: Runtime> Provider for ConfigDir<R> {
    fn running(&self) -> Result<Running, Error> {
        let seen = self.read()?;
        let hash = seen.hash();
        let ir = if hash.starts_with(FOREIGN) {
            None
        } else {
            self.load_ir(&hash)
        };
        Ok(Running {
            hash,
            ir: ir.map(std::sync::Arc::new),
            // Read with the files it describes: apply asks no more.
            manifest: Some(seen.record.map(|r| r.manifest)),
        })
    }

    fn manifest(&self) -> Result<Option<Manifest>, Error> {
        Ok(self.read()?.record.map(|r| r.manifest))
    }

    fn stage(&self, desired: &ValidIr) -> Result<Staged, Error> {
        let dir = self.stage_dir(desired.hash.as_str());
        let set = self.runtime.emit(desired);
        self.host.write_set(&dir, &set)?;
        self.staged
            .lock()
            .expect("staged lock")
            .push(desired.clone());
        Ok(Staged {
            hash: desired.hash.to_string(),
            body: set_hash(&set),
        })
    }

    fn check(&self, staged: &Staged) -> Result<(), Error> {
        let ir = self
            .load_ir(&staged.hash)
            .ok_or_else(|| Error::Failed(format!("{} was not staged", staged.hash)))?;
        self.runtime
            .check(self.host.as_ref(), &self.stage_dir(&staged.hash), &ir)
    }

    fn switch(
        &self,
        staged: &Staged,
        expect: &str,
        manifest: &Manifest,
    ) -> Result<Switched, Error> {
        let seen = self.read()?;
        let now = seen.hash();
        // Files an earlier attempt moved already replaced what we would name.
        let replaced = (now != staged.hash).then(|| seen.record.map(|r| r.manifest));
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
            let files = set_hash(&self.read_set(&from)?);
            self.keep_previous()?;
            // The IR first: the record naming it is the commit point.
            self.host
                .write_atomically(&self.ir_path(&staged.hash), ir.to_json().as_bytes())?;
            self.install(&from)?;
            self.write_record(&Record {
                manifest: manifest.clone(),
                files,
            })?;
            let _ = self.host.remove_all(&from);
            self.prune_irs(&[Some(&manifest.hash), manifest.previous.as_deref()]);
        }
        // Also when an earlier attempt moved the files: load them.
        self.runtime.activate(self.host.as_ref())?;
        Ok(Switched { replaced })
    }

    fn verify(&self, hash: &str) -> Result<(), Error> {
        let deadline = Instant::now() + self.settings.timeout.max(Duration::from_secs(5));
        if hash.starts_with(FOREIGN) {
            // A set the manifest does not name: the files are the ones
            // wanted, and the gateway serves the version they declare
            // (when they declare one), else at least answers.
            let set = self.read_set(&self.dir)?;
            let on_disk = format!("{FOREIGN}{}", hex(&set_hash(&set)));
            if on_disk != hash {
                return Err(Error::Verify(format!(
                    "its files are {on_disk}, not {hash}"
                )));
            }
            let Some(declared) = self.runtime.declared(&set) else {
                return self.runtime.served(self.host.as_ref(), None).map(|_| ());
            };
            let ir = self.load_ir(&declared);
            loop {
                let answer = self.runtime.served(self.host.as_ref(), ir.as_ref());
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
        // After a reload, a worker of the old config may still take a new
        // connection for a moment (nginx's old workers keep the listening
        // socket until they act on their QUIT): one answer naming the new
        // config is not yet all of them serving it.
        let mut in_a_row = 0;
        loop {
            let answer = self.runtime.served(self.host.as_ref(), ir.as_ref());
            match &answer {
                Ok(seen) if seen == hash => {
                    in_a_row += 1;
                    if in_a_row == SERVED_IN_A_ROW {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ if Instant::now() >= deadline => {
                    return match answer {
                        Ok(seen) => super::serving(&seen, hash),
                        Err(e) => Err(e),
                    }
                }
                _ => {
                    in_a_row = 0;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn revert(&self, expect: &str, back_to: &str, manifest: &Manifest) -> Result<(), Error> {
        if super::reverted_already(&self.read()?.hash(), expect, back_to)? {
            return Ok(());
        }
        let previous = self.state().join("previous");
        if !self.host.is_dir(&previous)? {
            return Err(Error::Failed(format!(
                "no earlier config is kept in {}",
                self.host.name(&previous)
            )));
        }
        let set = self.read_set(&previous.join("set"))?;
        let files = set_hash(&set);
        let before = self.read_record(&previous.join("manifest.json"))?;
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
        self.host.write_set(&from, &set)?;
        self.install(&from)?;
        let _ = self.host.remove_all(&from);
        let record = self.state().join("manifest.json");
        if manifest.hash == back_to {
            self.write_record(&Record {
                manifest: manifest.clone(),
                files,
            })?;
        } else if let Some(text) = self.host.read(&previous.join("manifest.json"))? {
            // The record as it was, byte for byte.
            self.host.write_atomically(&record, &text)?;
        } else {
            self.host.remove_all(&record)?;
        }
        self.runtime.activate(self.host.as_ref())
    }
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
