//! Policy kinds, their options as checked values, and the fixed phase each
//! runs in. The order of [`PolicyKind`] is the execution order.

use super::matcher::{HostPattern, PathPattern};
use super::values::{
    check_header_value, ByteSize, Date, Duration, HeaderMap, HeaderName, Method, Name, Secret,
};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The request phases, in execution order (Pingora-style: each policy kind
/// implements the phases it needs and nothing runs for kinds a route lacks).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    IpFilter,
    Cors,
    RequestSizeLimit,
    /// Any one authentication policy that passes admits the request.
    Authentication,
    Acl,
    RateLimit,
    Deprecation,
    RequestScript,
    /// `mock` and `redirect` answer without the upstream.
    ShortCircuit,
    RequestTransform,
    /// Cache lookup before the proxy, store after it.
    Cache,
    /// `timeout`, `retry` and `traffic-split` shape the upstream call.
    Proxy,
    /// `response-headers` and the response side of `script`.
    Response,
}

impl Phase {
    /// The phase's name as the docs and `explain` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::IpFilter => "ip-filter",
            Phase::Cors => "cors",
            Phase::RequestSizeLimit => "request-size-limit",
            Phase::Authentication => "authentication",
            Phase::Acl => "acl",
            Phase::RateLimit => "rate-limit",
            Phase::Deprecation => "deprecation",
            Phase::RequestScript => "request-script",
            Phase::ShortCircuit => "short-circuit",
            Phase::RequestTransform => "request-transform",
            Phase::Cache => "cache",
            Phase::Proxy => "proxy",
            Phase::Response => "response",
        }
    }
}

/// Declares the policy kinds once, in execution order, and generates from
/// that one list everything that must agree kind by kind:
///
/// * [`PolicyKind`], the kind enum (its order is the execution order), with
///   [`PolicyKind::ALL`], [`PolicyKind::as_str`] (the spelling in specs),
///   [`PolicyKind::phase`] and [`PolicyKind::stakes`];
/// * [`Policy`], one variant per kind holding its checked options, and
///   [`Policy::kind`].
///
/// Each line reads `Variant: "spelling", Options, Phase, Stakes;` where
/// `Options` is the options type defined below (two kinds may share one)
/// and `Stakes` says what leaving the kind out would cost ([`Stakes`]).
macro_rules! policy_kinds {
    ($(
        $(#[doc = $doc:literal])*
        $kind:ident: $name:literal, $options:ty, $phase:ident, $stakes:ident;
    )*) => {
        /// Every v1 policy kind, in execution order.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum PolicyKind {
            $($(#[doc = $doc])* $kind,)*
        }

        impl PolicyKind {
            /// Every kind, in execution order.
            pub const ALL: [PolicyKind; [$($name),*].len()] = [$(PolicyKind::$kind),*];

            /// The spelling used in specs: `key-auth`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(PolicyKind::$kind => $name,)*
                }
            }

            /// The phase the kind runs in (`script` also runs in [`Phase::Response`]).
            pub fn phase(self) -> Phase {
                match self {
                    $(PolicyKind::$kind => Phase::$phase,)*
                }
            }

            /// What leaving the kind out would cost.
            pub fn stakes(self) -> Stakes {
                match self {
                    $(PolicyKind::$kind => Stakes::$stakes,)*
                }
            }
        }

        /// One policy with its checked options. Serialized as `{"kind": "...", ...options}`.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "kebab-case")]
        pub enum Policy {
            $($kind($options),)*
        }

        impl Policy {
            pub fn kind(&self) -> PolicyKind {
                match self {
                    $(Policy::$kind(_) => PolicyKind::$kind,)*
                }
            }
        }
    };
}

