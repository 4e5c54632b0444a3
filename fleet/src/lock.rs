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
    file: File,
}

impl Drop for FleetLock {
    /// Unlocks before the descriptor closes: a child forked meanwhile (and
    /// not yet exec'd) holds a copy of the descriptor, and with it the lock,
    /// which closing ours alone would leave held until that exec.
    fn drop(&mut self) {
        let _ = flock(&self.file, FlockOperation::Unlock);
    }
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
    Ok(FleetLock { file })
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
        // Free at once, even while another test of this process forks a
        // child that holds a copy of `first`'s descriptor (it failed so,
        // once, before `FleetLock` unlocked on drop).
        drop(first);
        acquire(&fleet).expect("free again");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
