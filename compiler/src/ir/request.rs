//! The request model: how every target reads a request before matching
//! it. Two parts are meaning, so they are IR values under
//! [`super::Baseline`] rather than habits of one gateway:
//!
//! * [`PathNormalization`]: the path that is matched and sent upstream;
//! * [`ClientAddress`]: which address `ip-filter`, `rate-limit` by `ip`
//!   and the access log see.
//!
//! Each comes with its reference implementation, which the reference
//! gateway runs and back ends can test against.

use super::values::HeaderName;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// How a request path is normalized before matching (policy-spec "The
/// request path"). The result is both what routes match and what is sent
/// upstream. One variant today; a back end matches on it so that a new one
/// cannot be ignored.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathNormalization {
    /// Decode percent-encoded unreserved characters (`%7E` -> `~`; other
    /// escapes such as `%2F` stay encoded), merge repeated slashes, resolve
    /// `.` and `..` segments (a trailing one leaves a trailing `/`). A path
    /// not starting with `/`, a `%` not followed by two hex digits, bytes
    /// that decode to invalid UTF-8, or `..` above the root: 400
    /// `{"error":"bad request"}`.
    #[default]
    Standard,
}

/// Why a path cannot be served: answered 400 `{"error":"bad request"}`.
#[derive(Debug, PartialEq, Eq)]
pub struct BadPath;

impl PathNormalization {
    pub fn is_standard(&self) -> bool {
        *self == PathNormalization::Standard
    }

    /// Normalizes an origin-form path. Borrows when the path is already
    /// normal, the common case, so a plain request allocates nothing.
    pub fn normalize<'p>(&self, raw: &'p str) -> Result<Cow<'p, str>, BadPath> {
        match self {
            PathNormalization::Standard => standard(raw),
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn standard(raw: &str) -> Result<Cow<'_, str>, BadPath> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(BadPath);
    }
    if is_normal(bytes) {
        return Ok(Cow::Borrowed(raw));
    }
    // Decode unreserved escapes; a stray `%` not followed by two hex digits
    // is malformed.
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(BadPath);
            };
            let c = h * 16 + l;
            if is_unreserved(c) {
                decoded.push(c);
            } else {
                decoded.extend_from_slice(&bytes[i..i + 3]);
            }
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    // Split into segments, dropping empty ones (merged slashes) and
    // resolving dot segments. A trailing slash (or trailing dot segment)
    // leaves the path ending in `/`.
    let text = String::from_utf8(decoded).map_err(|_| BadPath)?;
    let mut out: Vec<&str> = Vec::new();
    let mut trailing = false;
    let parts: Vec<&str> = text[1..].split('/').collect();
    for (n, seg) in parts.iter().enumerate() {
        let last = n + 1 == parts.len();
        match *seg {
            "" | "." => trailing = last,
            ".." => {
                if out.pop().is_none() {
                    return Err(BadPath);
                }
                trailing = last;
            }
            s => {
                out.push(s);
                trailing = false;
            }
        }
    }
    let mut path = String::with_capacity(text.len());
    for s in &out {
        path.push('/');
        path.push_str(s);
    }
    if trailing || path.is_empty() {
        path.push('/');
    }
    Ok(Cow::Owned(path))
}

/// True when there is nothing to decode, merge or resolve.
fn is_normal(b: &[u8]) -> bool {
    let mut prev_slash = false;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'%' => return false,
            b'/' if prev_slash => return false,
            b'.' if prev_slash => {
                // `/.` followed by end, `/` or `.` is a dot segment.
                match b.get(i + 1) {
                    None | Some(b'/') => return false,
                    Some(b'.') if matches!(b.get(i + 2), None | Some(b'/')) => return false,
                    _ => {}
                }
            }
            _ => {}
        }
        prev_slash = c == b'/';
    }
    true
}

/// Where the client address comes from (`baseline.client-address`).
/// IPv4-mapped IPv6 addresses count as IPv4 throughout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAddress {
    /// The TCP peer; forwarding headers are never believed.
    #[default]
    Peer,
    /// Behind proxies: when the TCP peer is in `trusted_proxies`, the
    /// client is read from `header`, right to left: the first address that
    /// is not itself a trusted proxy (every one trusted: the left-most). An
    /// entry that is not an address (`unknown`, an obfuscated `_name`) ends
    /// the walk at the hop to its right. From any other peer, or without
    /// the header, the peer.
    TrustedProxies {
        proxies: BTreeSet<IpNet>,
        header: ForwardedHeader,
    },
    /// A header the platform in front sets to the client's address
    /// (`cf-connecting-ip`, `fly-client-ip`), believed from any peer:
    /// for targets with no TCP peer of their own, or a gateway reachable
    /// only through that platform. Missing or not one address: the peer.
    PlatformHeader(HeaderName),
}