policy_kinds! {
    IpFilter: "ip-filter", IpFilter, IpFilter, Security;
    Cors: "cors", Cors, Cors, Behaviour;
    RequestSizeLimit: "request-size-limit", RequestSizeLimit, RequestSizeLimit, Security;
    KeyAuth: "key-auth", KeyAuth, Authentication, Security;
    BasicAuth: "basic-auth", BasicAuth, Authentication, Security;
    Jwt: "jwt", Jwt, Authentication, Security;
    Acl: "acl", Acl, Acl, Security;
    RateLimit: "rate-limit", RateLimit, RateLimit, Security;
    Deprecation: "deprecation", Deprecation, Deprecation, Advisory;
    Script: "script", Script, RequestScript, Security;
    Mock: "mock", Mock, ShortCircuit, Behaviour;
    Redirect: "redirect", Redirect, ShortCircuit, Behaviour;
    RequestHeaders: "request-headers", HeaderTransform, RequestTransform, Behaviour;
    Rewrite: "rewrite", Rewrite, RequestTransform, Behaviour;
    Cache: "cache", Cache, Cache, Advisory;
    Timeout: "timeout", Timeout, Proxy, Behaviour;
    Retry: "retry", Retry, Proxy, Behaviour;
    TrafficSplit: "traffic-split", TrafficSplit, Proxy, Behaviour;
    /// Language 1.1: a copy of the request to another upstream, answer ignored.
    Mirror: "mirror", Mirror, Proxy, Advisory;
    ResponseHeaders: "response-headers", HeaderTransform, Response, Behaviour;
    /// Passed through where the target places such config.
    Native: "native", Native, Response, Behaviour;
}

/// What leaving a policy kind out of a target's output would cost: this
/// decides whether a target that cannot carry a kind out may warn or must
/// refuse.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stakes {
    /// It protects the gateway: a target must carry it out exactly or
    /// refuse the spec, never leave it out (fail closed).
    Security,
    /// Its absence changes no request's outcome, only hints (`deprecation`
    /// headers), speed (`cache`) or a copy nobody answers from (`mirror`):
    /// a target may leave it out with a warning.
    Advisory,
    /// It shapes what requests get: a target that cannot carry it out
    /// refuses the spec; one that approximates it warns (refuses under `--strict`).
    Behaviour,
}

impl PolicyKind {
    pub fn parse(s: &str) -> Option<PolicyKind> {
        PolicyKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn is_authentication(self) -> bool {
        self.phase() == Phase::Authentication
    }

    /// Kinds that protect the gateway: see [`Stakes::Security`].
    pub fn is_security(self) -> bool {
        self.stakes() == Stakes::Security
    }

    /// Kinds a target may leave out with a warning: see [`Stakes::Advisory`].
    pub fn is_advisory(self) -> bool {
        self.stakes() == Stakes::Advisory
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ip-filter`: deny wins over allow; with an allow list, anything not in it is refused (403).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IpFilter {
    pub allow: BTreeSet<IpNet>,
    pub deny: BTreeSet<IpNet>,
}

/// `cors`: preflights are answered 204 by the gateway; actual requests get the allow headers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cors {
    pub origins: BTreeSet<CorsOrigin>,
    /// Methods a preflight may ask for; the front end fills in the default
    /// (every method but TRACE) when the spec gives none or `["*"]`.
    pub methods: BTreeSet<Method>,
    /// `methods: ["*"]` (language 1.1): preflights are answered
    /// `access-control-allow-methods: *`, or with the asked method when
    /// `credentials` is on (browsers read `*` literally then). `methods`
    /// then holds the default set, which is what `*` allows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub any_method: bool,
    /// Request headers a preflight may ask for; empty: echo what it asks.
    pub headers: BTreeSet<HeaderName>,
    /// `headers: ["*"]` (language 1.1): preflights are answered
    /// `access-control-allow-headers: *`, or with the asked headers when
    /// `credentials` is on. `headers` is then empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub any_header: bool,
    /// Response headers scripts may read: on actual answers and (1.1) on
    /// preflight answers.
    pub expose: BTreeSet<HeaderName>,
    pub credentials: bool,
    pub max_age: Option<Duration>,
}

/// An origin a `cors` policy allows. Written `*`, `scheme://host[:port]`
/// or `scheme://*.domain[:port]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CorsOrigin {
    /// `*`: every origin. With `credentials`, answered with the request's
    /// own origin, never `*`.
    Any,
    /// One origin, lowercase, without a path: `https://app.example.com`.
    Origin(String),
    /// One leading wildcard label (language 1.1), lowercase:
    /// `https://*.example.com` takes `https://a.example.com` and
    /// `https://a.b.example.com` (like host wildcards), not
    /// `https://example.com`; scheme and port must be the same.
    Pattern(String),
}

impl CorsOrigin {
    pub fn as_str(&self) -> &str {
        match self {
            CorsOrigin::Any => "*",
            CorsOrigin::Origin(o) | CorsOrigin::Pattern(o) => o,
        }
    }

    /// Whether this allows `origin` (as a browser sends it; compared
    /// without regard to case).
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            CorsOrigin::Any => true,
            CorsOrigin::Origin(o) => o.eq_ignore_ascii_case(origin),
            CorsOrigin::Pattern(p) => {
                let Some((scheme, suffix)) = p.split_once("://*") else {
                    return false;
                };
                let origin = origin.to_ascii_lowercase();
                let Some(rest) = origin
                    .strip_prefix(scheme)
                    .and_then(|r| r.strip_prefix("://"))
                else {
                    return false;
                };
                // The wildcard stands for one or more whole labels.
                rest.strip_suffix(suffix).is_some_and(|labels| {
                    !labels.is_empty()
                        && labels.split('.').all(|l| {
                            !l.is_empty()
                                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        })
                })
            }
        }
    }
}

