//! Reference gateways (`gatefold serve`) as the fleet's fault tests run
//! them: real processes on loopback ports they pick themselves, their
//! stderr kept (to check no secret is logged), and a forwarder that puts a
//! fault between gatefold and a gateway's admin API.

use super::http::{Request, Response};
use super::LIMIT;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

/// The admin token every gateway here requires; it must never be printed.
pub const TOKEN: &str = "fleet-faults-token-7d2a41";

/// A child process killed (and reaped) when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A reference gateway, its admin API's address and what it logged.
pub struct Gateway {
    _child: Guard,
    pub admin: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    /// `gatefold serve spec` on free loopback ports, with `env` set.
    pub fn start(spec: &Path, env: &[(&str, &str)]) -> Gateway {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatefold"));
        cmd.args(["serve", spec.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(["--workers", "1"])
            .env("GATEFOLD_ADMIN_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = Guard(cmd.spawn().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        let stderr = child.0.stderr.take().unwrap();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                kept.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + LIMIT;
        let admin = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "gateway never said where its admin API is: {:?}",
                    log.lock().unwrap()
                )
            });
            if let Some(rest) = line.strip_prefix("gatefold: admin API on http://") {
                break rest.trim().parse().unwrap();
            }
        };
        Gateway {
            _child: child,
            admin,
            log,
        }
    }

    /// `METHOD path` on the admin API with the token: status and body.
    pub fn admin(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let (status, _, body) = send(self.admin, method, path, &[], body.as_bytes());
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The running config, byte for byte.
    pub fn config(&self) -> String {
        let (status, body) = self.admin("GET", "/config", "");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The hash it says it serves (`GET /status`).
    pub fn hash(&self) -> String {
        let (_, body) = self.admin("GET", "/status", "");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["config_hash"].as_str().unwrap().to_string()
    }

    /// Everything it wrote on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// One HTTP/1.1 request with the token and `headers`: status, content
/// type, body.
fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {TOKEN}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete answer");
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, content_type, out[split + 4..].to_vec())
}

/// `req`, as a fake admin API received it, passed on to the real one at
/// `admin` with the headers the fleet's compare-and-swap uses; its answer.
pub fn forward(admin: SocketAddr, req: &Request) -> Response {
    let headers: Vec<(&str, &str)> = ["if-match", "gatefold-manifest", "content-type"]
        .iter()
        .filter_map(|h| Some((*h, req.headers.get(*h)?.as_str())))
        .collect();
    let (status, content_type, body) = send(admin, &req.method, &req.path, &headers, &req.body);
    Response {
        status,
        content_type,
        body,
        headers: Vec::new(),
    }
}

/// A gate a forwarder's thread waits at until the test opens it.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Gate {
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }

    /// Waits until opened (or `LIMIT`, so a failing test cannot hang).
    pub fn wait(&self) {
        let open = self.open.lock().unwrap();
        let _ = self
            .changed
            .wait_timeout_while(open, LIMIT, |o| !*o)
            .unwrap();
    }
}
