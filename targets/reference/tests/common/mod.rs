//! Shared helpers for the socket tests: upstreams the tests start on
//! 127.0.0.1, a gateway on a free port with a manual clock, and a client.

use bytes::Bytes;
use gatefold_compiler::ir::ValidIr;
use gatefold_target_reference::gateway::access_log::AccessLog;
use gatefold_target_reference::gateway::clock::ManualClock;
use gatefold_target_reference::gateway::secrets::MapSecrets;
use gatefold_target_reference::gateway::{Gateway, Options};
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// 2027-01-15T08:00:00Z: where every test clock starts.
pub const T0: u64 = 1_800_000_000;

/// An HTTP server standing in for an upstream. It answers every request
/// with a JSON echo of what it received; request headers steer it:
/// `x-test-status: N` (answer N), `x-test-delay-ms: N`, `x-test-hang`
/// (never answer), `x-test-stall-body` (send the head, never finish the
/// body), `x-test-header: name=value` (add a response header).
/// `GET /healthz` answers 200 while `healthy` is set, else 500;
/// `GET /health-status/N` answers N; `GET /health-delay/MS` answers 200
/// after MS milliseconds. These health paths are not counted in `hits`;
/// the `host` each one was asked with is kept in `health_hosts` (when the
/// answer is sent).
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub healthy: Arc<AtomicBool>,
    pub health_hosts: Arc<Mutex<Vec<String>>>,
    stop: watch::Sender<bool>,
}

impl Upstream {
    pub async fn start(name: &str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Upstream::serve(name, listener)
    }

    fn serve(name: &str, listener: TcpListener) -> Upstream {
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let healthy = Arc::new(AtomicBool::new(true));
        let health_hosts = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = watch::channel(false);
        let state = Echo {
            name: name.to_string(),
            hits: hits.clone(),
            healthy: healthy.clone(),
            health_hosts: health_hosts.clone(),
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    a = listener.accept() => {
                        let Ok((stream, _)) = a else { continue };
                        let state = state.clone();
                        let mut conn_stopped = stopped.clone();
                        tokio::spawn(async move {
                            let svc = service_fn(move |req| {
                                let state = state.clone();
                                async move { Ok::<_, Infallible>(echo(req, &state).await) }
                            });
                            let conn = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), svc);
                            tokio::select! {
                                _ = conn => {}
                                _ = conn_stopped.changed() => {}
                            }
                        });
                    }
                    _ = stopped.changed() => return,
                }
            }
        });
        Upstream {
            addr,
            hits,
            healthy,
            health_hosts,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops listening and drops every open connection.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// [`Upstream::stop`], then waits until connecting is refused (the
    /// listener is closed by its task, a moment later).
    pub async fn stop_and_wait(&self) {
        self.stop();
        let addr = self.addr;
        eventually("the upstream stops listening", || async move {
            tokio::net::TcpStream::connect(addr).await.is_err()
        })
        .await;
    }

    /// How many health checks were answered so far.
    pub fn health_checks(&self) -> usize {
        self.health_hosts.lock().unwrap().len()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

type TestBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// What the echo upstream's connections share.
#[derive(Clone)]
struct Echo {
    name: String,
    hits: Arc<AtomicUsize>,
    healthy: Arc<AtomicBool>,
    health_hosts: Arc<Mutex<Vec<String>>>,
}

/// The answer to a health path, or `None` for any other path.
async fn health(req: &Request<Incoming>, state: &Echo) -> Option<Response<TestBody>> {
    let path = req.uri().path();
    let status = if path == "/healthz" {
        if state.healthy.load(Ordering::SeqCst) {
            200
        } else {
            500
        }
    } else if let Some(n) = path.strip_prefix("/health-status/") {
        n.parse().ok()?
    } else if let Some(ms) = path.strip_prefix("/health-delay/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().ok()?)).await;
        200
    } else {
        return None;
    };
    let host = req
        .headers()
        .get("host")
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .unwrap_or_default();
    state.health_hosts.lock().unwrap().push(host);
    Some(
        Response::builder()
            .status(status)
            .header("location", "/elsewhere")
            .body(Full::new(Bytes::from_static(b"health")).boxed())
            .unwrap(),
    )
}

async fn echo(req: Request<Incoming>, state: &Echo) -> Response<TestBody> {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if let Some(resp) = health(&req, state).await {
        return resp;
    }
    let name = state.name.as_str();
    state.hits.fetch_add(1, Ordering::SeqCst);
    let status = header("x-test-status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(200u16);
    if let Some(ms) = header("x-test-delay-ms").and_then(|s| s.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if header("x-test-hang").is_some() {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let extra = header("x-test-header");
    let stall = header("x-test-stall-body").is_some();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in req.headers() {
        headers
            .entry(k.to_string())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let doc = json!({
        "upstream": name,
        "method": method,
        "path": path,
        "query": query,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut resp = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-upstream", name)
        .header("x-powered-by", "test-upstream");
    if let Some((k, v)) = extra.as_deref().and_then(|e| e.split_once('=')) {
        resp = resp.header(k, v);
    }
    if stall {
        return resp.body(BodyExt::boxed(Stall(false))).unwrap();
    }
    resp.body(Full::new(Bytes::from(doc.to_string())).boxed())
        .unwrap()
}

/// A body that sends one chunk and then never another.
struct Stall(bool);

impl hyper::body::Body for Stall {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        if self.0 {
            std::task::Poll::Pending
        } else {
            self.0 = true;
            std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(
                b"{\"partial\":",
            )))))
        }
    }
}

/// A response as the client saw it.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body bytes received (all of it, unless `cut` says otherwise).
    pub body: Bytes,
    /// Why the body ended early, if it did (the connection broke mid-body).
    pub cut: Option<String>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of a header.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// What the echo upstream received in this header (first value).
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.json()["headers"][name][0].as_str().map(str::to_string)
    }

    pub fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.json(), json!({ "error": message }));
    }
}