/// The forwarding header trusted proxies write.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `x-forwarded-for: client, proxy1, proxy2`.
    #[default]
    XForwardedFor,
    /// RFC 7239 `forwarded: for=client;proto=https, for=proxy1`.
    Forwarded,
}

impl ForwardedHeader {
    pub fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

impl ClientAddress {
    pub fn is_peer(&self) -> bool {
        *self == ClientAddress::Peer
    }

    /// The header this source reads, if any.
    pub fn header(&self) -> Option<&str> {
        match self {
            ClientAddress::Peer => None,
            ClientAddress::TrustedProxies { header, .. } => Some(header.name()),
            ClientAddress::PlatformHeader(h) => Some(h.as_str()),
        }
    }

    /// The client address of a request from `peer` whose [`Self::header`]
    /// has these field values, in the order received. (The reference
    /// implementation: the gateway calls it per request.)
    pub fn client<'v>(&self, peer: IpAddr, values: impl IntoIterator<Item = &'v str>) -> IpAddr {
        let peer = peer.to_canonical();
        match self {
            ClientAddress::Peer => peer,
            ClientAddress::PlatformHeader(_) => {
                let mut it = values.into_iter();
                match (it.next(), it.next()) {
                    (Some(v), None) => v
                        .trim()
                        .parse::<IpAddr>()
                        .map_or(peer, |a| a.to_canonical()),
                    _ => peer,
                }
            }
            ClientAddress::TrustedProxies { proxies, header } => {
                let trusted = |a: &IpAddr| proxies.iter().any(|n| n.contains(a));
                if !trusted(&peer) {
                    return peer;
                }
                let values: Vec<&str> = values.into_iter().collect();
                // Entries right to left over every field value.
                let entries = values.iter().rev().flat_map(|v| v.rsplit(','));
                let mut client = peer;
                for entry in entries {
                    let addr = match header {
                        ForwardedHeader::XForwardedFor => xff_addr(entry),
                        ForwardedHeader::Forwarded => forwarded_for(entry),
                    };
                    let Some(addr) = addr else { break };
                    client = addr;
                    if !trusted(&addr) {
                        break;
                    }
                }
                client
            }
        }
    }
}

/// One `x-forwarded-for` entry: an address, maybe with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn xff_addr(entry: &str) -> Option<IpAddr> {
    addr_with_port(entry.trim())
}

