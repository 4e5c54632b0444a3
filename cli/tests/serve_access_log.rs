//! `gatefold serve`'s access log on stdout is in time order, across worker
//! threads: each worker used to buffer its own lines and write them every
//! 200ms, so one worker's batch landed after later lines of another.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const QUICKSTART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/quickstart");

/// How long the gateway may take to start or stop on a loaded machine.
const LIMIT: Duration = Duration::from_secs(20);

/// The child, killed when dropped (a failed assertion included).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `n` keep-alive requests for /hello on one connection.
fn hammer(addr: SocketAddr, n: usize) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 4096];
    for i in 0..n {
        let close = if i + 1 == n {
            "connection: close\r\n"
        } else {
            ""
        };
        write!(s, "GET /hello HTTP/1.1\r\nhost: localhost\r\n{close}\r\n").unwrap();
        // The mock's answer is small: one read holds it whole (ends in `}`).
        let mut got = Vec::new();
        while !got.ends_with(b"}") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed early");
            got.extend_from_slice(&buf[..n]);
        }
    }
}

#[test]
#[cfg(unix)]
fn access_log_lines_are_in_time_order_across_workers() {
    let child = Command::new(env!("CARGO_BIN_EXE_gatefold"))
        .args(["serve", QUICKSTART, "--listen", "127.0.0.1:0"])
        .args(["--admin", "127.0.0.1:0", "--workers", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Guard(child);
    // Its stderr, line by line, read on a thread (and drained to the end)
    // so waiting for the address has a deadline.
    let stderr = child.0.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + LIMIT;
    let addr: SocketAddr = loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the gateway printed no address (within 20s, or before it exited)");
        if let Some((_, rest)) = line.split_once("routes (config") {
            let (_, addr) = rest.split_once("on http://").unwrap();
            break addr.trim().parse().unwrap();
        }
    };
    // Read stdout all along: a full pipe would block the gateway.
    let mut stdout = child.0.stdout.take().unwrap();
    let (tx, logged) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        let _ = tx.send(out);
    });
    // Many connections, spread by the kernel over the four workers, each
    // sending requests one after another for a while.
    let clients: Vec<_> = (0..16)
        .map(|_| std::thread::spawn(move || hammer(addr, 60)))
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Stopped, it closes stdout: a gateway that does not stop fails the
    // test instead of holding it.
    let out = logged
        .recv_timeout(LIMIT)
        .expect("the gateway did not stop within 20s of SIGTERM");
    let times: Vec<String> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["time"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(times.len(), 16 * 60, "one line per request");
    // RFC 3339 UTC with a fixed width: text order is time order.
    for pair in times.windows(2) {
        assert!(
            pair[0] <= pair[1],
            "out of order: {} then {}",
            pair[0],
            pair[1]
        );
    }
}
