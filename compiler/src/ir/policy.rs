//! Policy kinds, their options as checked values, and the fixed phase each
//! runs in. The order of [`PolicyKind`] is the execution order.

use super::matcher::PathPattern;
use super::values::{ByteSize, Date, Duration, HeaderName, Method, Name, Secret};
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

/// Every v1 policy kind, in execution order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    IpFilter,
    Cors,
    RequestSizeLimit,
    KeyAuth,
    BasicAuth,
    Jwt,
    Acl,
    RateLimit,
    Deprecation,
    Script,
    Mock,
    Redirect,
    RequestHeaders,
    Rewrite,
    Cache,
    Timeout,
    Retry,
    TrafficSplit,
    ResponseHeaders,
    Native,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 20] = [
        PolicyKind::IpFilter,
        PolicyKind::Cors,
        PolicyKind::RequestSizeLimit,
        PolicyKind::KeyAuth,
        PolicyKind::BasicAuth,
        PolicyKind::Jwt,
        PolicyKind::Acl,
        PolicyKind::RateLimit,
        PolicyKind::Deprecation,
        PolicyKind::Script,
        PolicyKind::Mock,
        PolicyKind::Redirect,
        PolicyKind::RequestHeaders,
        PolicyKind::Rewrite,
        PolicyKind::Cache,
        PolicyKind::Timeout,
        PolicyKind::Retry,
        PolicyKind::TrafficSplit,
        PolicyKind::ResponseHeaders,
        PolicyKind::Native,
    ];

    /// The spelling used in specs: `key-auth`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::IpFilter => "ip-filter",
            PolicyKind::Cors => "cors",
            PolicyKind::RequestSizeLimit => "request-size-limit",
            PolicyKind::KeyAuth => "key-auth",
            PolicyKind::BasicAuth => "basic-auth",
            PolicyKind::Jwt => "jwt",
            PolicyKind::Acl => "acl",
            PolicyKind::RateLimit => "rate-limit",
            PolicyKind::Deprecation => "deprecation",
            PolicyKind::Script => "script",
            PolicyKind::Mock => "mock",
            PolicyKind::Redirect => "redirect",
            PolicyKind::RequestHeaders => "request-headers",
            PolicyKind::Rewrite => "rewrite",
            PolicyKind::Cache => "cache",
            PolicyKind::Timeout => "timeout",
            PolicyKind::Retry => "retry",
            PolicyKind::TrafficSplit => "traffic-split",
            PolicyKind::ResponseHeaders => "response-headers",
            PolicyKind::Native => "native",
        }
    }

    pub fn parse(s: &str) -> Option<PolicyKind> {
        PolicyKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The phase the kind runs in (`script` also runs in [`Phase::Response`]).
    pub fn phase(self) -> Phase {
        match self {
            PolicyKind::IpFilter => Phase::IpFilter,
            PolicyKind::Cors => Phase::Cors,
            PolicyKind::RequestSizeLimit => Phase::RequestSizeLimit,
            PolicyKind::KeyAuth | PolicyKind::BasicAuth | PolicyKind::Jwt => Phase::Authentication,
            PolicyKind::Acl => Phase::Acl,
            PolicyKind::RateLimit => Phase::RateLimit,
            PolicyKind::Deprecation => Phase::Deprecation,
            PolicyKind::Script => Phase::RequestScript,
            PolicyKind::Mock | PolicyKind::Redirect => Phase::ShortCircuit,
            PolicyKind::RequestHeaders | PolicyKind::Rewrite => Phase::RequestTransform,
            PolicyKind::Cache => Phase::Cache,
            PolicyKind::Timeout | PolicyKind::Retry | PolicyKind::TrafficSplit => Phase::Proxy,
            PolicyKind::ResponseHeaders => Phase::Response,
            // Passed through where the target places such config.
            PolicyKind::Native => Phase::Response,
        }
    }

    pub fn is_authentication(self) -> bool {
        self.phase() == Phase::Authentication
    }

    /// Kinds that protect the gateway: a target must carry them out exactly
    /// or refuse the spec, never leave them out (fail closed).
    pub fn is_security(self) -> bool {
        matches!(
            self,
            PolicyKind::KeyAuth
                | PolicyKind::BasicAuth
                | PolicyKind::Jwt
                | PolicyKind::Acl
                | PolicyKind::IpFilter
                | PolicyKind::RateLimit
                | PolicyKind::RequestSizeLimit
                | PolicyKind::Script
        )
    }

    /// Kinds whose absence changes no request's outcome, only hints
    /// (`deprecation` headers) or speed (`cache`): the only ones a target
    /// may leave out with a warning.
    pub fn is_advisory(self) -> bool {
        matches!(self, PolicyKind::Deprecation | PolicyKind::Cache)
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One policy with its checked options. Serialized as `{"kind": "...", ...options}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Policy {
    IpFilter(IpFilter),
    Cors(Cors),
    RequestSizeLimit(RequestSizeLimit),
    KeyAuth(KeyAuth),
    BasicAuth(BasicAuth),
    Jwt(Jwt),
    Acl(Acl),
    RateLimit(RateLimit),
    Deprecation(Deprecation),
    Script(Script),
    Mock(Mock),
    Redirect(Redirect),
    RequestHeaders(HeaderTransform),
    Rewrite(Rewrite),
    Cache(Cache),
    Timeout(Timeout),
    Retry(Retry),
    TrafficSplit(TrafficSplit),
    ResponseHeaders(HeaderTransform),
    Native(Native),
}

impl Policy {
    pub fn kind(&self) -> PolicyKind {
        match self {
            Policy::IpFilter(_) => PolicyKind::IpFilter,
            Policy::Cors(_) => PolicyKind::Cors,
            Policy::RequestSizeLimit(_) => PolicyKind::RequestSizeLimit,
            Policy::KeyAuth(_) => PolicyKind::KeyAuth,
            Policy::BasicAuth(_) => PolicyKind::BasicAuth,
            Policy::Jwt(_) => PolicyKind::Jwt,
            Policy::Acl(_) => PolicyKind::Acl,
            Policy::RateLimit(_) => PolicyKind::RateLimit,
            Policy::Deprecation(_) => PolicyKind::Deprecation,
            Policy::Script(_) => PolicyKind::Script,
            Policy::Mock(_) => PolicyKind::Mock,
            Policy::Redirect(_) => PolicyKind::Redirect,
            Policy::RequestHeaders(_) => PolicyKind::RequestHeaders,
            Policy::Rewrite(_) => PolicyKind::Rewrite,
            Policy::Cache(_) => PolicyKind::Cache,
            Policy::Timeout(_) => PolicyKind::Timeout,
            Policy::Retry(_) => PolicyKind::Retry,
            Policy::TrafficSplit(_) => PolicyKind::TrafficSplit,
            Policy::ResponseHeaders(_) => PolicyKind::ResponseHeaders,
            Policy::Native(_) => PolicyKind::Native,
        }
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
    /// (every method but TRACE) when the spec gives none.
    pub methods: BTreeSet<Method>,
    /// Request headers a preflight may ask for; empty: echo what it asks.
    pub headers: BTreeSet<HeaderName>,
    pub expose: BTreeSet<HeaderName>,
    pub credentials: bool,
    pub max_age: Option<Duration>,
}

/// An origin a `cors` policy allows. Written `*` or `scheme://host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CorsOrigin {
    /// `*`: every origin (never with credentials).
    Any,
    /// One origin, lowercase, without a path: `https://app.example.com`.
    Origin(String),
}

impl CorsOrigin {
    pub fn as_str(&self) -> &str {
        match self {
            CorsOrigin::Any => "*",
            CorsOrigin::Origin(o) => o,
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

/// Where a JWT verification key comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JwtKey {
    /// Shared secret (HS256).
    Secret(Secret),
    /// PEM public key (RS256/ES256), read at compile time from the file the
    /// spec names, so the IR needs no files beside it. Public keys are not secrets.
    PublicKeyPem(String),
    /// PEM public key in an environment variable (RS256/ES256).
    PublicKeyEnv(String),
}

/// `jwt`: a bearer token, verified; `consumer-claim` names the consumer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Jwt {
    pub issuer: Option<String>,
    /// A token must name one of these in `aud` (when any are given).
    pub audiences: BTreeSet<String>,
    pub algorithms: BTreeSet<JwtAlgorithm>,
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

/// `script`: portable script sources, compiled per target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Script {
    pub request: Option<String>,
    pub response: Option<String>,
}

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
    pub headers: BTreeMap<HeaderName, String>,
    pub body: MockBody,
}

/// `redirect`: answers with `location`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Redirect {
    /// Absolute URL or path; `{param}` takes the route's params.
    pub to: String,
    pub status: RedirectStatus,
}

/// The statuses a `redirect` answers with. Serialized as the number.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RedirectStatus {
    /// 301, permanent (a client may change POST to GET).
    MovedPermanently,
    /// 302, temporary (a client may change POST to GET).
    Found,
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
            RedirectStatus::TemporaryRedirect => 307,
            RedirectStatus::PermanentRedirect => 308,
        }
    }

    pub fn from_code(code: u16) -> Option<RedirectStatus> {
        [
            RedirectStatus::MovedPermanently,
            RedirectStatus::Found,
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
                "redirect status {code} is not 301, 302, 307 or 308"
            ))
        })
    }
}

/// `request-headers` / `response-headers`: remove, then set, then add.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HeaderTransform {
    pub set: BTreeMap<HeaderName, String>,
    pub add: BTreeMap<HeaderName, String>,
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
    pub const ALL: [(&'static str, RetryOn); 6] = [
        ("connect-failure", RetryOn::ConnectFailure),
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
        assert!(serde_json::from_str::<RedirectStatus>("303").is_err());
    }
}
