//! The echo upstream: a small HTTP/1.x server on a free loopback port that
//! records every request it receives and answers `200 echo:NAME`.
//!
//! Request headers steer it (the gateway forwards them):
//! `x-echo-status: N` answers N, `x-echo-delay-ms: N` waits first,
//! `x-echo-header: name: value` adds a response header (repeatable),
//! `x-echo-body-size: N` answers a body of N bytes. `GET /healthz` answers
//! 200 and is not recorded (health checks run on their own schedule).
//! Keep-alive, `content-length` and chunked request bodies are handled, as
//! every target's proxy may use any of them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the echo upstream received it.
#[derive(Debug, Clone)]
pub struct Got {
    /// The echo's name (`a`, `b`).
    pub echo: String,
    pub method: String,
    /// The request target as received (path and query).
    pub target: String,
    /// Header lines in order, names as received.
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
}

impl Got {
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// Every value of `name` (ignoring case), joined with `, `.
    pub fn header(&self, name: &str) -> Option<String> {
        crate::client::joined(&self.headers, name)
    }
}

/// A running echo upstream; stops accepting when dropped.
pub struct Echo {
    pub name: String,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Got>>>,
    stop: Arc<AtomicBool>,
}

impl Echo {
    /// Starts one on a free port, recording into `log` (shared by several
    /// echoes, so the order across them is kept).
    pub fn start(name: &str, log: Arc<Mutex<Vec<Got>>>) -> std::io::Result<Echo> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (n, l, s) = (name.to_string(), log.clone(), stop.clone());
        std::thread::Builder::new()
            .name(format!("echo-{name}"))
            .spawn(move || {
                for stream in listener.incoming() {
                    if s.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (n, l) = (n.clone(), l.clone());
                    std::thread::spawn(move || serve(stream, &n, &l));
                }
            })?;
        Ok(Echo {
            name: name.to_string(),
            addr,
            log,
            stop,
        })
    }

    /// The shared log.
    pub fn log(&self) -> &Arc<Mutex<Vec<Got>>> {
        &self.log
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// Serves one connection until it closes.
fn serve(stream: TcpStream, name: &str, log: &Mutex<Vec<Got>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let Some((got, keep_alive)) = read_request(&mut reader, name) else {
            return;
        };
        let header = |n: &str| got.header(n);
        let health = got.method == "GET" && got.path() == "/healthz";
        if !health {
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(got.clone());
        }
        if let Some(ms) = header("x-echo-delay-ms").and_then(|v| v.parse().ok()) {
            std::thread::sleep(Duration::from_millis(ms));
        }
        let status: u16 = header("x-echo-status")
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        let body = match header("x-echo-body-size").and_then(|v| v.parse::<usize>().ok()) {
            Some(n) => vec![b'e'; n],
            None => format!("echo:{name}").into_bytes(),
        };
        let mut head = format!("HTTP/1.1 {status} Echo\r\nx-echo: {name}\r\n");
        for (n, v) in &got.headers {
            if n.eq_ignore_ascii_case("x-echo-header") {
                head.push_str(v);
                head.push_str("\r\n");
            }
        }
        let bodiless = status < 200 || status == 204 || status == 304;
        if !bodiless {
            head.push_str(&format!(
                "content-type: text/plain\r\ncontent-length: {}\r\n",
                body.len()
            ));
        }
        if !keep_alive {
            head.push_str("connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if !bodiless && got.method != "HEAD" {
            bytes.extend_from_slice(&body);
        }
        if out.write_all(&bytes).is_err() || !keep_alive {
            return;
        }
    }
}

/// Reads one request: what was received, and whether the connection stays
/// open after the answer.
fn read_request(reader: &mut BufReader<TcpStream>, name: &str) -> Option<(Got, bool)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.trim_end().split(' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let version = parts.next().unwrap_or("HTTP/1.0").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let find = |n: &str| crate::client::joined(&headers, n);
    let chunked =
        find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut body_len = 0;
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?.trim(), 16).ok()?;
            if n == 0 {
                // Trailers, then the empty line.
                loop {
                    let mut t = String::new();
                    reader.read_line(&mut t).ok()?;
                    if t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            body_len += n;
        }
    } else if let Some(n) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut left = n;
        let mut buf = [0u8; 16 * 1024];
        while left > 0 {
            let take = left.min(buf.len());
            reader.read_exact(&mut buf[..take]).ok()?;
            left -= take;
        }
        body_len = n;
    }
    let connection = find("connection").unwrap_or_default().to_ascii_lowercase();
    let keep_alive = if version == "HTTP/1.1" {
        !connection.contains("close")
    } else {
        connection.contains("keep-alive")
    };
    Some((
        Got {
            echo: name.to_string(),
            method,
            target,
            headers,
            body_len,
        },
        keep_alive,
    ))
}