impl Serialize for CorsOrigin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for CorsOrigin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(if s == "*" {
            CorsOrigin::Any
        } else if s.contains("://*.") {
            CorsOrigin::Pattern(s)
        } else {
            CorsOrigin::Origin(s)
        })
    }
}

/// `request-size-limit`: bodies larger than `max` get 413.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RequestSizeLimit {
    pub max: ByteSize,
}

/// Where `key-auth` reads the key.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyLocation {
    Header,
    Query,
}

/// `key-auth`: a consumer's key in a header or query parameter; else 401.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct KeyAuth {
    #[serde(rename = "in")]
    pub location: KeyLocation,
    pub name: String,
}

/// `basic-auth`: a consumer's user and password; else 401 with `www-authenticate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BasicAuth {
    pub realm: String,
}

/// A JWT signature algorithm.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
    ES256,
}

/// The key that verifies a `jwt` policy's signatures, together with its
/// algorithm, so the two cannot disagree: a shared secret verifies HS256
/// only, an RSA public key RS256 only, a P-256 key ES256 only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtKey {
    /// HS256 with a shared secret.
    #[serde(rename = "hs256")]
    Hs256 { secret: Secret },
    /// RS256 with an RSA public key.
    #[serde(rename = "rs256")]
    Rs256(PublicKey),
    /// ES256 with a P-256 (EC) public key.
    #[serde(rename = "es256")]
    Es256(PublicKey),
}

impl JwtKey {
    pub fn algorithm(&self) -> JwtAlgorithm {
        match self {
            JwtKey::Hs256 { .. } => JwtAlgorithm::HS256,
            JwtKey::Rs256(_) => JwtAlgorithm::RS256,
            JwtKey::Es256(_) => JwtAlgorithm::ES256,
        }
    }
}

/// A public key that verifies JWT signatures (RS256, ES256).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PublicKey {
    /// Read at compile time from the file the spec names (so the IR needs
    /// no files beside it; public keys are not secrets), and checked to be
    /// a key of the algorithm's type.
    File {
        /// The PEM `PUBLIC KEY` (SubjectPublicKeyInfo) text, for targets that take PEM.
        pem: String,
        /// The same key as a JWK, for targets that take JWKS (Envoy) or
        /// `jwk` (Workers' `crypto.subtle.importKey`).
        jwk: Jwk,
    },
    /// A PEM public key in an environment variable of the gateway, read at
    /// run time (so unchecked until then).
    Env(String),
}

/// A public key as JSON Web Key members (RFC 7518 §6), base64url without
/// padding. Serialized with its `kty`, like a JWK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub enum Jwk {
    /// An RSA key: modulus and public exponent.
    #[serde(rename = "RSA")]
    Rsa { n: String, e: String },
    /// A P-256 key (`crv: P-256`): the point's coordinates.
    #[serde(rename = "EC")]
    Ec { x: String, y: String },
}

