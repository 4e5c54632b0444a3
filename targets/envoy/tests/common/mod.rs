//! Shared helpers for the Envoy target's tests: compile a spec, check its
//! output with `envoy --mode validate`, run it on real Envoy on 127.0.0.1
//! free ports, an echo upstream and a small HTTP/1.1 client (std only).

use gatefold_compiler::ir::ValidIr;
use gatefold_compiler::target::{check, Options, Output, Target};
use gatefold_runtime::{Envoy, EnvoyConfig, EnvoyInstance};
use gatefold_target_envoy::{Envoy as EnvoyTarget, Layout};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Compiles a spec text, panicking with the diagnostics when it does not.
pub fn compile(yaml: &str) -> ValidIr {
    let compiled = gatefold_compiler::compile_str("test.yaml", yaml);
    match compiled.ir {
        Some(ir) => ir,
        None => panic!("the test spec does not compile:\n{}", compiled.render()),
    }
}

/// Emits `ir` for Envoy after checking that the target accepts it.
pub fn emit(ir: &ValidIr, layout: Layout, options: &Options) -> Output {
    let target = EnvoyTarget { layout };
    let gaps = check(&target, ir, options);
    assert!(
        gaps.iter().all(|g| !g.error),
        "the target refuses the spec: {gaps:?}"
    );
    target.emit(ir, options)
}

/// The output as the runtime's configuration.
pub fn config(out: &Output) -> EnvoyConfig {
    let file = |name: &str| {
        out.files
            .iter()
            .find(|f| f.path.as_str() == name)
            .map(|f| String::from_utf8(f.bytes.clone()).unwrap())
    };
    EnvoyConfig {
        bootstrap: file(gatefold_target_envoy::BOOTSTRAP).expect("a bootstrap"),
        lds: file(gatefold_target_envoy::LDS),
        cds: file(gatefold_target_envoy::CDS),
    }
}

/// Envoy, resolving host names by asking a loopback port where nothing
/// listens: a spec's host name (kitchen-sink's `reports.internal.example`,
/// `nowhere.invalid`) fails to resolve at once, and no query leaves the
/// machine.
pub fn envoy() -> Envoy {
    Envoy::locate()
        .expect("Envoy is installed (scripts/install-runtimes.sh)")
        .with_resolver(vec![free_addr()])
}

/// A free port on 127.0.0.1, from outside the ephemeral range
/// (`gatefold_runtime::launch::free_addr`).
pub fn free_addr() -> SocketAddr {
    gatefold_runtime::launch::free_addr().unwrap()
}

/// A scratch directory removed on drop.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gatefold-envoy-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running gateway: Envoy serving a spec on a free port.
pub struct Gateway {
    pub addr: SocketAddr,
    _envoy: EnvoyInstance,
    _dir: Scratch,
}

/// Compiles `yaml`, starts Envoy with it on a free port; `env` is set for
/// the Envoy process (secrets).
pub fn serve(yaml: &str) -> Gateway {
    let ir = compile(yaml);
    serve_ir(&ir)
}

pub fn serve_ir(ir: &ValidIr) -> Gateway {
    let addr = free_addr();
    let options = Options {
        listen: Some(addr),
        ..Options::default()
    };
    let out = emit(ir, Layout::Dynamic, &options);
    let dir = Scratch::new("serve");
    let envoy = envoy()
        .start(&dir.0, &config(&out), &[addr])
        .unwrap_or_else(|e| panic!("Envoy does not start: {e}"));
    Gateway {
        addr,
        _envoy: envoy,
        _dir: dir,
    }
}

/// A response as the client saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Lower-case names; repeated headers keep every value in order.
    pub headers: BTreeMap<String, Vec<String>>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// What the echo upstream received (the body of a proxied answer).
    pub fn seen(&self) -> Value {
        assert!(
            self.header("x-upstream").is_some(),
            "not from the upstream: {self:?} {}",
            self.text()
        );
        self.json()
    }
}

