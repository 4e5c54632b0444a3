//! Where a config directory lives: on this host ([`Local`], `std::fs`) or
//! on another one reached with the `ssh` client ([`Ssh`]). The steps of
//! [`super::files`] (stage, check, switch, verify, revert) are written
//! once against [`Host`]; only these primitives differ.
//!
//! Over SSH every primitive is one `ssh … sh -c '…'`: file sets travel as
//! a tar stream on stdin (written with GNU tar's long-name entries) and as
//! `path NUL size NUL bytes` records on stdout; every path or user string
//! in a remote command is single-quoted ([`quote`]). `ssh` runs with
//! `BatchMode=yes` (never a password prompt), a connect timeout and
//! keepalives (a silent connection ends the step); exit
//! status 255 (ssh's own failure: refused, timed out, host key) is
//! reported as unreachable.

use super::files::Set;
use super::Error;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// File and command primitives on the host holding a config directory.
/// Paths are absolute paths on that host.
pub(crate) trait Host: Send + Sync {
    /// How `path` is named in messages (`ssh://user@host:22/path`).
    fn name(&self, path: &Path) -> String;
    /// Whether `path` is a directory (an error when the host is not reached).
    fn is_dir(&self, path: &Path) -> Result<bool, Error>;
    /// The contents of `path`; `None` when it does not exist.
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, Error>;
    /// The regular files at or below each of `managed` under `root`, names
    /// beginning with `.` left out (temporary files).
    fn read_set(&self, root: &Path, managed: &[&str]) -> Result<Set, Error>;
    /// Writes `set` under `root`, which is emptied first.
    fn write_set(&self, root: &Path, set: &Set) -> Result<(), Error>;
    /// Writes `bytes` beside `path`, then renames it over `path`.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), Error>;
    /// Removes `path` and everything below it; nothing when it is absent.
    fn remove_all(&self, path: &Path) -> Result<(), Error>;
    /// Renames each of `moves` (relative paths, in order) from `from` to
    /// `to` (creating parents), then removes each of `remove` from `to`.
    fn install(&self, from: &Path, to: &Path, moves: &[&str], remove: &[&str])
        -> Result<(), Error>;
    /// Renames `from` to `to` (a directory: `to` must not exist).
    fn rename(&self, from: &Path, to: &Path) -> Result<(), Error>;
    /// The names in directory `dir` (none when it does not exist).
    fn list(&self, dir: &Path) -> Result<Vec<String>, Error>;
    /// Runs `script` with `sh -c` in `dir`; its stdout, or an error naming
    /// `what` with its stderr.
    fn run(&self, dir: &Path, script: &str, what: &str) -> Result<Vec<u8>, Error>;
    /// Sends `request` to `addr` as a TCP client on that host and returns
    /// all it answers until it closes.
    fn exchange(
        &self,
        addr: SocketAddr,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, Error>;
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Failed(format!("{what}: {e}"))
}

/// This host.
pub(crate) struct Local;

impl Host for Local {
    fn name(&self, path: &Path) -> String {
        path.display().to_string()
    }