/// How long one exchange (head and whole body) may take before the test
/// fails: generous, so a loaded machine passes, yet a hang fails the test
/// instead of holding CI.
pub const EXCHANGE_LIMIT: Duration = Duration::from_secs(20);

/// Sends one request on a fresh connection; the response body must arrive
/// whole (a body cut off mid-way fails the test).
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Resp {
    let r = send_cut(addr, method, path, headers, body).await;
    if let Some(e) = &r.cut {
        panic!(
            "{method} {path}: the body broke off after {} bytes: {e}",
            r.body.len()
        );
    }
    r
}

/// [`send`] for a response whose body may be cut off: what arrived, and
/// in `cut` why it stopped.
pub async fn send_cut(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Resp {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
        .unwrap();
    let exchange = async {
        let resp = client
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("{method} {path} does not reach the gateway: {e:?}"));
        let status = resp.status().as_u16();
        let (parts, mut body) = resp.into_parts();
        let mut bytes = Vec::new();
        let mut cut = None;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(d) = f.data_ref() {
                        bytes.extend_from_slice(d);
                    }
                }
                Err(e) => {
                    cut = Some(format!("{e:?}"));
                    break;
                }
            }
        }
        Resp {
            status,
            headers: parts.headers,
            body: Bytes::from(bytes),
            cut,
        }
    };
    tokio::time::timeout(EXCHANGE_LIMIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no whole answer within {EXCHANGE_LIMIT:?}"))
}

/// Sends one request over HTTP/1.1 from the client address `from` (any
/// 127.x.y.z is loopback on Linux: a second client with its own IP).
pub async fn send_from(
    from: std::net::Ipv4Addr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::new())).unwrap();
    let exchange = async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((from, 0))).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("a whole body").to_bytes();
        Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            cut: None,
        }
    };
    tokio::time::timeout(EXCHANGE_LIMIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no whole answer within {EXCHANGE_LIMIT:?}"))
}

