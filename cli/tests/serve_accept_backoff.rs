//! Out of file descriptors, `gatefold serve` must back off on `accept`
//! errors instead of spinning: the admin listener used to `continue` on
//! every error, so one pending admin connection held a core at 100%.
//!
//! The gateway runs under `prlimit --nofile=128` (util-linux) and is
//! flooded with connections until it has no descriptor left; a pending
//! admin connection then makes every `accept` fail with EMFILE.

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const QUICKSTART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/quickstart");

/// The child, killed when dropped (a failed assertion included).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesized command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn ticks_per_second() -> u64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(100)
}

fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn accept_errors_back_off_instead_of_spinning() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("skipped: prlimit (util-linux) is not installed");
        return;
    }
    let child = Command::new("prlimit")
        .arg("--nofile=128:128")
        .arg(env!("CARGO_BIN_EXE_gatefold"))
        .args(["serve", QUICKSTART, "--listen", "127.0.0.1:0"])
        .args([
            "--admin",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--no-access-log",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Guard(child);
    let pid = child.0.id();
    let mut stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut addr = |marker: &str| -> SocketAddr {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "no `{marker}`");
            if let Some((_, rest)) = line.split_once(marker) {
                return rest.trim().parse().unwrap();
            }
        }
    };
    let listen = addr(") on http://");
    let admin = addr("admin API on http://");
    // Drain stderr from here on (accept errors are logged), so the
    // gateway never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stderr.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });

    // Flood until the gateway holds (nearly) every descriptor it may open.
    let mut flood = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_fds(pid) < 126 {
        assert!(
            Instant::now() < deadline,
            "the flood never filled the gateway's descriptors"
        );
        for _ in 0..8 {
            if let Ok(s) = TcpStream::connect(listen) {
                flood.push(s);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A pending admin connection: every accept on that listener fails now.
    let _pending = TcpStream::connect(admin).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    std::thread::sleep(Duration::from_secs(2));
    let used = (cpu_ticks(pid) - c0) as f64 / ticks_per_second() as f64;
    let share = used / t0.elapsed().as_secs_f64();
    assert!(
        share < 0.25,
        "the gateway used {:.0}% of a core while out of descriptors",
        share * 100.0
    );

    // Descriptors back: both listeners serve again.
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let hello = get(listen, "/hello").unwrap_or_default();
        let status = get(admin, "/status").unwrap_or_default();
        if hello.starts_with("HTTP/1.1 200") && status.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not serving again: {hello:?} {status:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