/// `jwt`: a bearer token, verified; `consumer-claim` names the consumer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Jwt {
    pub issuer: Option<String>,
    /// A token must name one of these in `aud` (when any are given).
    pub audiences: BTreeSet<String>,
    /// The key, and with it the one algorithm a token may be signed with.
    pub key: JwtKey,
    pub consumer_claim: String,
    pub claims_to_headers: BTreeMap<String, HeaderName>,
    pub leeway: Duration,
}

/// `acl`: by consumer group; 403 when refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Acl {
    Allow(BTreeSet<Name>),
    Deny(BTreeSet<Name>),
}

/// What a rate limit counts by.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RateKey {
    Ip,
    Consumer,
    Global,
    Header(HeaderName),
}

/// `rate-limit`: fixed window; 429 with `retry-after` past the limit.
///
/// One counter set per instance ([`super::PolicyId`]): every route that
/// inherits a gateway-level limit shares its counters, an api-level limit
/// counts the api's routes together, a route-level one counts that route. A
/// named policy attached in two places is two instances, counting separately.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RateLimit {
    pub requests: u64,
    pub per: Duration,
    pub key: RateKey,
}

/// `deprecation`: RFC 8594 / RFC 9745 response headers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Deprecation {
    pub since: Option<Date>,
    pub sunset: Option<Date>,
    pub link: Option<String>,
}

/// `script`: the compiled programs ([`super::script`]), never their source.
pub use super::script::Script;

/// The body of a mock answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MockBody {
    Empty,
    Text(String),
    /// Sent as compact JSON with `content-type: application/json` unless
    /// set. Object keys are sorted (the front end builds it canonically), so
    /// the order they were written in is not part of the meaning.
    Json(serde_json::Value),
}

/// `mock`: answers without the upstream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Mock {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: MockBody,
}

/// `redirect`: answers with `location`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Redirect {
    /// Where the client is sent: a whole URL, or the request's own URL
    /// with some parts replaced. Flattened, so a `to` redirect serializes
    /// as `{"to": "...", "status": ...}`, as it did before parts existed.
    #[serde(flatten)]
    pub location: RedirectLocation,
    pub status: RedirectStatus,
}

impl Redirect {
    /// The whole URL, for a `to` redirect.
    pub fn to(&self) -> Option<&RedirectTo> {
        match &self.location {
            RedirectLocation::To(to) => Some(to),
            RedirectLocation::Parts(_) => None,
        }
    }
}

/// A redirect's target: `to` and the part-wise keys exclude each other by
/// construction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RedirectLocation {
    /// `to`: an absolute URL or a path; `{param}` in its path takes the
    /// route's params; the request's query string is appended.
    To(RedirectTo),
    /// `scheme`, `host`, `port`, `path` / `replace-prefix`: the request's
    /// URL with these parts replaced (language 1.1).
    Parts(RedirectParts),
}

/// The parts of the request's URL a part-wise redirect replaces; each part
/// not given comes from the request (see `policy-spec/README.md`,
/// "Redirects built from the request"). At least one is given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RedirectParts {
    /// `None`: the scheme of the listener the request arrived on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<RedirectScheme>,
    /// A DNS name or IP address (IPv6 in brackets), lowercase, without a
    /// port. `None`: the request's `host` / `:authority` without its port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `None`: the request's port when `scheme` is not given, else none
    /// (the scheme's default). A scheme's default port is never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `None`: the request's (normalized) path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<RedirectPath>,
}

/// `http` or `https`, for a part-wise redirect.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RedirectScheme {
    Http,
    Https,
}

impl RedirectScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            RedirectScheme::Http => "http",
            RedirectScheme::Https => "https",
        }
    }

    /// The port a `location` leaves out for this scheme.
    pub fn default_port(self) -> u16 {
        match self {
            RedirectScheme::Http => 80,
            RedirectScheme::Https => 443,
        }
    }
}

/// The path of a part-wise redirect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RedirectPath {
    /// `path`: the whole path, a template starting with `/` whose
    /// `{param}`s take the route's params; no `?` or `#`.
    Template(String),
    /// `replace-prefix`: a literal path starting with `/` that replaces the
    /// part of the path a prefix route (`/v1/*`) matched; the rest is kept
    /// (`/v1/a/b` -> `/v2/a/b`). Only on prefix routes.
    ReplacePrefix(String),
}

