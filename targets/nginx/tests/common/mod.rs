//! Shared helpers: compile a spec to nginx, check it (`nginx -t`, `luajit
//! -bl`), run real nginx on a free loopback port with an echo upstream, and
//! a small HTTP/1.1 client. Everything stops when dropped.

use gatefold_compiler::ir::ValidIr;
use gatefold_compiler::target::{check, Options, Output, Target};
use gatefold_runtime::{Luajit, Nginx, NginxInstance};
use gatefold_target_nginx::{Mode, Nginx as NginxTarget};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Compiles spec text (panics with the diagnostics when it is not valid).
pub fn compile(text: &str) -> ValidIr {
    let compiled = gatefold_compiler::compile_str("spec.yaml", text);
    match compiled.ir {
        Some(ir) => ir,
        None => panic!("spec does not compile: {:?}", compiled.diagnostics),
    }
}

/// Compiles a spec file or folder.
pub fn compile_path(path: &str) -> ValidIr {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    let compiled = gatefold_compiler::compile_path(&root);
    match compiled.ir {
        Some(ir) => ir,
        None => panic!("{path} does not compile: {:?}", compiled.diagnostics),
    }
}

/// Emits for nginx after the capability check (which must find no error).
pub fn emit(ir: &ValidIr, options: &Options) -> Output {
    let target = NginxTarget::default();
    let gaps = check(&target, ir, options);
    assert!(gaps.iter().all(|g| !g.error), "refused: {gaps:?}");
    target.emit(ir, options)
}

/// Emits in http-only mode.
pub fn emit_http_only(ir: &ValidIr) -> Output {
    NginxTarget {
        mode: Mode::HttpOnly,
    }
    .emit(ir, &Options::default())
}

/// Writes an output into `dir` (an nginx prefix).
pub fn write(output: &Output, dir: &Path) {
    for f in &output.files {
        let path = dir.join(f.path.as_str());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &f.bytes).unwrap();
    }
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
}

/// The entry file's text.
pub fn conf(output: &Output) -> String {
    String::from_utf8(output.files[0].bytes.clone()).unwrap()
}

/// `nginx -t` on the output and `luajit -bl` on each Lua file.
pub fn check_output(output: &Output) {
    let dir = tempfile::tempdir().unwrap();
    write(output, dir.path());
    Nginx::locate()
        .unwrap()
        .check(dir.path(), &conf(output))
        .unwrap_or_else(|e| panic!("nginx -t: {e}\n{}", conf(output)));
    let luajit = Luajit::locate().unwrap();
    for f in &output.files {
        if f.path.as_str().ends_with(".lua") {
            luajit
                .check(&dir.path().join(f.path.as_str()))
                .unwrap_or_else(|e| panic!("{}: {e}", f.path));
        }
    }
}

/// A free port on 127.0.0.1, from outside the ephemeral range
/// (`gatefold_runtime::launch::free_addr`).
pub fn free_addr() -> SocketAddr {
    gatefold_runtime::launch::free_addr().unwrap()
}

/// What the echo upstream received.
#[derive(Debug, Clone)]
pub struct Received {
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// An HTTP/1.1 server on 127.0.0.1 that answers 200 `upstream` to every
/// request and keeps what it received.
pub struct Echo {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl Echo {
    pub fn start() -> Echo {
        Echo::start_on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    pub fn start_on(listener: TcpListener) -> Echo {
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(conn, s));
            }
        });
        Echo { addr, seen, stop }
    }

    /// The last request received.
    pub fn last(&self) -> Received {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the upstream got a request")
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, seen: Arc<Mutex<Vec<Received>>>) {
    conn.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.trim_end().splitn(3, ' ');
        let _method = parts.next();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        seen.lock().unwrap().push(Received {
            target,
            headers,
            body,
        });
        let text = "upstream";
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-upstream: yes\r\nx-remove-me: 1\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// A response as the client saw it.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str("host: localhost\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        req.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    req.push_str("connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse(&raw)
}

pub fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Resp {
    request(addr, "GET", target, headers, b"")
}

fn parse(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..nl]).trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + size]);
            rest = &rest[nl + 2 + size + 2..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    }
}

/// nginx serving `output` on `listen` (kept with its prefix dir).
pub struct Running {
    pub addr: SocketAddr,
    pub instance: Option<NginxInstance>,
    /// The prefix: held until nginx has stopped, then removed.
    #[allow(dead_code)]
    pub dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(i) = self.instance.take() {
            let _ = i.stop(Duration::from_secs(10));
        }
    }
}

/// Compiles `ir` for a free port, starts nginx with `env` set, waits until it accepts.
pub fn run(ir: &ValidIr, env: &[(&str, &str)]) -> Running {
    let options = Options {
        listen: Some(free_addr()),
        ..Options::default()
    };
    run_with(ir, &options, env, |_| {})
}

/// [`run`] with `options` (listen set), after `prepare` has seen the prefix.
pub fn run_with(
    ir: &ValidIr,
    options: &Options,
    env: &[(&str, &str)],
    prepare: impl FnOnce(&Path),
) -> Running {
    let addr = options.listen.expect("a listen address");
    let output = emit(ir, options);
    let dir = tempfile::tempdir().unwrap();
    write(&output, dir.path());
    prepare(dir.path());
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    let instance = Nginx::locate()
        .unwrap()
        .start(dir.path(), &conf(&output), &[addr])
        .unwrap_or_else(|e| panic!("nginx start: {e}\n{}", conf(&output)));
    Running {
        addr,
        instance: Some(instance),
        dir,
    }
}

/// Replaces `http://127.0.0.1:9000` style upstream URLs in a spec.
pub fn with_upstream(spec: &str, from: &str, echo: &Echo) -> String {
    spec.replace(from, &format!("http://{}", echo.addr))
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// base64url without padding, as JWTs write their parts.
pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An HS256 token of exactly these header and payload bytes (a secret of
/// at most 64 bytes).
pub fn hs256_token(secret: &str, header: &[u8], payload: &[u8]) -> String {
    let message = format!("{}.{}", b64url(header), b64url(payload));
    let sig = hmac_sha256(secret.as_bytes(), message.as_bytes());
    format!("{message}.{}", b64url(&sig))
}
