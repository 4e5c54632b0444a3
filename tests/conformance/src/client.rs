//! A raw HTTP/1.1 client: sends a scenario's request byte for byte (so
//! hostile paths and header values reach the gateway unchanged), one
//! request per connection, and reads the whole response.

use crate::scenario::Request;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response as received.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header lines in order, names as received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// Every value of `name` (ignoring case), joined with `, `.
    pub fn header(&self, name: &str) -> Option<String> {
        joined(&self.headers, name)
    }
}

/// Every value of header `name` in `headers`, joined with `, `.
pub fn joined(headers: &[(String, String)], name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// The bytes `request` sends.
pub fn encode(request: &Request) -> Vec<u8> {
    if let Some(raw) = &request.raw {
        return raw.as_bytes().to_vec();
    }
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.path);
    if let Some(host) = &request.host {
        head.push_str(&format!("host: {host}\r\n"));
    }
    for h in &request.headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("connection: close\r\n");
    let body: Option<Vec<u8>> = match (&request.body, request.body_size) {
        (Some(b), _) => Some(b.clone().into_bytes()),
        (None, Some(n)) => Some(vec![b'b'; n]),
        (None, None) => None,
    };
    let mut bytes;
    match body {
        Some(body) if request.chunked => {
            head.push_str("transfer-encoding: chunked\r\n\r\n");
            bytes = head.into_bytes();
            for chunk in body.chunks(64 * 1024) {
                bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                bytes.extend_from_slice(chunk);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
        }
        Some(body) => {
            head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
            bytes = head.into_bytes();
            bytes.extend_from_slice(&body);
        }
        None => {
            head.push_str("\r\n");
            bytes = head.into_bytes();
        }
    }
    bytes
}

/// Sends `request` to `addr` and reads the response (the server closes
/// the connection after it: the request says `connection: close`).
pub fn send(addr: SocketAddr, request: &Request) -> Result<Response, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    exchange(&mut stream, request)
}

/// Writes the request on `stream` and reads the response.
pub fn exchange(
    stream: &mut (impl Read + Write + Timed),
    request: &Request,
) -> Result<Response, String> {
    // A gateway may answer (413, 401) and close before reading a large
    // body: a failed write is not an error while a response can be read.
    let _ = stream.write_all(&encode(request));
    let _ = stream.flush();
    let mut data = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                data.extend_from_slice(&buf[..n]);
                // Done once the framing says so, after a short grace for
                // the server to close: a server finishes a request (a
                // cache entry written, say) before it closes, and the next
                // request may count on that; a server that waits for the
                // client to close first (Envoy's delayed close, 1 s) costs
                // the grace, not a second.
                if complete(&data, &request.method) {
                    drain_until_close(stream, CLOSE_GRACE);
                    break;
                }
            }
            // A signal (a runtime's child exiting) interrupted the read:
            // nothing was lost, read again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // A reset after the response (the unread body) still leaves
            // the response: parse what came.
            Err(e) if !data.is_empty() => {
                let _ = e;
                break;
            }
            Err(e) => return Err(format!("reading the response: {e}")),
        }
    }
    parse(&data, &request.method)
}

/// How long a complete response's connection is given to close.
const CLOSE_GRACE: Duration = Duration::from_millis(150);

/// A stream whose reads can be given a time limit.
pub trait Timed {
    /// Each read from now on waits at most `limit`.
    fn limit_reads(&self, limit: Duration);
}

impl Timed for TcpStream {
    fn limit_reads(&self, limit: Duration) {
        let _ = self.set_read_timeout(Some(limit));
    }
}

/// Reads (and drops) what follows until the server closes or `grace`
/// passes.
fn drain_until_close(stream: &mut (impl Read + Timed), grace: Duration) {
    stream.limit_reads(grace);
    let deadline = std::time::Instant::now() + grace;
    let mut buf = [0u8; 4096];
    while std::time::Instant::now() < deadline {
        match stream.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Whether `data` holds a whole final response whose end its framing
/// marks (no body, a content-length, or a last chunk); a response read to
/// the connection's end, or an interim 1xx, is not complete before it.
fn complete(data: &[u8], method: &str) -> bool {
    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&data[..end]);
    let mut lines = head.split("\r\n");
    let status: u16 = match lines.next().and_then(|l| l.split(' ').nth(1)?.parse().ok()) {
        Some(s) => s,
        None => return false,
    };
    if status < 200 {
        return false;
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect();
    let rest = &data[end + 4..];
    if method == "HEAD" || status == 204 || status == 304 {
        return true;
    }
    if joined(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return dechunk(rest).is_some();
    }
    match joined(&headers, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(n) => rest.len() >= n,
        None => false,
    }
}

/// Parses one response; `method` decides whether it has a body (HEAD).
pub fn parse(data: &[u8], method: &str) -> Result<Response, String> {
    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(format!(
            "no complete response head in {} bytes: {:?}",
            data.len(),
            String::from_utf8_lossy(&data[..data.len().min(200)])
        ));
    };
    let head = String::from_utf8_lossy(&data[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect();
    let rest = &data[end + 4..];
    let bodiless = method == "HEAD" || status < 200 || status == 204 || status == 304;
    let body = if bodiless {
        Vec::new()
    } else if joined(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest).ok_or("a truncated chunked body")?
    } else if let Some(n) = joined(&headers, "content-length").and_then(|v| v.parse().ok()) {
        if rest.len() < n {
            return Err(format!("body of {} bytes, content-length {n}", rest.len()));
        }
        rest[..n].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