impl RedirectPath {
    /// The path as written, for messages and `explain`.
    pub fn text(&self) -> &str {
        match self {
            RedirectPath::Template(t) | RedirectPath::ReplacePrefix(t) => t,
        }
    }
}

impl fmt::Display for RedirectLocation {
    /// `to` as written, or the parts as `explain` shows them:
    /// `scheme=https host=new.example.com port=8443 path=/items/{id}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedirectLocation::To(to) => write!(f, "{to}"),
            RedirectLocation::Parts(p) => {
                let mut words = Vec::new();
                if let Some(s) = p.scheme {
                    words.push(format!("scheme={}", s.as_str()));
                }
                if let Some(h) = &p.host {
                    words.push(format!("host={h}"));
                }
                if let Some(port) = p.port {
                    words.push(format!("port={port}"));
                }
                match &p.path {
                    Some(RedirectPath::Template(t)) => words.push(format!("path={t}")),
                    Some(RedirectPath::ReplacePrefix(t)) => {
                        words.push(format!("replace-prefix={t}"))
                    }
                    None => {}
                }
                f.write_str(&words.join(" "))
            }
        }
    }
}

/// Checks a part-wise redirect's `host`: a DNS name, an IPv4 address or an
/// IPv6 address in brackets; no port, no `{param}`, no user.
pub fn check_redirect_host(host: &str) -> Result<(), String> {
    if host.contains("://") {
        return Err(format!("`{host}` holds a scheme; give it as `scheme:`"));
    }
    if host.contains(['{', '}']) {
        return Err(format!(
            "`{host}` has a `{{param}}`; parameters may appear in the path only, so a request cannot choose where it is sent"
        ));
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| format!("`{v6}` is not an IPv6 address"));
    }
    if host.contains(':') {
        return Err(format!("`{host}` holds a port; give it as `port:`"));
    }
    match host.parse::<HostPattern>() {
        Ok(HostPattern::Exact(_)) if !host.contains(['@', '/', '\\']) => Ok(()),
        _ => Err(format!("`{host}` is not a host name or address")),
    }
}

/// Where a `redirect` sends the client, parsed once by the front end:
/// an absolute `http(s)://host[:port]` URL or a path on the same host, then
/// a path template, an optional query and an optional fragment. `{param}`
/// in the path takes the route's parameter. Serialized as the text it was
/// written as (`https://example.com/new/{id}?from=old`), which its parts
/// give back exactly.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RedirectTo {
    /// `None`: a path on the request's own host.
    pub origin: Option<RedirectOrigin>,
    /// Starts with `/`, or is empty after an origin (`https://example.com`).
    /// May hold `{param}` placeholders; holds no `?` or `#`.
    pub path: String,
    /// After `?`, without it; no `#`.
    pub query: Option<String>,
    /// After `#`, without it.
    pub fragment: Option<String>,
}

/// The `scheme://host[:port]` of an absolute redirect.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RedirectOrigin {
    /// `https`.
    pub tls: bool,
    /// A host name, an IPv4 address, or an IPv6 address in brackets, as written.
    pub host: String,
    /// As written; `None` when the URL gives none (the scheme's default).
    pub port: Option<u16>,
}

