//! Issue 11's hardening defects, each over real sockets on 127.0.0.1: the
//! gateway, an echo upstream and raw or hyper clients, all on ports bound
//! with port 0. The helpers are local to this file (the shared ones are
//! being reworked).

use bytes::Bytes;
use gatefold_compiler::ir::ValidIr;
use gatefold_target_reference::gateway::access_log::AccessLog;
use gatefold_target_reference::gateway::clock::ManualClock;
use gatefold_target_reference::gateway::secrets::MapSecrets;
use gatefold_target_reference::gateway::{watch, Gateway, Options};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// 2027-01-15T08:00:00Z: the gateway's (manual) clock in these tests.
const T0: u64 = 1_800_000_000;
/// The generous bound on anything that should happen "soon".
const SOON: Duration = Duration::from_secs(10);

// ---- helpers -------------------------------------------------------------

/// An upstream that answers every request with a JSON echo of its path,
/// query and headers, and an `x-upstream` header naming it.
struct Echo {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Echo {
    async fn start(name: &'static str) -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counted = counted.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        async move { Ok::<_, Infallible>(echo(name, req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Echo { addr, hits, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn echo(name: &str, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in req.headers() {
        headers
            .entry(k.to_string())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let doc = json!({
        "path": req.uri().path(),
        "query": req.uri().query(),
        "headers": headers,
    });
    Response::builder()
        .header("content-type", "application/json")
        .header("x-upstream", name)
        .body(Full::new(Bytes::from(doc.to_string())))
        .unwrap()
}

fn compile(yaml: &str) -> ValidIr {
    let compiled = gatefold_compiler::compile_str("test.yaml", yaml);
    match compiled.ir {
        Some(ir) => ir,
        None => panic!("the test spec does not compile:\n{}", compiled.render()),
    }
}

/// Test defaults: manual clock at [`T0`], admin API on a free loopback port,
/// access log in memory, one worker.
fn options() -> Options {
    let mut opts = Options::new("127.0.0.1:0".parse().unwrap());
    opts.admin = Some("127.0.0.1:0".parse().unwrap());
    opts.clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
    opts.access_log = AccessLog::Memory(Arc::new(Mutex::new(Vec::new())));
    opts.drain_timeout = Duration::from_secs(2);
    opts.workers = 1;
    opts
}

async fn start(yaml: &str, secrets: &[(&str, &str)], tweak: impl FnOnce(&mut Options)) -> Gateway {
    let mut opts = options();
    opts.secrets = Arc::new(MapSecrets::new(secrets.iter().copied()));
    tweak(&mut opts);
    Gateway::start(compile(yaml), opts)
        .await
        .expect("the gateway starts")
}

/// A response read off a raw connection.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// What the echo upstream received in this header (every value).
    fn upstream_header(&self, name: &str) -> Vec<String> {
        self.json()["headers"][name]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    }
}

/// Writes `request` as is on a new connection and reads the answer to the
/// end (the request should say `connection: close` or be HTTP/1.0).
async fn raw(addr: SocketAddr, request: &str) -> Reply {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        out
    };
    let out = tokio::time::timeout(SOON, exchange)
        .await
        .expect("the gateway answers and closes within 10s");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// `GET path` with `host: localhost`, these headers and `connection: close`.
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    raw(addr, &req).await
}

const JWT_SECRET: &str = "0123456789abcdef0123456789abcdef";

