//! Lowered routes: each route's effective, ready-to-emit meaning, computed
//! once by the compiler so that no back end (and not the reference gateway)
//! re-derives it: where requests go and with which timeouts and retries,
//! the path sent upstream, the body limit, and the authentication group.

use super::policy::{Policy, Retry, Rewrite};
use super::values::{ByteSize, Duration, Name};
use super::{Baseline, Gateway, PathPattern, PolicyId, Timeouts, Upstream};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a route does besides running its chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Lowered {
    /// How requests reach an upstream; `None` when the route has none (its
    /// chain always answers: `mock`, `redirect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyPlan>,
    /// The path sent upstream (`keep` is left out of the JSON).
    #[serde(default, skip_serializing_if = "UpstreamPath::is_keep")]
    pub upstream_path: UpstreamPath,
    /// Larger request bodies get 413: the route's `request-size-limit`,
    /// else the baseline `max-body`. Left out of the JSON when it is the
    /// language default (most routes), which keeps the IR small.
    #[serde(
        default = "default_max_body",
        skip_serializing_if = "is_default_max_body"
    )]
    pub max_body: ByteSize,
    /// The authentication kinds of the chain, tried as one phase; absent
    /// when the chain has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthGroup>,
    /// `preserve-host` (the route's, else its api's): the upstream gets the
    /// client's `host` (HTTP/2 `:authority`) instead of the target's. Left
    /// out of the JSON when false, so specs without it keep their hash.
    #[serde(default, skip_serializing_if = "is_false")]
    pub preserve_host: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The upstreams a route sends to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyPlan {
    /// Every request to one upstream.
    Single(Destination),
    /// A `traffic-split` (the instance named) picks among `to`: each
    /// upstream it names once, in the order first named (header matches,
    /// then weights).
    Split {
        policy: PolicyId,
        to: Vec<Destination>,
    },
}

impl ProxyPlan {
    /// Every destination, in order.
    pub fn destinations(&self) -> &[Destination] {
        match self {
            ProxyPlan::Single(d) => std::slice::from_ref(d),
            ProxyPlan::Split { to, .. } => to,
        }
    }
}

/// One upstream as this route calls it: effective timeouts (the route's
/// `timeout`, else the upstream's, else the baseline, field by field) and
/// retries (the route's `retry`, else the upstream's `retries`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Destination {
    pub upstream: Name,
    /// Left out of the JSON when it is the language default, as is
    /// `read_timeout`: the Rust value is always the effective one.
    #[serde(
        default = "default_connect",
        skip_serializing_if = "is_default_connect"
    )]
    pub connect_timeout: Duration,
    #[serde(default = "default_read", skip_serializing_if = "is_default_read")]
    pub read_timeout: Duration,
    /// Absent: no retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
}

fn default_max_body() -> ByteSize {
    Baseline::DEFAULT_MAX_BODY
}
fn is_default_max_body(b: &ByteSize) -> bool {
    *b == Baseline::DEFAULT_MAX_BODY
}
fn default_connect() -> Duration {
    Timeouts::DEFAULT.connect
}
fn is_default_connect(d: &Duration) -> bool {
    *d == Timeouts::DEFAULT.connect
}
fn default_read() -> Duration {
    Timeouts::DEFAULT.read
}
fn is_default_read(d: &Duration) -> bool {
    *d == Timeouts::DEFAULT.read
}

/// How the request path becomes the upstream path (the query is kept).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamPath {
    /// Unchanged.
    #[default]
    Keep,
    /// Remove a literal prefix (at a `/` boundary), then add one; an empty
    /// result is `/`. `strip-base-path` and a prefix `rewrite` both lower to this.
    Prefix {
        strip: Option<String>,
        add: Option<String>,
    },
    /// The whole path from a template whose `{params}` are the route's.
    Template(PathPattern),
}

impl UpstreamPath {
    fn is_keep(&self) -> bool {
        matches!(self, UpstreamPath::Keep)
    }
}