impl fmt::Display for RedirectTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(o) = &self.origin {
            let scheme = if o.tls { "https" } else { "http" };
            write!(f, "{scheme}://{}", o.host)?;
            if let Some(p) = o.port {
                write!(f, ":{p}")?;
            }
        }
        f.write_str(&self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        if let Some(fr) = &self.fragment {
            write!(f, "#{fr}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for RedirectTo {
    type Err = String;
    fn from_str(s: &str) -> Result<RedirectTo, String> {
        if s.starts_with("//") {
            // A scheme-relative `//host` would send clients to another site.
            return Err(format!(
                "`{s}` starts with `//`, which browsers read as another host"
            ));
        }
        if check_header_value(s).is_err() || s.contains(' ') {
            return Err(format!(
                "`{s}` is not a redirect target: it holds spaces or characters a `location` header cannot carry"
            ));
        }
        let (origin, rest) = if let Some(r) = s.strip_prefix("https://") {
            (Some(true), r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (Some(false), r)
        } else if s.starts_with('/') {
            (None, s)
        } else {
            return Err(format!("`{s}` is not a redirect target"));
        };
        let origin = match origin {
            None => None,
            Some(tls) => {
                let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let authority = &rest[..end];
                let o = redirect_origin(s, tls, authority)?;
                return Ok(RedirectTo {
                    origin: Some(o),
                    ..split_path(&rest[end..])
                });
            }
        };
        Ok(RedirectTo {
            origin,
            ..split_path(rest)
        })
    }
}

/// `path[?query][#fragment]`, split.
fn split_path(text: &str) -> RedirectTo {
    let (before, fragment) = match text.split_once('#') {
        Some((b, f)) => (b, Some(f.to_string())),
        None => (text, None),
    };
    let (path, query) = match before.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (before, None),
    };
    RedirectTo {
        origin: None,
        path: path.to_string(),
        query,
        fragment,
    }
}

/// The `host[:port]` of an absolute redirect `s`.
fn redirect_origin(s: &str, tls: bool, authority: &str) -> Result<RedirectOrigin, String> {
    if authority.contains('@') {
        return Err(format!(
            "`{s}` holds a user name before `@`, which would show the client a misleading host"
        ));
    }
    if authority.contains(['{', '}']) {
        return Err(format!(
            "`{s}` has a `{{param}}` in its host; parameters may appear in the path only, so a request cannot choose where it is sent"
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: an IPv6 address needs a closing `]`"))?;
        addr.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("`{s}`: `{addr}` is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("`{s}`: only `:PORT` may follow the IPv6 address"))?,
            ),
        };
        (format!("[{addr}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{s}`: `{p}` is not a port (1-65535)"))?,
        ),
    };
    if !host.starts_with('[') && !matches!(host.parse::<HostPattern>(), Ok(HostPattern::Exact(_))) {
        return Err(format!("`{s}`: `{host}` is not a host name or address"));
    }
    Ok(RedirectOrigin { tls, host, port })
}

impl Serialize for RedirectTo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for RedirectTo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::deserialize_from_str(d)
    }
}

/// The statuses a `redirect` answers with. Serialized as the number.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RedirectStatus {
    /// 301, permanent (a client may change POST to GET).
    MovedPermanently,
    /// 302, temporary (a client may change POST to GET).
    Found,
    /// 303, see other: the client follows with GET (language 1.1).
    SeeOther,
    /// 307, temporary, same method.
    TemporaryRedirect,
    /// 308, permanent, same method.
    PermanentRedirect,
}

impl RedirectStatus {
    pub fn code(self) -> u16 {
        match self {
            RedirectStatus::MovedPermanently => 301,
            RedirectStatus::Found => 302,
            RedirectStatus::SeeOther => 303,
            RedirectStatus::TemporaryRedirect => 307,
            RedirectStatus::PermanentRedirect => 308,
        }
    }

    pub fn from_code(code: u16) -> Option<RedirectStatus> {
        [
            RedirectStatus::MovedPermanently,
            RedirectStatus::Found,
            RedirectStatus::SeeOther,
            RedirectStatus::TemporaryRedirect,
            RedirectStatus::PermanentRedirect,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }
}

impl Serialize for RedirectStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.code())
    }
}
impl<'de> Deserialize<'de> for RedirectStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = u16::deserialize(d)?;
        RedirectStatus::from_code(code).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "redirect status {code} is not 301, 302, 303, 307 or 308"
            ))
        })
    }
}

/// `request-headers` / `response-headers`: remove, then set, then add.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HeaderTransform {
    pub set: HeaderMap,
    pub add: HeaderMap,
    pub remove: BTreeSet<HeaderName>,
}

/// `rewrite`: the path sent upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rewrite {
    /// The whole upstream path; params come from the route's path.
    Path(PathPattern),
    /// Strip then add a prefix.
    Prefix {
        strip: Option<String>,
        add: Option<String>,
    },
}

