//! The TLS listener over real sockets, with certificates the test makes
//! (rcgen; no key is committed) and a rustls client: the certificate chosen
//! by SNI, HTTP/2 by ALPN, 421 for a host the connection's certificate does
//! not cover, `redirect-http`, and certificates swapped by `PUT /config`
//! without dropping open connections.

use crate::common;

use bytes::Bytes;
use common::*;
use gatefold_compiler::ir::ValidIr;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A self-signed certificate for `names`: (cert PEM, key PEM).
fn cert(names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let c = rcgen::generate_simple_self_signed(names).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

/// A spec folder in the temp dir, removed on drop.
struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles a spec whose certificate files are `certs` (name, PEM); keys
/// come from env variables.
fn compile_with(tag: &str, yaml: &str, certs: &[(&str, &str)]) -> ValidIr {
    let dir = Folder(std::env::temp_dir().join(format!(
        "gatefold-tls-test-{tag}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    )));
    std::fs::create_dir_all(&dir.0).unwrap();
    for (name, pem) in certs {
        std::fs::write(dir.0.join(name), pem).unwrap();
    }
    std::fs::write(dir.0.join("gatefold.yaml"), yaml).unwrap();
    let compiled = gatefold_compiler::compile_path(&dir.0);
    match compiled.ir {
        Some(ir) => ir,
        None => panic!("the test spec does not compile:\n{}", compiled.render()),
    }
}

fn spec(upstream: &Upstream, tls_listen: u16, redirect: bool) -> String {
    format!(
        "gatefold: 1
gateway:
  listen: 8080
  tls:
    listen: {tls_listen}
    redirect-http: {redirect}
    certificates:
      - {{ cert: {{ file: a.pem }}, key: {{ env: A_KEY }} }}
      - {{ cert: {{ file: org.pem }}, key: {{ env: ORG_KEY }} }}
upstreams:
  up:
    targets: [{{ url: {url} }}]
apis:
  main:
    hosts: [a.example.com, x.example.org, y.example.org]
    upstream: up
    routes:
      all: {{ path: /* }}
",
        url = upstream.url()
    )
}

/// Two certificates (`a.example.com`; `*.example.org`) and a gateway with
/// a TLS listener on a free port.
struct Setup {
    gw: Gw,
    tls: SocketAddr,
    a: String,
    org: String,
    up: Upstream,
}

async fn setup(tag: &str, redirect: bool) -> Setup {
    let up = Upstream::start("up").await;
    let (a, a_key) = cert(&["a.example.com"]);
    let (org, org_key) = cert(&["*.example.org"]);
    let ir = compile_with(
        tag,
        &spec(&up, 8443, redirect),
        &[("a.pem", &a), ("org.pem", &org)],
    );
    let gw = gateway_ir(ir, &[("A_KEY", &a_key), ("ORG_KEY", &org_key)], |o| {
        o.listen_tls = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let tls = gw.gw.tls_addr().expect("a TLS listener");
    Setup {
        gw,
        tls,
        a,
        org,
        up,
    }
}

/// A TLS connection asking for `sni`, trusting `roots`, offering `alpn`.
async fn connect(
    addr: SocketAddr,
    sni: &str,
    roots: &[&str],
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let mut cfg = client_config(roots, rustls::crypto::ring::default_provider());
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    connect_with(addr, sni, Arc::new(cfg)).await
}

/// A client config trusting `roots`, with `provider`'s cipher suites in
/// its order (the order the client offers them).
fn client_config(roots: &[&str], provider: rustls::crypto::CryptoProvider) -> rustls::ClientConfig {
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            store.add(c.unwrap()).unwrap();
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth()
}

/// A TLS connection asking for `sni` with the client config `cfg`.
async fn connect_with(
    addr: SocketAddr,
    sni: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> TlsStream<TcpStream> {
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(sni.to_string()).unwrap();
    tokio::time::timeout(EXCHANGE_LIMIT, connector.connect(name, tcp))
        .await
        .expect("a handshake in time")
        .expect("the handshake succeeds")
}

/// The leaf certificate the server presented, as PEM-decoded DER.
fn presented(s: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// An HTTP/1.1 GET with this `host` on a TLS connection.
async fn get_h1(s: TlsStream<TcpStream>, host: &str, path: &str) -> Resp {
    let exchange = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = Request::get(path)
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_11);
        let (parts, body) = resp.into_parts();
        Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
            cut: None,
        }
    };
    tokio::time::timeout(EXCHANGE_LIMIT, exchange)
        .await
        .unwrap()
}

type H2 = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

async fn h2(s: TlsStream<TcpStream>) -> H2 {
    assert_eq!(
        s.get_ref().1.alpn_protocol(),
        Some(&b"h2"[..]),
        "ALPN chose h2"
    );
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

/// A GET with this `:authority` on an open HTTP/2 connection.
async fn get_on(sender: &mut H2, authority: &str, path: &str) -> Resp {
    let exchange = async {
        sender.ready().await.unwrap();
        let req = Request::get(format!("https://{authority}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let (parts, body) = resp.into_parts();
        Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
            cut: None,
        }
    };
    tokio::time::timeout(EXCHANGE_LIMIT, exchange)
        .await
        .unwrap()
}

#[tokio::test]
async fn sni_chooses_the_certificate_and_requests_go_upstream_as_https() {
    let s = setup("sni", false).await;
    let roots = [s.a.as_str(), s.org.as_str()];
    // The client checks the name itself, so a handshake that succeeds
    // already says the right certificate came; comparing the bytes says
    // which one.
    let conn = connect(s.tls, "a.example.com", &roots, &[b"http/1.1"]).await;
    assert_eq!(presented(&conn), der(&s.a));
    let r = get_h1(conn, "a.example.com", "/pets?x=1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["path"], "/pets");
    assert_eq!(r.json()["query"], "x=1");
    assert_eq!(
        r.upstream_header("x-forwarded-proto").as_deref(),
        Some("https")
    );

    let conn = connect(s.tls, "y.example.org", &roots, &[b"http/1.1"]).await;
    assert_eq!(presented(&conn), der(&s.org), "the wildcard certificate");
    let r = get_h1(conn, "y.example.org", "/").await;
    assert_eq!(r.status, 200, "{}", r.text());

    // The plain listener still serves plain HTTP, as http.
    let r =
        s.gw.send("GET", "/", &[("host", "a.example.com")], None)
            .await;
    assert_eq!(
        r.upstream_header("x-forwarded-proto").as_deref(),
        Some("http")
    );
}

#[tokio::test]
async fn h2_over_tls_and_421_for_a_host_the_certificate_does_not_cover() {
    let s = setup("h2", false).await;
    let roots = [s.a.as_str(), s.org.as_str()];
    let conn = connect(s.tls, "x.example.org", &roots, &[b"h2", b"http/1.1"]).await;
    let mut sender = h2(conn).await;
    let r = get_on(&mut sender, "x.example.org", "/one").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Same certificate (`*.example.org`), another host: served.
    let r = get_on(&mut sender, "y.example.org:8443", "/two").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A host the api serves, but not under this connection's certificate:
    // the client must open a connection for it.
    let r = get_on(&mut sender, "a.example.com", "/three").await;
    r.assert_error(421, "misdirected request");
    // The connection is still usable.
    let r = get_on(&mut sender, "x.example.org", "/four").await;
    assert_eq!(r.status, 200);

    // Over HTTP/1.1 too, by `host`.
    let conn = connect(s.tls, "a.example.com", &roots, &[b"http/1.1"]).await;
    get_h1(conn, "x.example.org", "/")
        .await
        .assert_error(421, "misdirected request");
}

#[tokio::test]
async fn redirect_http_sends_plain_requests_to_https() {
    let s = setup("redirect", true).await;
    let r =
        s.gw.send(
            "GET",
            "/pets/1?a=b&c",
            &[("host", "a.example.com:8080")],
            None,
        )
        .await;
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some("https://a.example.com:8443/pets/1?a=b&c")
    );
    // Even where no route would match, and not the upstream.
    let r =
        s.gw.send("POST", "/nothing", &[("host", "other.test")], Some("x"))
            .await;
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some("https://other.test:8443/nothing")
    );
    assert_eq!(s.up.hits(), 0);
    // The TLS listener itself serves.
    let conn = connect(s.tls, "a.example.com", &[&s.a], &[b"http/1.1"]).await;
    assert_eq!(get_h1(conn, "a.example.com", "/").await.status, 200);
}

#[tokio::test]
async fn redirect_to_port_443_leaves_the_port_out() {
    let up = Upstream::start("up").await;
    let (a, a_key) = cert(&["a.example.com"]);
    let (org, org_key) = cert(&["*.example.org"]);
    let ir = compile_with(
        "r443",
        &spec(&up, 443, true),
        &[("a.pem", &a), ("org.pem", &org)],
    );
    let gw = gateway_ir(ir, &[("A_KEY", &a_key), ("ORG_KEY", &org_key)], |o| {
        o.listen_tls = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let r = gw
        .send("GET", "/x", &[("host", "a.example.com")], None)
        .await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("https://a.example.com/x"));
}

#[tokio::test]
async fn a_pushed_config_swaps_certificates_without_dropping_connections() {
    let up = Upstream::start("up").await;
    let (a1, a1_key) = cert(&["a.example.com"]);
    let (a2, a2_key) = cert(&["a.example.com"]);
    let (org, org_key) = cert(&["*.example.org"]);
    let yaml = spec(&up, 8443, false);
    let first = compile_with("swap1", &yaml, &[("a.pem", &a1), ("org.pem", &org)]);
    // The renewed certificate's key is in another variable.
    let second = compile_with(
        "swap2",
        &yaml.replace("A_KEY", "A2_KEY"),
        &[("a.pem", &a2), ("org.pem", &org)],
    );
    let secrets = [
        ("A_KEY", a1_key.as_str()),
        ("A2_KEY", a2_key.as_str()),
        ("ORG_KEY", org_key.as_str()),
    ];
    let gw = gateway_ir(first, &secrets, |o| {
        o.listen_tls = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let tls = gw.gw.tls_addr().unwrap();
    let roots = [a1.as_str(), a2.as_str()];
    let old = connect(tls, "a.example.com", &roots, &[b"h2"]).await;
    assert_eq!(presented(&old), der(&a1));
    let mut old = h2(old).await;
    assert_eq!(
        get_on(&mut old, "a.example.com", "/before").await.status,
        200
    );

    let pushed = send(gw.admin(), "PUT", "/config", &[], Some(&second.to_json())).await;
    assert_eq!(pushed.status, 200, "{}", pushed.text());

    // New connections get the new certificate...
    let fresh = connect(tls, "a.example.com", &roots, &[b"http/1.1"]).await;
    assert_eq!(presented(&fresh), der(&a2));
    assert_eq!(get_h1(fresh, "a.example.com", "/").await.status, 200);
    // ...and the connection opened before the swap still serves.
    assert_eq!(
        get_on(&mut old, "a.example.com", "/after").await.status,
        200
    );
}

#[tokio::test]
async fn a_config_whose_key_variable_is_missing_is_refused() {
    let up = Upstream::start("up").await;
    let (a, _) = cert(&["a.example.com"]);
    let (org, org_key) = cert(&["*.example.org"]);
    let ir = compile_with(
        "nokey",
        &spec(&up, 8443, false),
        &[("a.pem", &a), ("org.pem", &org)],
    );
    let mut opts = gatefold_target_reference::gateway::Options::new("127.0.0.1:0".parse().unwrap());
    opts.secrets = Arc::new(
        gatefold_target_reference::gateway::secrets::MapSecrets::new([(
            "ORG_KEY",
            org_key.as_str(),
        )]),
    );
    opts.listen_tls = Some("127.0.0.1:0".parse().unwrap());
    let err = match gatefold_target_reference::gateway::Gateway::start(ir, opts).await {
        Ok(_) => panic!("started without the key"),
        Err(e) => e,
    };
    assert!(err.contains("A_KEY"), "{err}");
    // A key that is not the certificate's is refused too.
    let (_, other_key) = cert(&["a.example.com"]);
    let ir = compile_with(
        "badkey",
        &spec(&up, 8443, false),
        &[("a.pem", &a), ("org.pem", &org)],
    );
    let mut opts = gatefold_target_reference::gateway::Options::new("127.0.0.1:0".parse().unwrap());
    opts.secrets = Arc::new(
        gatefold_target_reference::gateway::secrets::MapSecrets::new([
            ("A_KEY", other_key.as_str()),
            ("ORG_KEY", org_key.as_str()),
        ]),
    );
    let err = match gatefold_target_reference::gateway::Gateway::start(ir, opts).await {
        Ok(_) => panic!("started with another certificate's key"),
        Err(e) => e,
    };
    assert!(err.contains("does not belong"), "{err}");
}

/// Language 1.1 redirects built from the request take the scheme of the
/// listener the request arrived on: `https` on the TLS listener (its port
/// from `host`, kept since `scheme` is not given), `http` on the plain one.
#[tokio::test]
async fn redirect_parts_take_the_scheme_of_the_listener() {
    let (a, a_key) = cert(&["a.example.com"]);
    let yaml = "gatefold: 1
gateway:
  listen: 8080
  tls:
    listen: 8443
    certificates:
      - { cert: { file: a.pem }, key: { env: A_KEY } }
apis:
  main:
    hosts: [a.example.com]
    routes:
      moved: { path: /old/*, policies: [{ redirect: { replace-prefix: /new } }] }
";
    let ir = compile_with("redirect-parts", yaml, &[("a.pem", &a)]);
    let gw = gateway_ir(ir, &[("A_KEY", &a_key)], |o| {
        o.listen_tls = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let tls = gw.gw.tls_addr().expect("a TLS listener");
    let conn = connect(tls, "a.example.com", &[a.as_str()], &[b"http/1.1"]).await;
    let r = get_h1(conn, "a.example.com:8443", "/old/x?q=1").await;
    assert_eq!(r.status, 302, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some("https://a.example.com:8443/new/x?q=1")
    );
    let r = send(
        gw.addr,
        "GET",
        "/old/x",
        &[("host", "a.example.com:8080")],
        None,
    )
    .await;
    assert_eq!(
        r.header("location"),
        Some("http://a.example.com:8080/new/x")
    );
    gw.gw.shutdown().await;
}

/// A GET with `connection: close` read to the end (which also reads the
/// tickets the server sent after the handshake); the stream is returned
/// for its connection state.
async fn get_and_close(mut s: TlsStream<TcpStream>, host: &str) -> (String, TlsStream<TcpStream>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let req = format!("GET / HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        // A close without close_notify is the server's to send; what came
        // before it is the answer.
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    };
    let text = tokio::time::timeout(EXCHANGE_LIMIT, exchange)
        .await
        .expect("an answer in time");
    (text, s)
}

#[tokio::test]
async fn the_gateway_picks_sha256_suites_for_aes_clients_and_chacha_for_clients_preferring_it() {
    let s = setup("suites", false).await;
    let roots = [s.a.as_str()];
    let suite = |s: &TlsStream<TcpStream>| s.get_ref().1.negotiated_cipher_suite().unwrap().suite();
    // rustls' own order, as OpenSSL's: AES-256-GCM-SHA384 first. The
    // gateway's order wins for a client preferring AES-GCM.
    let aes256_first = rustls::crypto::ring::default_provider();
    assert_eq!(
        aes256_first.cipher_suites[0].suite(),
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
        "the client offers AES-256 first"
    );
    let conn = connect_with(
        s.tls,
        "a.example.com",
        Arc::new(client_config(&roots, aes256_first)),
    )
    .await;
    assert_eq!(suite(&conn), rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let (text, _) = get_and_close(conn, "a.example.com").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    // A client offering ChaCha20 first (one without AES hardware) gets it.
    let mut chacha_first = rustls::crypto::ring::default_provider();
    chacha_first
        .cipher_suites
        .sort_by_key(|c| c.suite() != rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256);
    let conn = connect_with(
        s.tls,
        "a.example.com",
        Arc::new(client_config(&roots, chacha_first)),
    )
    .await;
    assert_eq!(
        suite(&conn),
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
    );
}

#[tokio::test]
async fn a_client_resumes_its_session_with_the_one_ticket_each_connection_brings() {
    let s = setup("resume", false).await;
    let cfg = Arc::new(client_config(
        &[s.a.as_str()],
        rustls::crypto::ring::default_provider(),
    ));
    let kind = |s: &TlsStream<TcpStream>| s.get_ref().1.handshake_kind();
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let conn = connect_with(s.tls, "a.example.com", cfg.clone()).await;
        kinds.push(kind(&conn));
        let (text, conn) = get_and_close(conn, "a.example.com").await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert_eq!(
            conn.get_ref().1.tls13_tickets_received(),
            1,
            "one ticket per connection"
        );
    }
    use rustls::HandshakeKind::{Full, Resumed};
    // Each resumption spends the ticket and brings the next.
    assert_eq!(kinds, [Some(Full), Some(Resumed), Some(Resumed)]);
}
