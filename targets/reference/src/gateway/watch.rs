//! `--watch`: reload when the spec changes. A broken edit logs its
//! diagnostics and the last good config keeps serving.
//!
//! Polling, not file-system events: a spec is a handful of small files, so a
//! `stat` of each per interval costs nothing, and polling sees every way a
//! file can change (editors that write a temporary file and rename it,
//! `git checkout`, bind mounts and network file systems where inotify is
//! silent) with no extra dependency. A change is acted on once the files
//! have stayed the same for [`SETTLE`] (at least one interval), and a load
//! during which the files changed again is thrown away: a save written in
//! parts, or one that starts while the last is compiled, is never loaded
//! half-written. Loading runs under the apply lock ([`Shared::load_and_apply`]),
//! so it never stacks with a `PUT /config`.

use super::Shared;
use gatefold_compiler::ir::ValidIr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// How long the files must have stayed the same before they are loaded.
pub const SETTLE: Duration = Duration::from_secs(1);

/// Name, modification time and length of each file of a spec.
pub type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

/// What to watch.
#[derive(Clone, Debug)]
pub struct Source {
    /// A spec file or folder, or a compiled `gatefold.ir.json`.
    pub path: PathBuf,
    /// How often to look.
    pub interval: Duration,
}

impl Source {
    fn is_ir(&self) -> bool {
        self.path.extension().is_some_and(|e| e == "json")
    }
}

/// Name, modification time and length of every file that makes the spec.
pub fn fingerprint(src: &Source) -> Fingerprint {
    let files = if src.is_ir() {
        vec![src.path.clone()]
    } else {
        gatefold_compiler::source::spec_files(&src.path).unwrap_or_default()
    };
    let mut out: Vec<_> = files
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map_or(0, |m| m.len());
            (f, modified, len)
        })
        .collect();
    out.sort();
    out
}

/// Loads the spec (or IR) at `src`, or the rendered reasons it cannot be.
pub fn load(src: &Source) -> Result<ValidIr, String> {
    if src.is_ir() {
        let text = std::fs::read_to_string(&src.path)
            .map_err(|e| format!("cannot read `{}`: {e}", src.path.display()))?;
        return ValidIr::from_json(&text);
    }
    let compiled = gatefold_compiler::compile_path(&src.path);
    match compiled.ir {
        Some(ir) => Ok(ir),
        None => Err(compiled.render()),
    }
}

/// Why a changed spec was not loaded.
enum NotLoaded {
    /// It does not compile: the rendered diagnostics.
    Invalid(String),
    /// It changed again while it was read: wait for it to settle.
    Moving,
}

/// The settle rule, as one look per interval: a change is acted on once
/// the files have stayed the same for [`SETTLE`] (at least one interval),
/// and once only. `--watch` here and `gatefold up --watch` both poll with it.
#[derive(Debug)]
pub struct Settle {
    settle: Duration,
    /// What was last acted on (loaded, or refused).
    done: Fingerprint,
    /// What the previous look saw, and since when.
    last: Fingerprint,
    changed_at: Instant,
}

impl Settle {
    /// Starts watching `src`. Nothing counts as acted on yet: the first
    /// settled look reports the files (see [`Settle::done`] to start from a
    /// known load).
    pub fn new(src: &Source) -> Settle {
        Settle {
            settle: SETTLE.max(src.interval),
            done: Fingerprint::new(),
            last: fingerprint(src),
            changed_at: Instant::now(),
        }
    }

    /// One look at the files: their fingerprint when they differ from what
    /// was last acted on and have stayed the same for the settle time.
    pub fn look(&mut self, src: &Source) -> Option<Fingerprint> {
        let now = fingerprint(src);
        if now != self.last {
            self.last = now;
            self.changed_at = Instant::now();
            return None;
        }
        if now == self.done || self.changed_at.elapsed() < self.settle {
            return None;
        }
        Some(now)
    }

    /// Records that the files as `seen` were acted on: they are not
    /// reported again until they change.
    pub fn done(&mut self, seen: Fingerprint) {
        self.done = seen;
    }
}

pub async fn run(src: Source, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    // What the running config was loaded from is unknown (the files may
    // have changed between the first load and now): the first settled look
    // loads them once more, which changes nothing when they are the same.
    let mut settle = Settle::new(&src);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(src.interval) => {}
            _ = stopped.changed() => return,
        }
        let Some(now) = settle.look(&src) else {
            continue;
        };
        let outcome = {
            let (src, shared, now) = (src.clone(), shared.clone(), now.clone());
            tokio::task::spawn_blocking(move || {
                shared.load_and_apply(|| {
                    let ir = load(&src).map_err(NotLoaded::Invalid)?;
                    if fingerprint(&src) != now {
                        return Err(NotLoaded::Moving);
                    }
                    Ok(ir)
                })
            })
            .await
        };
        match outcome {
            Ok(Ok(Ok(_))) => {}
            Ok(Ok(Err(errors))) => crate::say!(
                "gatefold: {} changed but cannot be loaded; still serving the last good config:\n  {}",
                src.path.display(),
                errors.join("\n  ")
            ),
            Ok(Err(NotLoaded::Invalid(diagnostics))) => {
                shared
                    .metrics
                    .reloads_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                crate::say!(
                    "gatefold: {} changed but does not compile; still serving the last good config:\n{diagnostics}",
                    src.path.display()
                );
            }
            // The next look sees the newer files and waits for them to settle.
            Ok(Err(NotLoaded::Moving)) => continue,
            Err(e) => crate::say!("gatefold: reload failed: {e}"),
        }
        settle.done(now);
    }
}
