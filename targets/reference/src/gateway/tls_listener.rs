//! The TLS listener (`gateway.tls`): rustls, HTTP/1.1 or HTTP/2 by ALPN,
//! the certificate chosen by SNI; and the plain listener's `redirect-http`.
//!
//! Certificates belong to the [`Runtime`]: each config builds its
//! [`CertSet`] (keys read from their env variables or files) and is swapped
//! in whole. A handshake reads the ClientHello first, then takes the
//! certificate from the runtime current at that moment, so a new config's
//! certificates serve new connections while open ones keep theirs.
//!
//! A request whose host the connection's certificate does not cover gets
//! 421 (an HTTP/2 client may reuse a connection for another host).

use super::{conn, respond, service, Body, ConnSettings, Shared};
use gatefold_compiler::ir::tls::{name_covers, Tls, TlsKey};
use gatefold_compiler::ir::Secret;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{Acceptor, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::watch as signal;
use tokio_rustls::LazyConfigAcceptor;

/// Marks a request that came over TLS (`x-forwarded-proto: https`).
#[derive(Clone, Copy, Debug)]
pub struct OverTls;

/// One certificate ready to serve: its server configs and its names.
struct Served {
    /// Cipher suites by the gateway's order (AES-GCM, SHA-256 suites first),
    /// for a client whose preferred suite is an AES-GCM one.
    aes_first: Arc<rustls::ServerConfig>,
    /// Cipher suites by the client's order, for a client preferring
    /// ChaCha20 (one without AES hardware, which makes AES slow for it).
    client_order: Arc<rustls::ServerConfig>,
    names: Arc<[String]>,
}

/// TLS sessions kept for resumption, for all certificates of a config
/// together (rustls' default keeps 256 per certificate; with a ticket per
/// connection, about as many clients).
const SESSIONS: usize = 16_384;

/// TLS 1.3 tickets sent per handshake. A ticket is single-use and each
/// resumption brings a new one, so one serves a client reconnecting;
/// rustls' default of two costs a second key derivation and session entry
/// per connection that a client uses only for parallel connections.
const TICKETS: usize = 1;

/// The gateway's cipher suite order: the TLS 1.3 suites with a SHA-256 key
/// schedule first (SHA-256 runs on the CPU's SHA extensions where SHA-384
/// does not, which makes a resumed handshake about a tenth cheaper),
/// AES-128-GCM before ChaCha20, then the rest of ring's suites in its
/// order. Go's crypto/tls server chooses the same way.
fn aes_first_suites() -> Vec<rustls::SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite as cs;
    let first = [
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS13_AES_256_GCM_SHA384,
    ];
    let rest = rustls::crypto::ring::DEFAULT_CIPHER_SUITES
        .iter()
        .filter(|s| !first.contains(s))
        .copied();
    first.into_iter().chain(rest).collect()
}

/// Whether the client's most preferred suite the gateway has is AES-GCM
/// (then the gateway's order applies), as Go's crypto/tls decides it.
fn prefers_aes(hello: &rustls::server::ClientHello<'_>) -> bool {
    use rustls::CipherSuite as C;
    hello
        .cipher_suites()
        .iter()
        .find_map(|s| match *s {
            C::TLS13_AES_128_GCM_SHA256
            | C::TLS13_AES_256_GCM_SHA384
            | C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
            | C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => Some(true),
            C::TLS13_CHACHA20_POLY1305_SHA256
            | C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            | C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => Some(false),
            _ => None,
        })
        .unwrap_or(true)
}

/// The certificates of one config, in the IR's order.
pub struct CertSet {
    served: Vec<Served>,
}

/// A resolver that always answers with one certificate (the choice by SNI
/// is made before the handshake, see [`serve_connection`]).
#[derive(Debug)]
struct One(Arc<CertifiedKey>);

