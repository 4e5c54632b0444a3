//! A tiny HTTP/1.1 server for contract fakes: one thread per connection,
//! `connection: close`, on 127.0.0.1 with a port the kernel picks.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A request as the fake sees it.
pub struct Request {
    pub method: String,
    /// The path without its query.
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// Header names lowercased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    /// A fleet switch on a reference gateway's admin API: the whole config
    /// (`PUT /config`) or its changes (`PATCH /config`).
    pub fn is_switch(&self) -> bool {
        self.path == "/config" && matches!(self.method.as_str(), "PUT" | "PATCH")
    }
}

/// An answer; `None` from a handler: never answer (a timeout).
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// More header lines (name, value).
    pub headers: Vec<(String, String)>,
}

impl Response {
    pub fn json(status: u16, v: &serde_json::Value) -> Response {
        Response {
            status,
            content_type: "application/json; charset=utf-8".into(),
            body: v.to_string().into_bytes(),
            headers: Vec::new(),
        }
    }
}

/// A running server; stops accepting when dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(handler: impl Fn(&Request) -> Option<Response> + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let handler = handler.clone();
                std::thread::spawn(move || serve(conn, &*handler));
            }
        });
        Server { addr, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, handler: &(dyn Fn(&Request) -> Option<Response> + Send + Sync)) {
    let Ok(req) = read(&conn) else { return };
    let Some(resp) = handler(&req) else {
        // Hold the connection open, unanswered, until the client gives up.
        let mut sink = [0u8; 64];
        let _ = (&conn).read(&mut sink);
        return;
    };
    let reason = match resp.status {
        200 => "OK",
        201 => "Created",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Status",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n{}\r\n",
        resp.status,
        resp.content_type,
        if resp.status == 304 { 0 } else { resp.body.len() },
        resp.headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect::<String>()
    )
    .into_bytes();
    if resp.status != 304 {
        out.extend_from_slice(&resp.body);
    }
    let mut conn = conn;
    let _ = conn.write_all(&out);
    let _ = conn.flush();
}

fn read(conn: &TcpStream) -> std::io::Result<Request> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    Ok(Request {
        method,
        path: path.to_string(),
        query,
        headers,
        body,
    })
}