    fn is_dir(&self, path: &Path) -> Result<bool, Error> {
        Ok(path.is_dir())
    }

    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, Error> {
        match std::fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Failed(format!("reading {}: {e}", path.display()))),
        }
    }

    fn read_set(&self, root: &Path, managed: &[&str]) -> Result<Set, Error> {
        fn walk(root: &Path, rel: &str, out: &mut Set) -> Result<(), Error> {
            let path = root.join(rel);
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::Failed(format!("reading {}: {e}", path.display()))),
            };
            if meta.is_file() {
                let bytes =
                    std::fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
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

    fn write_set(&self, root: &Path, set: &Set) -> Result<(), Error> {
        self.remove_all(root)?;
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

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), Error> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("creating {}", parent.display())))?;
        }
        let tmp = temporary(path);
        std::fs::write(&tmp, bytes).map_err(io(format!("writing {}", tmp.display())))?;
        std::fs::rename(&tmp, path).map_err(io(format!("writing {}", path.display())))
    }

    fn remove_all(&self, path: &Path) -> Result<(), Error> {
        match std::fs::remove_dir_all(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(_) if path.is_file() => {
                std::fs::remove_file(path).map_err(io(format!("removing {}", path.display())))
            }
            Err(e) => Err(Error::Failed(format!("removing {}: {e}", path.display()))),
        }
    }

    fn install(
        &self,
        from: &Path,
        to: &Path,
        moves: &[&str],
        remove: &[&str],
    ) -> Result<(), Error> {
        for path in moves {
            let at = to.join(path);
            if let Some(parent) = at.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(io(format!("creating {}", parent.display())))?;
            }
            std::fs::rename(from.join(path), &at)
                .map_err(io(format!("moving {} into place", at.display())))?;
        }
        for path in remove {
            let at = to.join(path);
            std::fs::remove_file(&at).map_err(io(format!("removing {}", at.display())))?;
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<(), Error> {
        std::fs::rename(from, to).map_err(io(format!("writing {}", to.display())))
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>, Error> {
        Ok(match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect(),
            Err(_) => Vec::new(),
        })
    }

    fn run(&self, dir: &Path, script: &str, what: &str) -> Result<Vec<u8>, Error> {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .map_err(|e| Error::Failed(format!("running `{what}`: {e}")))?;
        finished(out, what)
    }

    fn exchange(
        &self,
        addr: SocketAddr,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| Error::Unreachable(format!("{addr}: {e}")))?;
        s.set_read_timeout(Some(timeout)).ok();
        s.write_all(request)
            .map_err(|e| Error::Unreachable(format!("{addr}: {e}")))?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)
            .map_err(|e| Error::Unreachable(format!("{addr}: {e}")))?;
        Ok(out)
    }
}

fn temporary(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    path.with_file_name(format!(".{name}.tmp"))
}

fn finished(out: std::process::Output, what: &str) -> Result<Vec<u8>, Error> {
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(Error::Failed(format!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// `s` as one word of a POSIX shell command: in single quotes, each `'`
/// written `'\''`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn q(path: &Path) -> String {
    quote(&path.to_string_lossy())
}

/// Where an `ssh://` config directory is, and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    /// The login name; `None`: ssh's default (its config, or the local user).
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// Options given to `ssh` before the destination (`ssh-options:`).
    pub options: Vec<String>,
}

impl SshTarget {
    /// `ssh://[user@]host[:port]/path` split into where and the path; a
    /// message saying what is wrong otherwise.
    pub fn parse(url: &str) -> Result<(SshTarget, PathBuf), String> {
        let rest = url
            .strip_prefix("ssh://")
            .ok_or_else(|| format!("`{url}` does not begin with ssh://"))?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => {
                return Err(format!(
                    "`{url}` names no directory after the host: write ssh://user@host/srv/gw/nginx"
                ))
            }
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, authority),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("`{p}` in `{url}` is not a port number"))?;
                (h, Some(port))
            }
            _ => (hostport, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        // A name beginning with `-` would be read by ssh as an option.
        let bad =
            |s: &str| s.is_empty() || s.starts_with('-') || s.chars().any(char::is_whitespace);
        if bad(host) {
            return Err(format!("`{url}` has no usable host name"));
        }
        if user.as_deref().is_some_and(bad) {
            return Err(format!("`{url}` has no usable user name"));
        }
        if path.len() < 2 {
            return Err(format!(
                "`{url}` names no directory after the host: write ssh://user@host/srv/gw/nginx"
            ));
        }
        Ok((
            SshTarget {
                user,
                host: host.to_string(),
                port,
                options: Vec::new(),
            },
            PathBuf::from(path),
        ))
    }
}

/// A host reached with the `ssh` client.
///
/// The steps of one run share one SSH connection: the first command starts
/// a master (`ControlMaster`) whose socket lives in a private directory of
/// this process, and every later `ssh` runs as a session over it. A login
/// costs a key exchange and an authentication (about 0.4 s to loopback
/// here); an apply makes dozens of steps per gateway. A client whose
/// master has gone (timed out, killed) connects on its own, as without
/// one. Skipped when `ssh-options` set any `Control…` option: the user's
/// own multiplexing wins.
pub(crate) struct Ssh {
    target: SshTarget,
    connect_timeout: Duration,
    /// `None` when the user's options manage multiplexing themselves.
    mux: Option<Mutex<Mux>>,
}