/// The chain's authentication kinds: any one that passes admits the
/// request; if none does, 401 (with `www-authenticate: Basic realm=...`
/// when `realm` is set, that is when `basic-auth` is among them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuthGroup {
    /// In the order they are tried (kind order: key-auth, basic-auth, jwt).
    pub methods: Vec<PolicyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
}

/// What lowering reads besides the route's chain.
pub(crate) struct LowerInput<'a> {
    pub gateway: &'a Gateway,
    pub upstreams: &'a BTreeMap<Name, Upstream>,
    pub policies: &'a super::PolicyIndex<'a>,
}

impl LowerInput<'_> {
    /// Lowers one route: its chain, its upstream and the base path
    /// `strip-base-path` removes (never together with a `rewrite`).
    pub fn lower(
        &self,
        chain: &[PolicyId],
        upstream: Option<&Name>,
        strip_base: Option<&str>,
    ) -> Lowered {
        let policy = |id: &PolicyId| self.policies.get(id).map(|i| &i.policy);
        let mut timeout = None;
        let mut retry = None;
        let mut split = None;
        let mut max_body = self.gateway.baseline.max_body;
        let mut upstream_path = match strip_base {
            Some(base) => UpstreamPath::Prefix {
                strip: Some(base.to_string()),
                add: None,
            },
            None => UpstreamPath::Keep,
        };
        let mut methods = Vec::new();
        let mut realm = None;
        for id in chain {
            match policy(id) {
                Some(Policy::Timeout(t)) => timeout = Some(t),
                Some(Policy::Retry(r)) => retry = Some(r),
                Some(Policy::TrafficSplit(s)) => split = Some((id, s)),
                Some(Policy::RequestSizeLimit(l)) => max_body = l.max,
                Some(Policy::Rewrite(Rewrite::Path(t))) => {
                    upstream_path = UpstreamPath::Template(t.clone())
                }
                Some(Policy::Rewrite(Rewrite::Prefix { strip, add })) => {
                    upstream_path = UpstreamPath::Prefix {
                        strip: strip.clone(),
                        add: add.clone(),
                    }
                }
                Some(p) if p.kind().is_authentication() => {
                    if let Policy::BasicAuth(b) = p {
                        realm = Some(b.realm.clone());
                    }
                    methods.push(id.clone());
                }
                _ => {}
            }
        }
        let base = &self.gateway.baseline.timeouts;
        let destination = |name: &Name| {
            let up = self.upstreams.get(name);
            let up_t = up.and_then(|u| u.timeouts.as_ref());
            let pick = |route: Option<Duration>, upstream: Option<Duration>, baseline| {
                route.or(upstream).unwrap_or(baseline)
            };
            Destination {
                upstream: name.clone(),
                connect_timeout: pick(
                    timeout.and_then(|t| t.connect),
                    up_t.and_then(|t| t.connect),
                    base.connect,
                ),
                read_timeout: pick(
                    timeout.and_then(|t| t.read),
                    up_t.and_then(|t| t.read),
                    base.read,
                ),
                retry: retry
                    .cloned()
                    .or_else(|| up.and_then(|u| u.retries.clone())),
            }
        };
        let proxy = match split {
            Some((id, s)) => {
                let mut names: Vec<&Name> = Vec::new();
                let named = s.header_match.iter().map(|m| &m.upstream);
                for n in named.chain(s.to.iter().map(|w| &w.upstream)) {
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
                Some(ProxyPlan::Split {
                    policy: id.clone(),
                    to: names.into_iter().map(destination).collect(),
                })
            }
            None => upstream.map(|u| ProxyPlan::Single(destination(u))),
        };
        Lowered {
            proxy,
            upstream_path,
            max_body,
            auth: (!methods.is_empty()).then_some(AuthGroup { methods, realm }),
            preserve_host: false,
        }
    }
}
