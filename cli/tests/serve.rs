//! `gatefold serve` as a user runs it: the quickstart spec on a free port,
//! a request, an access log line on stdout, SIGTERM, a clean exit.
//!
//! The gateway binds port 0 and the test reads the ports it got from its
//! start-up lines (no window in which another process could take a port
//! picked in advance), and a guard kills the child if an assertion fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the gateway may take to start or to stop: generous, for a
/// loaded machine.
const LIMIT: Duration = Duration::from_secs(20);

/// A child process killed (and reaped) when dropped, so a failed assertion
/// leaves no gateway running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The address after `prefix` in a line like `gatefold: ... on http://ADDR`.
fn addr_after(line: &str, prefix: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix(prefix)?;
    let at = rest.rfind("http://")?;
    rest[at + "http://".len()..].trim().parse().ok()
}

#[test]
#[cfg(unix)]
fn serve_answers_and_stops_on_sigterm() {
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/quickstart");
    let child = Command::new(env!("CARGO_BIN_EXE_gatefold"))
        .args(["serve", spec])
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Guard(child);
    // Its stderr, line by line, read on a thread so waiting has a deadline.
    let (tx, lines) = mpsc::channel();
    let stderr = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + LIMIT;
    let (mut listen, mut admin) = (None, None);
    let mut seen = Vec::new();
    while listen.is_none() || admin.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("gatefold serve never said where it listens: {seen:?}"));
        listen = listen.or_else(|| addr_after(&line, "gatefold: serving "));
        admin = admin.or_else(|| addr_after(&line, "gatefold: admin API on "));
        seen.push(line);
    }
    let (listen, admin) = (listen.unwrap(), admin.unwrap());
    assert_ne!(listen.port(), 0, "{seen:?}");
    assert_ne!(admin.port(), 0, "{seen:?}");

    let answer = get(listen, "/hello");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with(r#"{"message":"hello from gatefold"}"#),
        "{answer}"
    );
    let status = get(admin, "/status");
    assert!(status.contains("\"config_hash\""), "{status}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline + LIMIT,
            "gatefold serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    // The access log line was flushed on the way out.
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["route"], "hello.hello");
    assert_eq!(entry["status"], 200);
}

#[test]
fn serve_refuses_a_broken_spec() {
    let dir = std::env::temp_dir().join(format!("gatefold-serve-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gatefold.yaml");
    std::fs::write(
        &file,
        "gatefold: 1\napis:\n  a:\n    routes:\n      r: { path: nope }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gatefold"))
        .args(["serve", file.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(["--admin", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot be served"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