/// The shared connection: its socket's directory and its master.
struct Mux {
    dir: PathBuf,
    master: Master,
}

/// A master is started once; a failed start is not retried (later commands
/// connect on their own and report their failures themselves).
#[derive(Clone, Copy, PartialEq)]
enum Master {
    NotTried,
    Running,
    Failed,
}

impl Mux {
    /// The `ControlPath` option naming the master's socket.
    fn control_path(&self) -> String {
        format!("ControlPath={}/%C", self.dir.display())
    }
}

/// How long an idle master stays after its last session: a bound on what
/// is left behind when this process is killed before it closes it.
const MUX_PERSIST_SECONDS: u32 = 60;

/// The longest directory a master's socket fits in (see [`Ssh::new`]).
const MUX_DIR_MAX: usize = 107 - 41 - 17;

/// `name` under `tmp`, or under /tmp when that would be too long for a
/// socket path or hold what ssh reads specially in an option (a space ends
/// the value, `%` starts a token).
fn mux_dir(tmp: &Path, name: &str) -> PathBuf {
    let dir = tmp.join(name);
    let text = dir.to_string_lossy();
    if text.len() > MUX_DIR_MAX || text.contains(|c: char| c.is_whitespace() || c == '%') {
        return Path::new("/tmp").join(name);
    }
    dir
}

