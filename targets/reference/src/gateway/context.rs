//! The per-request context that phases read and write.

use bytes::Bytes;
use http::header::VARY;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::borrow::Cow;
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

/// Response headers promised by the phases a request went through, in the
/// order they were promised.
///
/// A list, not a `HeaderMap`: a request carries a handful at most, and a map
/// hashed each name twice, once here and again into the response.
/// (`rate-limit`'s headers are kept apart, as numbers: [`Ctx::rate_headers`].)
#[derive(Default)]
pub struct Promised(Vec<(HeaderName, HeaderValue)>);

impl Promised {
    /// Promises `value` for `name`, replacing what was promised for it before.
    pub fn insert(&mut self, name: HeaderName, value: HeaderValue) {
        // Rarely promised twice: look before rewriting the list.
        if self.0.iter().any(|(n, _)| *n == name) {
            self.0.retain(|(n, _)| *n != name);
        }
        self.0.push((name, value));
    }

    /// How many headers are promised.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Promises `value` for `name` beside what was promised for it before.
    pub fn append(&mut self, name: HeaderName, value: HeaderValue) {
        self.0.push((name, value));
    }

    /// Writes the promised headers into a response's: a name's promised
    /// values replace the response's own, except `vary`'s, which are added.
    pub fn apply(&self, h: &mut HeaderMap) {
        for (i, (k, v)) in self.0.iter().enumerate() {
            let first = !self.0[..i].iter().any(|(n, _)| n == k);
            if first && k != VARY {
                h.insert(k.clone(), v.clone());
            } else {
                h.append(k.clone(), v.clone());
            }
        }
    }
}

/// State carried through one request's phases.
pub struct Ctx {
    pub peer: SocketAddr,
    /// The client address `baseline.client-address` computed (the peer by
    /// default), IPv4-mapped IPv6 addresses as IPv4.
    client: IpAddr,
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
    /// made after they ran (CORS, deprecation).
    pub promised: Promised,
    /// `rate-limit`'s response headers, added with the promised ones.
    pub rate_headers: Option<super::policies::rate_limit::RateHeaders>,
    /// The upstream the request went to.
    pub upstream: Option<Arc<str>>,
    /// The target that served the request, for the access log.
    pub target: Option<Arc<str>>,
    /// A cached response was served.
    pub cache_hit: bool,
    /// [`Ctx::client_ip`] as text, made once (`x-forwarded-for`, access log).
    client_text: OnceCell<String>,
    /// The scripts' `ctx` map, carried from the request script to the response script.
    pub script_vars: crate::script::Vars,
    /// The path a request script set (`req.setPath`), sent upstream at phase 10.
    pub script_path: Option<String>,
    /// A request script's header changes, until `settle_request` applies them.
    pub script_pending: Vec<super::policies::script::Pending>,
}

impl Ctx {
    pub fn new(peer: SocketAddr, client: IpAddr, started: Instant) -> Ctx {
        Ctx {
            peer,
            client,
            started,
            request_id: None,
            path: String::new(),
            query: None,
            host: None,
            preflight: false,
            consumer: None,
            authenticated_by: None,
            auth_headers: Vec::new(),
            promised: Promised::default(),
            rate_headers: None,
            upstream: None,
            target: None,
            cache_hit: false,
            client_text: OnceCell::new(),
            script_vars: crate::script::Vars::new(),
            script_path: None,
            script_pending: Vec::new(),
        }
    }

    /// The client address, as `baseline.client-address` says: what
    /// `ip-filter`, `rate-limit` by `ip` and the access log see.
    pub fn client_ip(&self) -> IpAddr {
        self.client
    }

    /// The TCP peer as text (`x-forwarded-for` names each hop).
    pub fn peer_text(&self) -> Cow<'_, str> {
        let peer = self.peer.ip().to_canonical();
        if peer == self.client {
            Cow::Borrowed(self.client_text())
        } else {
            Cow::Owned(ip_text(peer))
        }
    }

    /// The client address as text.
    pub fn client_text(&self) -> &str {
        self.client_text.get_or_init(|| ip_text(self.client_ip()))
    }
}

/// An address as `Display` writes it. IPv4 by hand: `Display` goes through
/// `fmt` for each octet, about 1,300 instructions per request.
fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut s = String::with_capacity(15);
    for (i, o) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if o >= 100 {
            s.push(char::from(b'0' + o / 100));
        }
        if o >= 10 {
            s.push(char::from(b'0' + o / 10 % 10));
        }
        s.push(char::from(b'0' + o % 10));
    }
    s
}

/// Bytes of a JSON error body, `{"error":"..."}`.
pub fn error_body(message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "error": message }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "192.168.9.99",
            "::1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn promised_headers_replace_the_responses_own_except_vary_which_adds() {
        let mut p = Promised::default();
        p.insert(
            HeaderName::from_static("x-a"),
            HeaderValue::from_static("1"),
        );
        p.append(VARY, HeaderValue::from_static("origin"));
        p.append(
            HeaderName::from_static("x-b"),
            HeaderValue::from_static("b1"),
        );
        // A later policy's promise for a name replaces an earlier one's.
        p.insert(
            HeaderName::from_static("x-a"),
            HeaderValue::from_static("2"),
        );
        p.append(
            HeaderName::from_static("x-b"),
            HeaderValue::from_static("b2"),
        );
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("upstream"));
        h.insert("x-b", HeaderValue::from_static("upstream"));
        h.insert(VARY, HeaderValue::from_static("accept-encoding"));
        p.apply(&mut h);
        let all =
            |n: &str| -> Vec<&str> { h.get_all(n).iter().map(|v| v.to_str().unwrap()).collect() };
        assert_eq!(all("x-a"), ["2"]);
        assert_eq!(all("x-b"), ["b1", "b2"]);
        assert_eq!(all("vary"), ["accept-encoding", "origin"]);
    }
}
