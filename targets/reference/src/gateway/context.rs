//! The per-request context that phases read and write.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::cell::OnceCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// A consumer as the running config knows it.
#[derive(Debug)]
pub struct ConsumerRt {
    pub name: Arc<str>,
    pub groups: Vec<String>,
}

/// State carried through one request's phases.
pub struct Ctx {
    pub peer: SocketAddr,
    pub started: Instant,
    /// The request id sent upstream and back (baseline `request-id`).
    pub request_id: Option<HeaderValue>,
    /// The normalized path: what was matched and what goes upstream.
    pub path: String,
    /// The query string as received, without `?`.
    pub query: Option<String>,
    /// The client's host (`host` header or `:authority`).
    pub host: Option<String>,
    /// Set for a CORS preflight routed by the method it asks about.
    pub preflight: bool,
    /// Who phase 4 identified.
    pub consumer: Option<Arc<ConsumerRt>>,
    /// Index (in the route's authenticator list) of the one that admitted.
    pub authenticated_by: Option<usize>,
    /// Request headers an authenticator asks to send upstream (jwt claims).
    pub auth_headers: Vec<(HeaderName, HeaderValue)>,
    /// Response headers that earlier phases promised: added to every response
    /// made after they ran (CORS, `x-ratelimit-*`, deprecation).
    pub promised: HeaderMap,
    /// The upstream the request went to.
    pub upstream: Option<Arc<str>>,
    /// The target that served the request, for the access log.
    pub target: Option<Arc<str>>,
    /// A cached response was served.
    pub cache_hit: bool,
    /// [`Ctx::client_ip`] as text, made once (`x-forwarded-for`, access log).
    client_text: OnceCell<String>,
}

impl Ctx {
    pub fn new(peer: SocketAddr, started: Instant) -> Ctx {
        Ctx {
            peer,
            started,
            request_id: None,
            path: String::new(),
            query: None,
            host: None,
            preflight: false,
            consumer: None,
            authenticated_by: None,
            auth_headers: Vec::new(),
            promised: HeaderMap::new(),
            upstream: None,
            target: None,
            cache_hit: false,
            client_text: OnceCell::new(),
        }
    }

    /// The client address: the TCP peer (`x-forwarded-for` is not trusted in v1),
    /// IPv4-mapped IPv6 addresses shown as IPv4.
    pub fn client_ip(&self) -> IpAddr {
        self.peer.ip().to_canonical()
    }

    /// The client address as text.
    pub fn client_text(&self) -> &str {
        self.client_text
            .get_or_init(|| self.client_ip().to_string())
    }
}

/// Bytes of a JSON error body, `{"error":"..."}`.
pub fn error_body(message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "error": message }).to_string())
}