/// `cache`: bounded in-memory response cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cache {
    pub ttl: Duration,
    pub methods: BTreeSet<Method>,
    pub vary: BTreeSet<HeaderName>,
}

/// `timeout`: overrides the upstream's timeouts; 504 when exceeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Timeout {
    pub connect: Option<Duration>,
    pub read: Option<Duration>,
}

/// A condition on which a request is retried.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetryOn {
    ConnectFailure,
    /// The upstream closed or reset the connection before a whole response
    /// head arrived (language 1.1); idempotent methods only, like `timeout`.
    Reset,
    Timeout,
    #[serde(rename = "500")]
    Status500,
    #[serde(rename = "502")]
    Status502,
    #[serde(rename = "503")]
    Status503,
    #[serde(rename = "504")]
    Status504,
}

impl RetryOn {
    pub const ALL: [(&'static str, RetryOn); 7] = [
        ("connect-failure", RetryOn::ConnectFailure),
        ("reset", RetryOn::Reset),
        ("timeout", RetryOn::Timeout),
        ("500", RetryOn::Status500),
        ("502", RetryOn::Status502),
        ("503", RetryOn::Status503),
        ("504", RetryOn::Status504),
    ];
}

/// `retry` (and an upstream's `retries`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Retry {
    pub attempts: u32,
    pub on: BTreeSet<RetryOn>,
}

/// One weighted destination of a split.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WeightedUpstream {
    pub upstream: Name,
    pub weight: u32,
}

/// A header value that sends a request to a given upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HeaderMatch {
    pub name: HeaderName,
    pub value: String,
    pub upstream: Name,
}

/// `traffic-split`: header matches first (first wins), then weights.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrafficSplit {
    pub to: Vec<WeightedUpstream>,
    pub header_match: Vec<HeaderMatch>,
}

/// `mirror` (language 1.1): sends a copy of `percent` % of the requests
/// (with their body, up to the route's body limit) to `upstream` and
/// ignores its answer; the copy never delays or fails the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Mirror {
    pub upstream: Name,
    /// 0 to 100: the share of requests copied.
    pub percent: u8,
}

/// The targets a spec can name.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    Kong,
    Nginx,
    Envoy,
    Cloudflare,
    Reference,
}