impl ResolvesServerCert for One {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl CertSet {
    /// Reads every certificate's key and checks it fits; every problem,
    /// with the certificate named by its first name.
    pub fn build(
        tls: &Tls,
        secrets: &dyn super::secrets::SecretSource,
    ) -> Result<CertSet, Vec<String>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let aes_first = Arc::new(rustls::crypto::CryptoProvider {
            cipher_suites: aes_first_suites(),
            ..rustls::crypto::ring::default_provider()
        });
        let sessions = rustls::server::ServerSessionMemoryCache::new(SESSIONS);
        let config = |provider: &Arc<rustls::crypto::CryptoProvider>,
                      key: &Arc<CertifiedKey>,
                      ignore_client_order: bool| {
            let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| vec![e.to_string()])?
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(One(key.clone())));
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            config.ignore_client_order = ignore_client_order;
            config.session_storage = sessions.clone();
            config.send_tls13_tickets = TICKETS;
            Ok::<_, Vec<String>>(Arc::new(config))
        };
        let mut served = Vec::new();
        let mut errors = Vec::new();
        for c in &tls.certificates {
            let label = c.names.first().map_or("?", String::as_str);
            match certified(c, secrets, &provider) {
                Ok(key) => {
                    let key = Arc::new(key);
                    served.push(Served {
                        aes_first: config(&aes_first, &key, true)?,
                        client_order: config(&provider, &key, false)?,
                        names: c.names.clone().into(),
                    });
                }
                Err(e) => errors.push(format!("tls certificate for `{label}`: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(CertSet { served })
        } else {
            Err(errors)
        }
    }
}

/// A certificate chain with its private key, read where the IR says.
fn certified(
    c: &gatefold_compiler::ir::tls::TlsCertificate,
    secrets: &dyn super::secrets::SecretSource,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(c.chain.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the certificate chain is not valid PEM: {e}"))?;
    let key_pem = match &c.key {
        TlsKey::Env(name) => super::secrets::resolve(secrets, &Secret::Env(name.clone()))?,
        TlsKey::File(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the key file `{path}`: {e}"))?,
    };
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|_| "the private key is not a PEM private key".to_string())?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("the private key cannot be used: {e}"))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err("the private key does not belong to the certificate".into())
        }
        _ => Ok(certified),
    }
}

/// With `redirect-http`, the 308 to https a plain request gets.
pub fn redirect_http(shared: &Shared, req: &Request<Incoming>) -> Option<Response<Body>> {
    let rt = shared.runtime.load();
    let tls = rt.ir.gateway.tls.as_ref().filter(|t| t.redirect_http)?;
    let Some(host) = request_host(req) else {
        return Some(respond::bad_request());
    };
    let host = gatefold_compiler::ir::matcher::host_without_port(host);
    let port = match tls.listen {
        443 => String::new(),
        p => format!(":{p}"),
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{host}{port}{path}");
    let Ok(location) = HeaderValue::from_str(&location) else {
        return Some(respond::bad_request());
    };
    let mut r = respond::empty(StatusCode::PERMANENT_REDIRECT);
    r.headers_mut().insert(header::LOCATION, location);
    Some(r)
}

/// `:authority` (or an absolute request line's authority), else `host`.
fn request_host<B>(req: &Request<B>) -> Option<&str> {
    match req.uri().authority() {
        Some(a) => Some(a.as_str()),
        None => req.headers().get(header::HOST)?.to_str().ok(),
    }
}

/// Whether a request on a connection set up with a certificate named
/// `names` is for a host that certificate does not cover.
fn misdirected<B>(req: &Request<B>, names: &[String]) -> bool {
    match request_host(req) {
        Some(host) => {
            let host = gatefold_compiler::ir::matcher::host_without_port(host);
            !names.iter().any(|n| name_covers(n, host))
        }
        // No host at all: the service answers it (400).
        None => false,
    }
}

/// Serves one TLS connection: handshake (under the header read timeout),
/// then HTTP/2 or HTTP/1.1 as ALPN chose.
pub(super) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    settings: ConnSettings,
    stopped: signal::Receiver<bool>,
) {
    let handshake = async {
        let start = LazyConfigAcceptor::new(Acceptor::default(), stream)
            .await
            .ok()?;
        let (config, names) = {
            let rt = shared.runtime.load();
            let tls = rt.ir.gateway.tls.as_ref()?;
            let set = rt.tls.as_ref()?;
            let hello = start.client_hello();
            let i = tls.pick(hello.server_name())?;
            let s = set.served.get(i)?;
            let config = match prefers_aes(&hello) {
                true => &s.aes_first,
                false => &s.client_order,
            };
            (config.clone(), s.names.clone())
        };
        let stream = start.into_stream(config).await.ok()?;
        Some((stream, names))
    };
    let Ok(Some((stream, names))) =
        tokio::time::timeout(settings.header_read_timeout, handshake).await
    else {
        return;
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(stream);
    let activity = h2.then(conn::Activity::new);
    let streams = activity.clone();
    let svc = service_fn(move |mut req: Request<Incoming>| {
        let shared = shared.clone();
        let names = names.clone();
        let busy = streams.as_ref().map(conn::Activity::begin);
        async move {
            let resp = if misdirected(&req, &names) {
                respond::error(StatusCode::MISDIRECTED_REQUEST, "misdirected request")
            } else {
                req.extensions_mut().insert(OverTls);
                service::handle(shared, peer, req).await
            };
            Ok::<_, Infallible>(match busy {
                Some(busy) => resp.map(|b| conn::hold(b, busy)),
                None => resp,
            })
        }
    });
    if h2 {
        let c = settings.h2_builder().serve_connection(io, svc);
        drive!(c, conn::closing(activity.as_ref(), settings.h2, stopped));
    } else {
        let c = settings.h1_builder().serve_connection(io, svc);
        drive!(c, conn::closing(None, conn::Limits::NONE, stopped));
    }
}