fn addr_with_port(s: &str) -> Option<IpAddr> {
    if let Ok(a) = s.parse::<IpAddr>() {
        return Some(a.to_canonical());
    }
    if let Some(v6) = s.strip_prefix('[') {
        let (addr, _) = v6.split_once(']')?;
        return addr.parse::<IpAddr>().ok().map(|a| a.to_canonical());
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The `for=` of one `forwarded` element (`for=192.0.2.60;proto=http`,
/// `for="[2001:db8::1]:4711"`); `None` for `unknown`, obfuscated names, or
/// an element without `for`.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        addr_with_port(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Result<String, BadPath> {
        PathNormalization::Standard
            .normalize(p)
            .map(|c| c.into_owned())
    }

    #[test]
    fn normal_paths_are_borrowed() {
        let s = PathNormalization::Standard;
        assert!(matches!(s.normalize("/pets/1"), Ok(Cow::Borrowed(_))));
        assert!(matches!(
            s.normalize("/pets/.well-known"),
            Ok(Cow::Borrowed(_))
        ));
        assert!(matches!(s.normalize("/a..b/"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn decodes_merges_and_resolves() {
        assert_eq!(n("/%7Euser").unwrap(), "/~user");
        assert_eq!(n("/a%2Fb").unwrap(), "/a%2Fb");
        assert_eq!(n("//pets///1").unwrap(), "/pets/1");
        assert_eq!(n("/pets/./1").unwrap(), "/pets/1");
        assert_eq!(n("/pets/x/../1").unwrap(), "/pets/1");
        assert_eq!(n("/pets/1/..").unwrap(), "/pets/");
        assert_eq!(n("/pets/.").unwrap(), "/pets/");
        assert_eq!(n("/pets//").unwrap(), "/pets/");
        assert_eq!(n("/%2e%2e/etc").unwrap_err(), BadPath);
        assert_eq!(n("/a/../..").unwrap_err(), BadPath);
        assert_eq!(n("/..").unwrap_err(), BadPath);
        assert_eq!(n("/a/..").unwrap(), "/");
        assert_eq!(n("/%zz").unwrap_err(), BadPath);
        assert_eq!(n("*").unwrap_err(), BadPath);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn behind(header: ForwardedHeader) -> ClientAddress {
        ClientAddress::TrustedProxies {
            proxies: ["10.0.0.0/8".parse().unwrap()].into(),
            header,
        }
    }

    #[test]
    fn peer_ignores_headers() {
        let c = ClientAddress::Peer;
        assert_eq!(
            c.client(ip("::ffff:192.0.2.1"), ["198.51.100.7"]),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn trusted_proxies_walk_right_to_left() {
        let c = behind(ForwardedHeader::XForwardedFor);
        let proxy = ip("10.0.0.2");
        // From an untrusted peer the header is not believed.
        assert_eq!(c.client(ip("192.0.2.9"), ["198.51.100.7"]), ip("192.0.2.9"));
        // The right-most untrusted entry, across field values.
        assert_eq!(
            c.client(proxy, ["203.0.113.5, 198.51.100.7", "10.0.0.3"]),
            ip("198.51.100.7")
        );
        // Every entry trusted: the left-most.
        assert_eq!(c.client(proxy, ["10.1.1.1, 10.0.0.3"]), ip("10.1.1.1"));
        // Garbage ends the walk at the hop to its right.
        assert_eq!(c.client(proxy, ["198.51.100.7, nonsense"]), proxy);
        assert_eq!(c.client(proxy, ["nonsense, 10.0.0.3"]), ip("10.0.0.3"));
        // Ports are dropped.
        assert_eq!(c.client(proxy, ["198.51.100.7:4711"]), ip("198.51.100.7"));
        assert_eq!(c.client(proxy, ["[2001:db8::1]:4711"]), ip("2001:db8::1"));
        // No header: the peer.
        assert_eq!(c.client(proxy, []), proxy);
    }

    #[test]
    fn forwarded_for_is_read() {
        let c = behind(ForwardedHeader::Forwarded);
        let proxy = ip("10.0.0.2");
        assert_eq!(
            c.client(
                proxy,
                [r#"for=198.51.100.7;proto=https, For="[2001:db8::1]:80""#]
            ),
            ip("2001:db8::1")
        );
        assert_eq!(
            c.client(proxy, ["for=198.51.100.7, for=10.0.0.3"]),
            ip("198.51.100.7")
        );
        assert_eq!(c.client(proxy, ["for=unknown"]), proxy);
        assert_eq!(
            c.client(proxy, ["for=_hidden, for=10.0.0.3"]),
            ip("10.0.0.3")
        );
    }

    #[test]
    fn platform_header_is_one_address() {
        let c = ClientAddress::PlatformHeader("cf-connecting-ip".parse().unwrap());
        let peer = ip("192.0.2.9");
        assert_eq!(c.client(peer, ["198.51.100.7"]), ip("198.51.100.7"));
        assert_eq!(c.client(peer, ["198.51.100.7, 203.0.113.5"]), peer);
        assert_eq!(c.client(peer, ["198.51.100.7", "203.0.113.5"]), peer);
        assert_eq!(c.client(peer, []), peer);
    }

    /// `client-address: peer` is the default: same IR and hash as no key,
    /// and the JSON has no trace of it; another source changes the hash.
    #[test]
    fn the_default_source_keeps_the_hash() {
        let ir = |baseline: &str| {
            let text = format!("gatefold: 1\ngateway: {{ baseline: {{ {baseline} }} }}\napis:\n  a:\n    routes:\n      r: {{ path: /, policies: [{{ mock: {{ body: ok }} }}] }}\n");
            let c = crate::compile_str("spec.yaml", &text);
            c.ir.unwrap_or_else(|| panic!("{baseline}"))
        };
        let plain = ir("request-id: true");
        let peer = ir("client-address: peer");
        assert_eq!(plain.hash, peer.hash);
        let baseline = serde_json::to_value(&plain.gateway.baseline).unwrap();
        let keys: Vec<&String> = baseline.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["max-body", "request-id", "server-header", "timeouts"]
        );
        let proxied = ir("client-address: { trusted-proxies: [10.0.0.0/8] }");
        assert_ne!(plain.hash, proxied.hash);
        assert_eq!(
            proxied.gateway.baseline.client_address,
            ClientAddress::TrustedProxies {
                proxies: ["10.0.0.0/8".parse().unwrap()].into(),
                header: ForwardedHeader::XForwardedFor,
            }
        );
        // It round-trips through the IR file.
        let back = crate::ir::ValidIr::from_json(&proxied.to_json()).unwrap();
        assert_eq!(back.gateway.baseline, proxied.gateway.baseline);
    }
}
