//! Shared helpers for the socket tests: upstreams the tests start on
//! 127.0.0.1, a gateway on a free port with a manual clock, and a client.
#![allow(dead_code)]

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
/// `GET /healthz` answers 200 while `healthy` is set, else 500.
pub struct Upstream {
    pub name: String,
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub healthy: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
}

impl Upstream {
    pub async fn start(name: &str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Upstream::serve(name, listener)
    }

    /// Serves on an address that was used before (a restarted target).
    pub async fn start_on(name: &str, addr: SocketAddr) -> Upstream {
        let listener = TcpListener::bind(addr).await.unwrap();
        Upstream::serve(name, listener)
    }

    fn serve(name: &str, listener: TcpListener) -> Upstream {
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let healthy = Arc::new(AtomicBool::new(true));
        let (stop, mut stopped) = watch::channel(false);
        let (h, ok, n) = (hits.clone(), healthy.clone(), name.to_string());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    a = listener.accept() => {
                        let Ok((stream, _)) = a else { continue };
                        let (h, ok, n) = (h.clone(), ok.clone(), n.clone());
                        let mut conn_stopped = stopped.clone();
                        tokio::spawn(async move {
                            let svc = service_fn(move |req| {
                                let (h, ok, n) = (h.clone(), ok.clone(), n.clone());
                                async move { Ok::<_, Infallible>(echo(req, &n, &h, &ok).await) }
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
            name: name.to_string(),
            addr,
            hits,
            healthy,
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
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

type TestBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn echo(
    req: Request<Incoming>,
    name: &str,
    hits: &AtomicUsize,
    healthy: &AtomicBool,
) -> Response<TestBody> {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if req.uri().path() == "/healthz" {
        let status = if healthy.load(Ordering::SeqCst) {
            200
        } else {
            500
        };
        return Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(b"health")).boxed())
            .unwrap();
    }
    hits.fetch_add(1, Ordering::SeqCst);
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
    pub body: Bytes,
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

/// Sends one request on a fresh connection.
pub async fn send(
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
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .expect("the gateway answers within 10s")
        .expect("the request reaches the gateway");
    let status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Resp {
        status,
        headers: parts.headers,
        body,
    }
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
/// memory, 300ms header and body read timeouts).
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
    opts.header_read_timeout = Duration::from_millis(300);
    opts.body_read_timeout = Duration::from_millis(300);
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

/// Polls `check` every 20ms until it holds or 5s pass.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
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