fn token(tenant: &str) -> String {
    let claims = json!({ "sub": "someone", "tenant": tenant, "exp": T0 + 600 });
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// An api behind a jwt whose `tenant` claim becomes `x-tenant`, with extra
/// policies after it and the upstreams' targets given.
fn tenant_spec(targets: &[&Echo], upstream_extra: &str, policies: &str) -> String {
    let targets: Vec<String> = targets
        .iter()
        .map(|e| format!("{{ url: {} }}", e.url()))
        .collect();
    format!(
        "gatefold: 1
upstreams:
  up:
    targets: [{}]
{upstream_extra}
apis:
  a:
    upstream: up
    policies:
      - jwt:
          algorithms: [HS256]
          secret: {{ env: JWT_SECRET }}
          claims-to-headers: {{ tenant: x-tenant }}
{policies}
    routes:
      r: {{ path: /* }}
",
        targets.join(", ")
    )
}

async fn as_tenant(gw: &Gateway, tenant: &str, claimed: &str) -> Reply {
    let auth = format!("Bearer {}", token(tenant));
    get(
        gw.listen_addr(),
        "/x",
        &[("authorization", &auth), ("x-tenant", claimed)],
    )
    .await
}

// ---- 1: connection limits ------------------------------------------------

const MOCK: &str = "gatefold: 1
apis:
  a:
    routes:
      r: { path: /*, policies: [{ mock: { json: { ok: true } } }] }
";

/// An HTTP/2 (prior knowledge) client connection whose driver runs in a task
/// that ends when the gateway closes the connection.
async fn h2_client(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        // The client pings too, and hyper answers the gateway's pings: a
        // live peer, which the PING-based keep-alive never cuts.
        .keep_alive_interval(Duration::from_millis(100))
        .keep_alive_while_idle(true)
        .handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, task)
}

async fn h2_get(sender: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>) -> u16 {
    let req = Request::get("http://localhost/x")
        .body(Empty::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    status
}

/// Defect 1: an idle HTTP/2 connection was held open forever by a client
/// that answers PINGs (21,000 of them exhausted the file descriptors).
#[tokio::test]
async fn idle_h2_connection_is_closed_though_it_answers_pings() {
    let gw = start(MOCK, &[], |o| {
        o.h2_idle_timeout = Duration::from_millis(300)
    })
    .await;
    let (mut sender, conn) = h2_client(gw.listen_addr()).await;
    assert_eq!(h2_get(&mut sender).await, 200);
    // Idle from here on: the gateway must close it (GOAWAY, then the
    // connection ends), not keep it for as long as PINGs are answered.
    tokio::time::timeout(SOON, conn)
        .await
        .expect("the idle HTTP/2 connection is closed by the gateway")
        .unwrap();
    drop(sender);
    gw.shutdown().await;
}

/// Defect 1: the keep-alive limit: a busy HTTP/2 connection is not kept
/// forever either.
#[tokio::test]
async fn busy_h2_connection_is_closed_after_its_max_age() {
    let gw = start(MOCK, &[], |o| o.h2_max_age = Duration::from_millis(500)).await;
    let (mut sender, mut conn) = h2_client(gw.listen_addr()).await;
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a busy HTTP/2 connection outlived its max age by 10s"
        );
        if conn.is_finished() || !sender.is_ready() {
            break;
        }
        // Busy: a request every 50ms, never idle.
        let req = Request::get("http://localhost/x")
            .body(Empty::new())
            .unwrap();
        if sender.send_request(req).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::timeout(SOON, &mut conn)
        .await
        .expect("the connection ends after GOAWAY")
        .unwrap();
    gw.shutdown().await;
}

type H1Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// An HTTP/1.1 keep-alive connection, its handshake done (no request yet).
async fn h1_client(addr: SocketAddr) -> (H1Sender, tokio::task::JoinHandle<()>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, task)
}

async fn h1_get(sender: &mut H1Sender) -> u16 {
    let req = Request::get("/x")
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    status
}

/// Defect 1: a worker serves at most `max_connections_per_worker`
/// connections; the next one waits until one of them closes.
#[tokio::test]
async fn connections_past_the_per_worker_cap_wait_for_a_free_slot() {
    let gw = start(MOCK, &[], |o| {
        o.max_connections_per_worker = 2;
        o.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let addr = gw.listen_addr();
    let (mut first, first_conn) = h1_client(addr).await;
    let (mut second, _second_conn) = h1_client(addr).await;
    assert_eq!(h1_get(&mut first).await, 200);
    assert_eq!(h1_get(&mut second).await, 200);

    // Both kept alive: the third is not served...
    let (mut third, _third_conn) = h1_client(addr).await;
    let waiting = tokio::spawn(async move { h1_get(&mut third).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection was served past a cap of 2"
    );
    // ...until one of the two closes.
    drop(first);
    first_conn.abort();
    let status = tokio::time::timeout(SOON, waiting)
        .await
        .expect("the waiting connection is served once a slot is free")
        .unwrap();
    assert_eq!(status, 200);
    drop(second);
    gw.shutdown().await;
}

// ---- 3: headers as authentication left them ----------------------------------

/// Defect 3: a rate limit keyed on a header that the jwt writes counted by
/// the client's copy: six `x-tenant` values, six buckets, six 200s.
#[tokio::test]
async fn rate_limit_header_key_is_the_one_the_jwt_wrote() {
    let up = Echo::start("up").await;
    let spec = tenant_spec(
        &[&up],
        "",
        "      - rate-limit: { requests: 3, per: 1m, key: header:x-tenant }",
    );
    let gw = start(&spec, &[("JWT_SECRET", JWT_SECRET)], |_| {}).await;
    let mut statuses = Vec::new();
    for claimed in ["t1", "t2", "t3", "t4", "t5", "t6"] {
        statuses.push(as_tenant(&gw, "acme", claimed).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    // And another tenant cannot spend acme's bucket by claiming its name.
    assert_eq!(as_tenant(&gw, "globex", "acme").await.status, 200);
    gw.shutdown().await;
}

/// Defect 3: a cache varying on a header the jwt writes must key by the
/// token's value: otherwise one tenant is served another's response.
#[tokio::test]
async fn cache_vary_header_is_the_one_the_jwt_wrote() {
    let up = Echo::start("up").await;
    let spec = tenant_spec(&[&up], "", "      - cache: { ttl: 30s, vary: [x-tenant] }");
    let gw = start(&spec, &[("JWT_SECRET", JWT_SECRET)], |_| {}).await;
    let a = as_tenant(&gw, "acme", "same").await;
    assert_eq!(a.upstream_header("x-tenant"), ["acme"]);
    let b = as_tenant(&gw, "globex", "same").await;
    assert_eq!(
        b.upstream_header("x-tenant"),
        ["globex"],
        "globex was served acme's cached response"
    );
    assert_eq!(up.hits(), 2);
    // The same tenant again is a hit, whatever it claims.
    let a2 = as_tenant(&gw, "acme", "other").await;
    assert_eq!(a2.upstream_header("x-tenant"), ["acme"]);
    assert_eq!(up.hits(), 2);
    gw.shutdown().await;
}

/// Defect 3: balancing by a header the jwt writes uses the token's value
/// (this one held before the fix: balancing ran after phase 10; kept so it
/// stays so).
#[tokio::test]
async fn balance_hash_header_is_the_one_the_jwt_wrote() {
    let ups = [
        Echo::start("a").await,
        Echo::start("b").await,
        Echo::start("c").await,
    ];
    let spec = tenant_spec(
        &[&ups[0], &ups[1], &ups[2]],
        "    balance: hash-header:x-tenant",
        "",
    );
    let gw = start(&spec, &[("JWT_SECRET", JWT_SECRET)], |_| {}).await;
    let mut seen = BTreeSet::new();
    for i in 0..12 {
        let r = as_tenant(&gw, "acme", &format!("claimed-{i}")).await;
        assert_eq!(r.status, 200);
        seen.insert(r.header("x-upstream").unwrap().to_string());
    }
    assert_eq!(seen.len(), 1, "one tenant, one target: {seen:?}");
    gw.shutdown().await;
}

// ---- 4 and 5: redirects --------------------------------------------------------

/// Defect 4: a query-string API key leaked into a redirect's `location`.
#[tokio::test]
async fn query_api_key_is_removed_from_redirects_and_upstream_requests() {
    let up = Echo::start("up").await;
    let spec = format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
consumers:
  partner: {{ credentials: {{ key: {{ env: PARTNER_KEY }} }} }}
apis:
  a:
    upstream: up
    policies: [{{ key-auth: {{ in: query, name: api_key }} }}]
    routes:
      moved:
        path: /moved
        policies: [{{ redirect: {{ to: https://partner.example.net/new }} }}]
      local:
        path: /local/{{id}}
        policies: [{{ redirect: {{ to: \"/new/{{id}}\" }} }}]
      rest: {{ path: /* }}
",
        up.url()
    );
    let gw = start(&spec, &[("PARTNER_KEY", "K3y")], |_| {}).await;
    let addr = gw.listen_addr();
    let r = get(addr, "/moved?api_key=K3y&x=1", &[]).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("https://partner.example.net/new?x=1")
    );
    let r = get(addr, "/local/7?api_key=K3y", &[]).await;
    assert_eq!(r.header("location"), Some("/new/7"));
    let r = get(addr, "/data?x=1&api_key=K3y", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["query"], "x=1");
    gw.shutdown().await;
}

/// Defect 5: `/go/\evil.example` answered `location: /\evil.example`, which
/// browsers follow to `//evil.example`.
#[tokio::test]
async fn redirect_parameter_cannot_point_at_another_host() {
    let spec = "gatefold: 1
apis:
  a:
    routes:
      go: { path: \"/go/{id}\", policies: [{ redirect: { to: \"/{id}\" } }] }
";
    let gw = start(spec, &[], |_| {}).await;
    let addr = gw.listen_addr();
    let r = get(addr, "/go/\\evil.example", &[]).await;
    assert_eq!(r.status, 400, "location: {:?}", r.header("location"));
    assert_eq!(r.header("location"), None);
    // Percent-encoded, the backslash stays encoded in the path, so the
    // location is a local path (`/%5Cevil.example`), never `/\` or `//`.
    let r = get(addr, "/go/%5Cevil.example", &[]).await;
    let location = r.header("location").unwrap_or("");
    assert!(
        r.status == 400 || !(location.starts_with("//") || location.starts_with("/\\")),
        "{} {location}",
        r.status
    );
    // An ordinary parameter still redirects.
    let r = get(addr, "/go/books", &[]).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/books"));
    gw.shutdown().await;
}

// ---- 8: request framing and forwarding headers ----------------------------------

fn proxy_spec(up: &Echo) -> String {
    format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
apis:
  a:
    upstream: up
    routes:
      r: {{ path: /* }}
",
        up.url()
    )
}

/// Defect 8: HTTP/1.1 without `host`, or with two, was proxied (RFC 9112
/// 3.2 says 400).
#[tokio::test]
async fn http11_request_without_host_or_with_two_is_refused() {
    let up = Echo::start("up").await;
    let gw = start(&proxy_spec(&up), &[], |_| {}).await;
    let addr = gw.listen_addr();
    let r = raw(addr, "GET /x HTTP/1.1\r\nconnection: close\r\n\r\n").await;
    assert_eq!(r.status, 400);
    let r = raw(
        addr,
        "GET /x HTTP/1.1\r\nhost: a.example\r\nhost: b.example\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(up.hits(), 0, "neither was proxied");
    // HTTP/1.0 needs no host.
    let r = raw(addr, "GET /x HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.status, 200);
    gw.shutdown().await;
}

/// Defect 8: a client's `forwarded` and `x-real-ip` reached the upstream
/// unchanged, claiming an address the gateway never saw (documented now:
/// removed; the gateway speaks `x-forwarded-*`).
#[tokio::test]
async fn client_forwarded_and_x_real_ip_are_not_passed_on() {
    let up = Echo::start("up").await;
    let gw = start(&proxy_spec(&up), &[], |_| {}).await;
    let r = get(
        gw.listen_addr(),
        "/x",
        &[
            ("forwarded", "for=203.0.113.9"),
            ("x-real-ip", "203.0.113.9"),
            ("x-forwarded-for", "198.51.100.1"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.upstream_header("forwarded").is_empty(), "{}", r.body);
    assert!(r.upstream_header("x-real-ip").is_empty(), "{}", r.body);
    assert_eq!(
        r.upstream_header("x-forwarded-for"),
        ["198.51.100.1, 127.0.0.1"]
    );
    gw.shutdown().await;
}

// ---- 8 and 6: the admin API ---------------------------------------------------

/// Defect 8: `authorization: bearer T` (lower case) was refused, and a
/// configured token with a trailing newline never matched.
#[tokio::test]
async fn admin_bearer_scheme_is_case_insensitive_and_token_trimmed() {
    let gw = start(MOCK, &[], |o| o.admin_token = Some(" s3cret\n".into())).await;
    let admin = gw.admin_addr().unwrap();
    for scheme in ["bearer", "Bearer", "BEARER"] {
        let auth = format!("{scheme} s3cret");
        let r = get(admin, "/status", &[("authorization", &auth)]).await;
        assert_eq!(r.status, 200, "{scheme}: {}", r.body);
    }
    let r = get(admin, "/status", &[("authorization", "Bearer wrong")]).await;
    assert_eq!(r.status, 401);
    gw.shutdown().await;
}

/// Defect 8: the tokenless (loopback) admin API answered web pages: a
/// cross-site request (`origin`) or a DNS-rebound host could push a config.
#[tokio::test]
async fn tokenless_admin_api_refuses_browser_requests() {
    let gw = start(MOCK, &[], |_| {}).await;
    let admin = gw.admin_addr().unwrap();
    let r = get(admin, "/status", &[("origin", "https://evil.example")]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let put = format!(
        "PUT /config HTTP/1.1\r\nhost: rebound.evil.example:{}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{MOCK}",
        admin.port(),
        MOCK.len()
    );
    let r = raw(admin, &put).await;
    assert_eq!(r.status, 403, "{}", r.body);
    // Local tools still work: loopback names, with or without a port.
    for host in [
        "localhost".to_string(),
        format!("127.0.0.1:{}", admin.port()),
        format!("[::1]:{}", admin.port()),
    ] {
        let req = format!("GET /status HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
        assert_eq!(raw(admin, &req).await.status, 200, "{host}");
    }
    let r = get(admin, "/healthz", &[("origin", "https://evil.example")]).await;
    assert_eq!(r.status, 200);
    gw.shutdown().await;
}

/// Defect 6: an oversized `PUT /config` is refused from its declared length,
/// before its body is read (it was read up to 64 MiB first).
#[tokio::test]
async fn admin_refuses_an_oversized_config_before_reading_it() {
    let gw = start(MOCK, &[], |_| {}).await;
    let admin = gw.admin_addr().unwrap();
    // Announces 33 MiB and sends none of it: only an early answer comes back.
    let put = "PUT /config HTTP/1.1\r\nhost: localhost\r\ncontent-length: 34603008\r\n\r\n";
    let r = raw(admin, put).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["ok"], false);
    assert!(
        r.json()["errors"][0]
            .as_str()
            .unwrap()
            .contains("larger than 32 MiB"),
        "{}",
        r.body
    );
    gw.shutdown().await;
}

/// Defect 6: loading a config waits for one in progress (the apply lock
/// covers parsing), so parses never run side by side.
#[tokio::test]
async fn config_loads_are_serialized_with_the_apply() {
    let gw = start(MOCK, &[], |_| {}).await;
    let shared = gw.shared().clone();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let loads: Vec<_> = (0..4)
        .map(|i| {
            let (shared, running, most) = (shared.clone(), running.clone(), most.clone());
            std::thread::spawn(move || {
                shared.load_and_apply(|| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, ()>(compile(&MOCK.replace("ok: true", &format!("ok: {i}"))))
                })
            })
        })
        .collect();
    for l in loads {
        assert!(matches!(l.join().unwrap(), Ok(Ok(_))));
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "two loads ran at once");
    gw.shutdown().await;
}

// ---- 8: --watch ---------------------------------------------------------------------

/// Defect 8: `--watch` loaded a save written in two parts half-way: the
/// first part alone is a valid spec with fewer routes.
#[tokio::test]
async fn watch_waits_for_a_save_to_settle_before_loading() {
    let dir = std::env::temp_dir().join(format!(
        "gatefold-watch-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("spec.yaml");
    let route = |name: &str| {
        format!("      {name}: {{ path: /{name}, policies: [{{ mock: {{ json: {{ r: {name} }} }} }}] }}\n")
    };
    let head = "gatefold: 1\napis:\n  a:\n    routes:\n";
    std::fs::write(&file, format!("{head}{}", route("start"))).unwrap();
    let mut opts = options();
    opts.watch = Some(watch::Source {
        path: file.clone(),
        interval: Duration::from_millis(100),
    });
    let gw = Gateway::start(compile(&format!("{head}{}", route("start"))), opts)
        .await
        .unwrap();
    let addr = gw.listen_addr();
    let served = |path: &'static str| async move {
        let deadline = tokio::time::Instant::now() + SOON;
        while get(addr, path, &[]).await.status != 200 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never served"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // An ordinary save first: the watcher is running.
    std::fs::write(&file, format!("{head}{}", route("ready"))).unwrap();
    served("/ready").await;
    assert_eq!(gw.shared().history_len(), 1);

    // A save in two parts, 400ms apart (a slow writer, a network file
    // system): the first part alone is valid, with one route of two.
    let first = format!("{head}{}", route("one"));
    std::fs::write(&file, &first).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut f, route("two").as_bytes()).unwrap();
    drop(f);

    served("/two").await;
    assert_eq!(get(addr, "/one", &[]).await.status, 200);
    assert_eq!(
        gw.shared().history_len(),
        2,
        "one reload for the two-part save, not one per part"
    );
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