/// Sends one GET over HTTP/2 (prior knowledge) with this `:authority` and
/// no `host` header.
pub async fn get_h2(addr: SocketAddr, authority: &str, path: &str) -> Resp {
    let req = Request::builder()
        .uri(format!("http://{authority}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert!(!req.headers().contains_key("host"));
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("a whole body").to_bytes();
        Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            cut: None,
        }
    };
    tokio::time::timeout(EXCHANGE_LIMIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path} over h2: no whole answer within {EXCHANGE_LIMIT:?}"))
}

pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    send(addr, "GET", path, &[], None).await
}

/// Compiles an inline spec, panicking with the diagnostics when it is wrong.
pub fn compile(yaml: &str) -> ValidIr {
    let compiled = gatefold_compiler::compile_str("test.yaml", yaml);
    match compiled.ir {
        Some(ir) => ir,
        None => panic!("the test spec does not compile:\n{}", compiled.render()),
    }
}

/// A gateway under test.
pub struct Gw {
    pub gw: Gateway,
    pub addr: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Gw {
    pub async fn get(&self, path: &str) -> Resp {
        get(self.addr, path).await
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        send(self.addr, method, path, headers, body).await
    }

    pub fn admin(&self) -> SocketAddr {
        self.gw.admin_addr().expect("admin API on")
    }

    pub fn log_lines(&self) -> Vec<Value> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Starts a gateway for `yaml` with these secrets and the test defaults
/// (manual clock at [`T0`], admin API on a free port, access log kept in
/// memory, 10s header and body read timeouts: tests of those timeouts set
/// their own).
pub async fn gateway_with(
    yaml: &str,
    secrets: &[(&str, &str)],
    tweak: impl FnOnce(&mut Options),
) -> Gw {
    gateway_ir(compile(yaml), secrets, tweak).await
}

/// [`gateway_with`] for an IR built some other way.
pub async fn gateway_ir(
    ir: ValidIr,
    secrets: &[(&str, &str)],
    tweak: impl FnOnce(&mut Options),
) -> Gw {
    let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut opts = Options::new("127.0.0.1:0".parse().unwrap());
    opts.admin = Some("127.0.0.1:0".parse().unwrap());
    opts.clock = clock.clone();
    opts.secrets = Arc::new(MapSecrets::new(secrets.iter().copied()));
    opts.access_log = AccessLog::Memory(log.clone());
    opts.header_read_timeout = Duration::from_secs(10);
    opts.body_read_timeout = Duration::from_secs(10);
    opts.drain_timeout = Duration::from_secs(5);
    tweak(&mut opts);
    let gw = Gateway::start(ir, opts).await.expect("the gateway starts");
    Gw {
        addr: gw.listen_addr(),
        gw,
        clock,
        log,
    }
}

pub async fn gateway(yaml: &str) -> Gw {
    gateway_with(yaml, &[], |_| {}).await
}

/// How long [`eventually`] waits: generous, for a loaded machine.
pub const EVENTUALLY_LIMIT: Duration = Duration::from_secs(20);

/// Polls `check` every 20ms until it holds or [`EVENTUALLY_LIMIT`] passes.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + EVENTUALLY_LIMIT;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// A one-api spec proxying everything under `/` to one upstream, with extra
/// YAML for the api's policies.
pub fn proxy_spec(upstream: &Upstream, api_policies: &str) -> String {
    let policies = if api_policies.is_empty() {
        String::new()
    } else {
        format!("    policies: [{api_policies}]\n")
    };
    format!(
        "gatefold: 1
upstreams:
  up:
    targets: [{{ url: {url} }}]
apis:
  main:
    upstream: up
{policies}    routes:
      all: {{ path: /* }}
",
        url = upstream.url()
    )
}
