//! A runtime's process tree: spawned as the leader of its own process
//! group, so that stopping it reaches every worker it forked.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::{io_err, Result};

/// A spawned runtime process leading its own process group.
pub(crate) struct Group {
    child: Child,
    exited: Option<ExitStatus>,
}

impl Group {
    /// Spawns `command` in a new process group, its stdout and stderr
    /// appended to `log`, stdin closed.
    pub fn spawn(mut command: Command, log: &Path) -> Result<Group> {
        use std::os::unix::process::CommandExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io_err(format!("opening {}", log.display())))?;
        let err = file
            .try_clone()
            .map_err(io_err("duplicating a log file handle"))?;
        command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .process_group(0);
        let child = command
            .spawn()
            .map_err(io_err(format!("starting {:?}", command.get_program())))?;
        Ok(Group {
            child,
            exited: None,
        })
    }

    /// The leader's process ID (also the group's ID).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The leader's exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Sends `signal` to the leader (not the group: nginx's master relays
    /// signals to its workers itself).
    pub fn signal(&mut self, signal: libc::c_int) {
        if self.exited().is_none() {
            // SAFETY: kill(2) has no memory-safety preconditions; the leader is
            // our unreaped child, so its PID cannot have been reused.
            unsafe { libc::kill(self.pid() as libc::pid_t, signal) };
        }
    }

    /// Sends `signal` (a graceful stop) to the leader, waits up to `grace`
    /// for it to exit, then kills whatever is left of the group. Returns
    /// whether the leader exited within `grace`.
    pub fn stop(&mut self, signal: libc::c_int, grace: Duration) -> bool {
        self.signal(signal);
        let graceful = crate::poll_until(grace, || Ok(self.exited().is_some())).unwrap_or(false);
        self.kill_group();
        graceful
    }

    /// SIGKILLs every process of the group and reaps the leader.
    fn kill_group(&mut self) {
        let pgid = self.pid() as libc::pid_t;
        // SAFETY: as above. The group's ID cannot be reused before the leader
        // is reaped below, so this reaches only the runtime's processes.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        if self.exited.is_none() {
            self.exited = self.child.wait().ok();
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.stop(libc::SIGTERM, Duration::from_secs(10));
        } else {
            // The leader is gone; a worker that outlived it is still in the
            // group, and Linux does not reuse an ID while a group holds it:
            // this reaches only leftovers of this runtime, or nothing.
            let pgid = self.pid() as libc::pid_t;
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

/// The PIDs whose parent is `parent` (from /proc).
pub(crate) fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // Fields after the parenthesized command: state, ppid, ...
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

/// Whether process `pid` itself holds a socket listening on `addr` (or on
/// the wildcard address of its port): that something accepts on `addr` is
/// not enough, another process may hold the port while the runtime fails
/// to bind it.
pub(crate) fn listens_on(pid: u32, addr: std::net::SocketAddr) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let inodes: Vec<u64> = fds
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.ok()?.path()).ok()?;
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    let table = if addr.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    let Ok(text) = std::fs::read_to_string(table) else {
        return false;
    };
    text.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        const LISTEN: &str = "0A";
        fields.len() > 9
            && fields[3] == LISTEN
            && fields[9]
                .parse()
                .is_ok_and(|inode: u64| inodes.contains(&inode))
            && parse_local(fields[1]).is_some_and(|(ip, port)| {
                port == addr.port() && (ip == addr.ip() || ip.is_unspecified())
            })
    })
}

/// A /proc/net/tcp{,6} local address: the IP as 32-bit words in host byte
/// order, then the port, in hex.
fn parse_local(field: &str) -> Option<(std::net::IpAddr, u16)> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for word in ip.as_bytes().chunks(8) {
        let word = u32::from_str_radix(std::str::from_utf8(word).ok()?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some((ip, port))
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_its_own_listener_and_not_another_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(super::listens_on(std::process::id(), addr));
        // PID 1 does not hold this test's socket.
        assert!(!super::listens_on(1, addr));
        drop(listener);
        assert!(!super::listens_on(std::process::id(), addr));
    }
}
