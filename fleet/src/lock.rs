//! One change to a fleet at a time: `apply` and `rollback` hold an
//! exclusive `flock(2)` on a file beside the fleet file. The kernel drops
//! the lock when its holder exits, however it exits, so a killed apply
//! never leaves the fleet locked.

use rustix::fs::{flock, FlockOperation};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// A held fleet lock; released when dropped (or the process dies).
pub struct FleetLock {
    _file: File,
}

/// `.<fleet file name>.lock` beside the fleet file.
pub fn lock_path(fleet: &Path) -> PathBuf {
    let name = fleet
        .file_name()
        .map_or_else(|| "fleet".into(), |n| n.to_string_lossy().into_owned());
    fleet.with_file_name(format!(".{name}.lock"))
}

/// Takes the fleet's lock, or says who holds it.
pub fn acquire(fleet: &Path) -> Result<FleetLock, String> {
    let path = lock_path(fleet);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open the fleet lock `{}`: {e}", path.display()))?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        return Err(format!(
            "another gatefold apply or rollback is changing this fleet ({}); wait for it to finish (the lock is `{}`)",
            if holder.is_empty() { "holder unknown" } else { holder },
            path.display()
        ));
    }
    // Who holds it, for the message a second operator sees.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = writeln!(file, "pid {}", std::process::id());
    Ok(FleetLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("gatefold-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let fleet = dir.join("fleet.yaml");
        let first = acquire(&fleet).expect("free");
        // flock is per open file description: a second open in the same
        // process conflicts just as another process would.
        let err = acquire(&fleet).err().expect("refused while held");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        // Other tests of this process spawn children: one forked between
        // `first`'s open and its exec holds a copy of the descriptor, and
        // with it the lock, until the exec closes it a moment later.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while let Err(e) = acquire(&fleet) {
            assert!(std::time::Instant::now() < deadline, "free again: {e}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