impl TargetKind {
    pub const ALL: [TargetKind; 5] = [
        TargetKind::Kong,
        TargetKind::Nginx,
        TargetKind::Envoy,
        TargetKind::Cloudflare,
        TargetKind::Reference,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Kong => "kong",
            TargetKind::Nginx => "nginx",
            TargetKind::Envoy => "envoy",
            TargetKind::Cloudflare => "cloudflare",
            TargetKind::Reference => "reference",
        }
    }

    pub fn parse(s: &str) -> Option<TargetKind> {
        TargetKind::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `native`: verbatim configuration for one target each; other targets ignore it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Native {
    pub per_target: BTreeMap<TargetKind, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated lists agree: `ALL` is in execution order (the enum's
    /// order, which chains sort by) and runs phase by phase, each spelling
    /// parses back to its kind and is the one serde writes.
    #[test]
    fn kind_lists_agree() {
        assert!(PolicyKind::ALL.windows(2).all(|w| w[0] < w[1]));
        assert!(PolicyKind::ALL
            .windows(2)
            .all(|w| w[0].phase() <= w[1].phase()));
        for k in PolicyKind::ALL {
            assert_eq!(PolicyKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        let p = Policy::Timeout(Timeout {
            connect: None,
            read: None,
        });
        assert_eq!(p.kind(), PolicyKind::Timeout);
        assert_eq!(serde_json::to_value(&p).unwrap()["kind"], "timeout");
    }

    /// A redirect `to` is parsed into its parts and written back exactly
    /// as it was (so the content hash of existing specs stays); what could
    /// send a client to a host the spec did not name is refused.
    #[test]
    fn redirect_targets_parse_into_parts() {
        let to: RedirectTo = "https://new.example.com:8443/pets/{id}?from=old#top"
            .parse()
            .unwrap();
        let origin = to.origin.as_ref().unwrap();
        assert!(origin.tls);
        assert_eq!(
            (origin.host.as_str(), origin.port),
            ("new.example.com", Some(8443))
        );
        assert_eq!(to.path, "/pets/{id}");
        assert_eq!(to.query.as_deref(), Some("from=old"));
        assert_eq!(to.fragment.as_deref(), Some("top"));
        for text in [
            "https://new.example.com:8443/pets/{id}?from=old#top",
            "http://example.com",
            "https://[2001:db8::1]/x",
            "/docs?a=1",
            "/",
        ] {
            let to: RedirectTo = text.parse().unwrap();
            assert_eq!(to.to_string(), text);
            assert_eq!(serde_json::to_string(&to).unwrap(), format!("\"{text}\""));
        }
        assert!("/docs".parse::<RedirectTo>().unwrap().origin.is_none());
        for bad in [
            "//evil.example/",
            "https://user@evil.example/",
            "https://{tenant}.example.com/",
            "https://example.com:0/",
            "ftp://example.com/",
            "docs",
            "/a b",
        ] {
            assert!(bad.parse::<RedirectTo>().is_err(), "{bad}");
        }
    }

    /// A `to` redirect's JSON is what it was before parts existed (so
    /// existing IRs keep their content hash); parts read back as written.
    #[test]
    fn redirect_json_keeps_to_and_reads_parts_back() {
        let to = Policy::Redirect(Redirect {
            location: RedirectLocation::To("/docs".parse().unwrap()),
            status: RedirectStatus::Found,
        });
        assert_eq!(
            serde_json::to_string(&to).unwrap(),
            r#"{"kind":"redirect","to":"/docs","status":302}"#
        );
        let parts = Policy::Redirect(Redirect {
            location: RedirectLocation::Parts(RedirectParts {
                scheme: Some(RedirectScheme::Https),
                path: Some(RedirectPath::ReplacePrefix("/v2".into())),
                ..RedirectParts::default()
            }),
            status: RedirectStatus::SeeOther,
        });
        let json = serde_json::to_string(&parts).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"redirect","parts":{"scheme":"https","path":{"replace-prefix":"/v2"}},"status":303}"#
        );
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), parts);
        assert_eq!(
            serde_json::from_str::<Policy>(r#"{"kind":"redirect","to":"/docs","status":302}"#)
                .unwrap(),
            to
        );
    }

    /// A wildcard origin takes whole labels under its domain, with the
    /// same scheme and port, and nothing that only ends like it.
    #[test]
    fn cors_origin_patterns_take_whole_labels() {
        let p = CorsOrigin::Pattern("https://*.example.com".into());
        for ok in [
            "https://a.example.com",
            "https://a.b.example.com",
            "HTTPS://A.Example.com",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for bad in [
            "https://example.com",
            "https://.example.com",
            "http://a.example.com",
            "https://a.example.com:8443",
            "https://evilexample.com",
            "https://a.example.com.evil.net",
            "https://a/b.example.com",
            "https://a@b.example.com",
        ] {
            assert!(!p.allows(bad), "{bad}");
        }
        let p = CorsOrigin::Pattern("http://*.local.test:3000".into());
        assert!(p.allows("http://app.local.test:3000"));
        assert!(!p.allows("http://app.local.test"));
    }

    /// Typed values keep the IR's JSON spelling: `"*"` and origins as
    /// strings, redirect statuses as numbers; others are refused on load.
    #[test]
    fn typed_values_serialize_as_written() {
        let origins: BTreeSet<CorsOrigin> =
            serde_json::from_str(r#"["https://a.example","*"]"#).unwrap();
        assert!(origins.contains(&CorsOrigin::Any));
        assert_eq!(
            serde_json::to_string(&origins).unwrap(),
            r#"["*","https://a.example"]"#
        );
        let s: RedirectStatus = serde_json::from_str("308").unwrap();
        assert_eq!(s, RedirectStatus::PermanentRedirect);
        assert_eq!(serde_json::to_string(&s).unwrap(), "308");
        assert_eq!(
            serde_json::from_str::<RedirectStatus>("303").unwrap(),
            RedirectStatus::SeeOther
        );
        assert!(serde_json::from_str::<RedirectStatus>("304").is_err());
    }
}