/// Sends one HTTP/1.1 request (`connection: close`) and reads the answer.
pub fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str("host: gw.test\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty()
        && !headers.iter().any(|(k, _)| {
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
        })
    {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    read_reply(stream, method == "HEAD")
}

pub fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Reply {
    send(addr, "GET", target, headers, b"")
}

fn read_reply(stream: TcpStream, head_only: bool) -> Reply {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
        .parse()
        .unwrap();
    let headers = read_headers(&mut r);
    let body = if head_only {
        Vec::new()
    } else {
        read_body(&mut r, &headers)
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn read_headers(r: &mut impl BufRead) -> BTreeMap<String, Vec<String>> {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers
            .entry(k.trim().to_ascii_lowercase())
            .or_default()
            .push(v.trim().to_string());
    }
    headers
}

fn read_body(r: &mut impl BufRead, headers: &BTreeMap<String, Vec<String>>) -> Vec<u8> {
    let mut body = Vec::new();
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.iter().any(|v| v.contains("chunked")));
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if n == 0 {
                let mut end = String::new();
                let _ = r.read_line(&mut end);
                break;
            }
            let mut chunk = vec![0; n];
            r.read_exact(&mut chunk).unwrap();
            body.extend(chunk);
            let mut crlf = String::new();
            r.read_line(&mut crlf).unwrap();
        }
    } else if let Some(n) = headers
        .get("content-length")
        .and_then(|v| v[0].parse::<usize>().ok())
    {
        body.resize(n, 0);
        r.read_exact(&mut body).unwrap();
    } else {
        let _ = r.read_to_end(&mut body);
    }
    body
}

/// An echo upstream on 127.0.0.1: answers every request with JSON naming
/// the method, path (with query), headers and body length it received.
/// `x-test-status: N` picks the status, `x-test-delay-ms: N` waits first.
/// `/healthz` answers 200 while `healthy` is set, else 500.
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub healthy: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    pub fn start(name: &str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let healthy = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, ok, st, n) = (
            hits.clone(),
            healthy.clone(),
            stop.clone(),
            name.to_string(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, ok, n) = (h.clone(), ok.clone(), n.clone());
                std::thread::spawn(move || {
                    let _ = echo(conn, &h, &ok, &n);
                });
            }
        });
        Upstream {
            addr,
            hits,
            healthy,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn echo(
    conn: TcpStream,
    hits: &AtomicUsize,
    healthy: &AtomicBool,
    name: &str,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    let seen = Mutex::new(());
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let headers = read_headers(&mut r);
        let body = read_body_request(&mut r, &headers);
        let _guard = seen.lock();
        let (status, doc) = if target == "/healthz" {
            (
                if healthy.load(Ordering::SeqCst) {
                    200
                } else {
                    500
                },
                json!({}),
            )
        } else {
            hits.fetch_add(1, Ordering::SeqCst);
            if let Some(ms) = headers
                .get("x-test-delay-ms")
                .and_then(|v| v[0].parse::<u64>().ok())
            {
                std::thread::sleep(Duration::from_millis(ms));
            }
            let status = headers
                .get("x-test-status")
                .and_then(|v| v[0].parse::<u16>().ok())
                .unwrap_or(200);
            let hs: BTreeMap<&String, Value> = headers
                .iter()
                .map(|(k, v)| (k, if v.len() == 1 { json!(v[0]) } else { json!(v) }))
                .collect();
            (
                status,
                json!({
                    "method": method,
                    "path": target,
                    "headers": hs,
                    "body-length": body.len(),
                    "upstream": name,
                }),
            )
        };
        let text = doc.to_string();
        let reply = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\nx-upstream: {name}\r\nx-powered-by: echo\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        w.write_all(reply.as_bytes())?;
    }
}

fn read_body_request(r: &mut impl BufRead, headers: &BTreeMap<String, Vec<String>>) -> Vec<u8> {
    let has_length = headers.contains_key("content-length");
    let chunked = headers.contains_key("transfer-encoding");
    if has_length || chunked {
        read_body(r, headers)
    } else {
        Vec::new()
    }
}
