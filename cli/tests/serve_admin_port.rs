//! `gatefold serve` when the admin API's default port 9901 is taken: without
//! `--admin` it says so and serves anyway (admin API on a free loopback port
//! it prints); with an explicit `--admin` on a taken port it fails clearly.
//!
//! 9901 is held for the whole test process: bound here when it is free, and
//! when it is not, something else on the machine holds it, which is the same
//! situation for the gateway.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

const QUICKSTART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/quickstart");

/// Makes sure 127.0.0.1:9901 is taken until the process ends.
fn hold_9901() {
    static HELD: OnceLock<Option<TcpListener>> = OnceLock::new();
    HELD.get_or_init(|| TcpListener::bind("127.0.0.1:9901").ok());
    assert!(
        TcpListener::bind("127.0.0.1:9901").is_err(),
        "9901 should be taken now"
    );
}

/// A `gatefold serve` child, killed when dropped.
struct Serve {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatefold"))
            .arg("serve")
            .arg(QUICKSTART)
            .args(["--listen", "127.0.0.1:0", "--no-access-log"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Serve { child, stderr }
    }

    /// Stderr lines until one contains `marker` (that one included), or
    /// every line when the process ends first.
    fn lines_until(&self, marker: &str) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(20)) {
            let done = line.contains(marker);
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    }
}

/// The address printed after `prefix` on one of `lines`.
fn printed_addr(lines: &[String], prefix: &str) -> SocketAddr {
    lines
        .iter()
        .find_map(|l| l.split_once(prefix))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no `{prefix}ADDR` in {lines:#?}"))
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serves_with_the_admin_api_elsewhere_when_9901_is_taken() {
    hold_9901();
    let serve = Serve::start(&[]);
    let lines = serve.lines_until("admin API on http://");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("127.0.0.1:9901") && l.contains("taken")),
        "says that 9901 is taken: {lines:#?}"
    );
    let listen = printed_addr(&lines, " on http://");
    let admin = printed_addr(&lines, "admin API on http://");
    assert_ne!(admin.port(), 9901);
    assert!(admin.ip().is_loopback(), "{admin}");
    let hello = get(listen, "/hello");
    assert!(hello.starts_with("HTTP/1.1 200"), "{hello}");
    let status = get(admin, "/status");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(status.contains("\"config_hash\""), "{status}");
}

#[test]
fn an_explicit_admin_address_that_is_taken_still_fails() {
    hold_9901();
    let mut serve = Serve::start(&["--admin", "127.0.0.1:9901"]);
    let lines = serve.lines_until("admin API on http://");
    let exit = serve.child.wait().unwrap();
    assert_eq!(exit.code(), Some(1), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("cannot listen on 127.0.0.1:9901 (admin)") && l.contains("--admin")),
        "{lines:#?}"
    );
}