impl Ssh {
    pub(crate) fn new(target: SshTarget, connect_timeout: Duration) -> Ssh {
        let managed = target
            .options
            .iter()
            .any(|o| o.to_ascii_lowercase().contains("control"));
        let mux = (!managed).then(|| {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            // A Unix socket path holds at most 107 bytes; ssh adds `/%C`
            // (41) and, while binding, a 17-byte suffix. A long `TMPDIR`
            // gives way to /tmp, whose path always fits.
            let name = format!(
                "gf-ssh-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let dir = mux_dir(&std::env::temp_dir(), &name);
            Mutex::new(Mux {
                dir,
                master: Master::NotTried,
            })
        });
        Ssh {
            target,
            connect_timeout,
            mux,
        }
    }

    /// The `ControlPath` option of the shared connection, starting its
    /// master first if none was tried yet; `None` without one. A master
    /// that ssh itself could not start (exit 255: refused, timed out, host
    /// key) is the host being unreachable, reported as the command's
    /// failure rather than waited for a second time.
    fn control_path(&self) -> Result<Option<String>, Error> {
        let Some(mux) = self.mux.as_ref() else {
            return Ok(None);
        };
        let mut mux = mux.lock().unwrap_or_else(|e| e.into_inner());
        let path = mux.control_path();
        if mux.master == Master::NotTried {
            let started = self.start_master(&mux.dir, &path);
            mux.master = match started {
                Ok(true) => Master::Running,
                _ => Master::Failed,
            };
            started?;
        }
        Ok((mux.master == Master::Running).then_some(path))
    }

    /// `ssh -fN` as a master on a socket in `dir` (made private first);
    /// whether it started. Its output goes to a file, not a pipe: the
    /// backgrounded master keeps what it was given open, and a pipe would
    /// never reach its end.
    fn start_master(&self, dir: &Path, control_path: &str) -> Result<bool, Error> {
        use std::os::unix::fs::DirBuilderExt;
        if std::fs::DirBuilder::new().mode(0o700).create(dir).is_err() {
            return Ok(false);
        }
        let log_path = dir.join("master.log");
        let Ok(log) = std::fs::File::create(&log_path) else {
            return Ok(false);
        };
        let mut c = self.command();
        c.args(["-o", "ControlMaster=yes", "-o", control_path])
            .arg("-o")
            .arg(format!("ControlPersist={MUX_PERSIST_SECONDS}"))
            .args(["-f", "-N", "--"])
            .arg(self.destination())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        match c.status() {
            Ok(s) if s.success() => Ok(true),
            Ok(s) if s.code() == Some(255) => Err(Error::Unreachable(format!(
                "ssh {}: {}",
                self.name(Path::new("")),
                std::fs::read_to_string(&log_path)
                    .unwrap_or_default()
                    .trim()
            ))),
            _ => Ok(false),
        }
    }

    fn destination(&self) -> String {
        match &self.target.user {
            Some(u) => format!("{u}@{}", self.target.host),
            None => self.target.host.clone(),
        }
    }

    /// `ssh` with this host's options, as a session of the shared
    /// connection when there is one.
    fn session(&self) -> Result<Command, Error> {
        let mut c = self.command();
        if let Some(path) = self.control_path()? {
            c.args(["-o", "ControlMaster=no", "-o", &path]);
        }
        Ok(c)
    }

    fn command(&self) -> Command {
        let mut c = Command::new("ssh");
        c.args(["-o", "BatchMode=yes"])
            .arg("-o")
            .arg(format!(
                "ConnectTimeout={}",
                self.connect_timeout.as_secs().max(1)
            ))
            // A connection that goes silent (host gone mid-step) ends
            // within about 15 s instead of hanging the run.
            .args(["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"])
            .args(&self.target.options);
        if let Some(p) = self.target.port {
            c.arg("-p").arg(p.to_string());
        }
        c
    }

    /// Runs `script` remotely under `sh -c`, `input` on its stdin.
    fn shell(&self, script: &str, input: &[u8], what: &str) -> Result<Vec<u8>, Error> {
        let mut c = self.session()?;
        c.arg("--")
            .arg(self.destination())
            .arg(format!("sh -c {}", quote(script)));
        self.output(c, input, what)
    }

    fn output(&self, mut c: Command, input: &[u8], what: &str) -> Result<Vec<u8>, Error> {
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Failed(format!("running ssh: {e}")))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        // Written from a thread: a large input must not block on a full
        // pipe while the output is not read.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child
            .wait_with_output()
            .map_err(|e| Error::Failed(format!("running ssh: {e}")))?;
        let _ = writer.join();
        if out.status.code() == Some(255) {
            return Err(Error::Unreachable(format!(
                "ssh {}: {}",
                self.name(Path::new("")),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        finished(out, what)
    }
}

impl Host for Ssh {
    fn name(&self, path: &Path) -> String {
        let port = self
            .target
            .port
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        format!("ssh://{}{port}{}", self.destination(), path.display())
    }

    fn is_dir(&self, path: &Path) -> Result<bool, Error> {
        let out = self.shell(
            &format!("if [ -d {} ]; then echo yes; else echo no; fi", q(path)),
            b"",
            "test -d",
        )?;
        Ok(out.starts_with(b"yes"))
    }

    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, Error> {
        // `-` first marks "absent", `+` the contents that follow.
        let p = q(path);
        let out = self.shell(
            &format!("if [ -e {p} ]; then printf +; cat {p}; else printf -; fi"),
            b"",
            &format!("reading {}", self.name(path)),
        )?;
        match out.split_first() {
            Some((b'+', rest)) => Ok(Some(rest.to_vec())),
            _ => Ok(None),
        }
    }

    fn read_set(&self, root: &Path, managed: &[&str]) -> Result<Set, Error> {
        let starts: Vec<String> = managed.iter().map(|m| quote(m)).collect();
        let script = format!(
            "cd {} 2>/dev/null || exit 0; for m in {}; do [ -e \"$m\" ] && set -- \"$@\" \"$m\"; done; \
             [ $# -eq 0 ] && exit 0; \
             find -L \"$@\" -name '.*' -prune -o -type f -exec sh -c \
             'for f; do n=$(wc -c < \"$f\") || exit 1; printf \"%s\\0%s\\0\" \"$f\" $n; cat \"$f\" || exit 1; done' sh {{}} +",
            q(root),
            starts.join(" ")
        );
        let out = self.shell(&script, b"", &format!("reading {}", self.name(root)))?;
        parse_records(&out).ok_or_else(|| {
            Error::Failed(format!(
                "reading {}: the listing was cut short (a file changed while read?)",
                self.name(root)
            ))
        })
    }

    fn write_set(&self, root: &Path, set: &Set) -> Result<(), Error> {
        let r = q(root);
        self.shell(
            &format!("rm -rf {r} && mkdir -p {r} && cd {r} && tar -x -f -"),
            &tar(set),
            &format!("writing {}", self.name(root)),
        )
        .map(|_| ())
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), Error> {
        let parent = path.parent().unwrap_or(Path::new("/"));
        self.shell(
            &format!(
                "mkdir -p {} && cat > {t} && mv -f {t} {}",
                q(parent),
                q(path),
                t = q(&temporary(path))
            ),
            bytes,
            &format!("writing {}", self.name(path)),
        )
        .map(|_| ())
    }

    fn remove_all(&self, path: &Path) -> Result<(), Error> {
        self.shell(
            &format!("rm -rf {}", q(path)),
            b"",
            &format!("removing {}", self.name(path)),
        )
        .map(|_| ())
    }

    fn install(
        &self,
        from: &Path,
        to: &Path,
        moves: &[&str],
        remove: &[&str],
    ) -> Result<(), Error> {
        // One script: each file is renamed whole (mv within one file
        // system is rename(2)), in the order given.
        let mut script = String::from("set -e");
        for path in moves {
            let at = to.join(path);
            let parent = at.parent().unwrap_or(to);
            script.push_str(&format!(
                "\nmkdir -p {}\nmv -f {} {}",
                q(parent),
                q(&from.join(path)),
                q(&at)
            ));
        }
        for path in remove {
            script.push_str(&format!("\nrm -f {}", q(&to.join(path))));
        }
        self.shell(
            &script,
            b"",
            &format!("moving files into {}", self.name(to)),
        )
        .map(|_| ())
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<(), Error> {
        self.shell(
            &format!("mv {} {}", q(from), q(to)),
            b"",
            &format!("writing {}", self.name(to)),
        )
        .map(|_| ())
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>, Error> {
        let out = self.shell(
            &format!(
                "cd {} 2>/dev/null || exit 0; for f in *; do [ -e \"$f\" ] && printf '%s\\0' \"$f\"; done; exit 0",
                q(dir)
            ),
            b"",
            &format!("listing {}", self.name(dir)),
        )?;
        Ok(out
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect())
    }

    fn run(&self, dir: &Path, script: &str, what: &str) -> Result<Vec<u8>, Error> {
        self.shell(&format!("cd {} && {script}", q(dir)), b"", what)
    }

    fn exchange(
        &self,
        addr: SocketAddr,
        request: &[u8],
        _timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        // `ssh -W`: sshd opens the connection on the gateway host, so a
        // loopback address is that host's loopback, where the version
        // server answers.
        let mut c = self.session()?;
        c.arg("-W")
            .arg(addr.to_string())
            .arg("--")
            .arg(self.destination());
        self.output(c, request, &format!("connecting to {addr} there"))
            .map_err(|e| match e {
                Error::Failed(m) => Error::Unreachable(m),
                e => e,
            })
    }
}

impl Drop for Ssh {
    /// Closes the shared connection (`ssh -O exit`) and removes its
    /// directory.
    fn drop(&mut self) {
        let Some(mux) = self.mux.take() else {
            return;
        };
        let mux = mux.into_inner().unwrap_or_else(|e| e.into_inner());
        if mux.master == Master::Running {
            let mut c = self.command();
            c.arg("-o")
                .arg(mux.control_path())
                .args(["-O", "exit", "--"])
                .arg(self.destination())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = c.status();
        }
        let _ = std::fs::remove_dir_all(&mux.dir);
    }
}

/// `path NUL size NUL bytes` records, as the remote listing prints them.
fn parse_records(mut out: &[u8]) -> Option<Set> {
    let mut set = Set::new();
    while !out.is_empty() {
        let end = out.iter().position(|b| *b == 0)?;
        let path = String::from_utf8_lossy(&out[..end]).into_owned();
        out = &out[end + 1..];
        let end = out.iter().position(|b| *b == 0)?;
        let size: usize = std::str::from_utf8(&out[..end]).ok()?.trim().parse().ok()?;
        out = &out[end + 1..];
        if out.len() < size {
            return None;
        }
        set.insert(path, out[..size].to_vec());
        out = &out[size..];
    }
    Some(set)
}

/// `set` as a tar stream (ustar, with GNU long-name entries for paths
/// longer than 100 bytes).
fn tar(set: &Set) -> Vec<u8> {
    fn header(name: &[u8], size: usize, kind: u8) -> [u8; 512] {
        let mut h = [0u8; 512];
        let n = name.len().min(100);
        h[..n].copy_from_slice(&name[..n]);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[148..156].copy_from_slice(b"        ");
        h[156] = kind;
        h[257..265].copy_from_slice(b"ustar  \0");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }
    fn pad(out: &mut Vec<u8>) {
        let rem = out.len() % 512;
        if rem != 0 {
            out.resize(out.len() + 512 - rem, 0);
        }
    }
    let mut out = Vec::new();
    for (path, bytes) in set {
        let name = path.as_bytes();
        if name.len() > 100 {
            let mut long = name.to_vec();
            long.push(0);
            out.extend_from_slice(&header(b"././@LongLink", long.len(), b'L'));
            out.extend_from_slice(&long);
            pad(&mut out);
        }
        out.extend_from_slice(&header(name, bytes.len(), b'0'));
        out.extend_from_slice(bytes);
        pad(&mut out);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masters_socket_directory_fits_a_socket_path() {
        let short = mux_dir(Path::new("/tmp"), "gf-ssh-123-0");
        assert_eq!(short, Path::new("/tmp/gf-ssh-123-0"));
        let long_tmp = format!("/home/ops/{}", "deep/".repeat(12));
        let dir = mux_dir(Path::new(&long_tmp), "gf-ssh-123-0");
        assert_eq!(dir, Path::new("/tmp/gf-ssh-123-0"));
        // The socket ssh binds while creating it: the directory, `/`, the
        // 40-character `%C` and a 17-character temporary suffix.
        assert!(dir.as_os_str().len() + 1 + 40 + 17 <= 107);
        for odd in ["/home/o ps/tmp", "/tmp/100%"] {
            assert_eq!(
                mux_dir(Path::new(odd), "gf-ssh-123-0"),
                Path::new("/tmp/gf-ssh-123-0")
            );
        }
    }

    #[test]
    fn quoting_keeps_a_hostile_string_one_word() {
        let hostile = "a'b; rm -rf / $(x) `y` \"z\"\n";
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote(hostile)))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), hostile);
    }

    #[test]
    fn ssh_urls_split_into_where_and_path() {
        let (t, p) = SshTarget::parse("ssh://root@127.0.0.1:2222/srv/gw").unwrap();
        assert_eq!(t.user.as_deref(), Some("root"));
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.port, Some(2222));
        assert_eq!(p, PathBuf::from("/srv/gw"));
        let (t, _) = SshTarget::parse("ssh://gw.example/srv").unwrap();
        assert_eq!((t.user, t.port), (None, None));
        assert!(SshTarget::parse("ssh://-oProxyCommand=x/srv").is_err());
        assert!(SshTarget::parse("ssh://host").is_err());
        assert!(SshTarget::parse("ssh://host:port/x").is_err());
    }

    #[test]
    fn a_tar_stream_extracts_to_the_set() {
        let dir = std::env::temp_dir().join(format!("gatefold-tar-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let long = format!("lua/{}/x.lua", "d".repeat(120));
        let set = Set::from([
            ("conf/nginx.conf".to_string(), b"events {}\n".to_vec()),
            (long.clone(), vec![0u8, 1, 2, 255]),
        ]);
        let mut child = Command::new("tar")
            .args(["-x", "-f", "-"])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&tar(&set)).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(Local.read_set(&dir, &["conf", "lua"]).unwrap(), set);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
