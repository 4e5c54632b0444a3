//! The gatefold IR: what a spec *means*, resolved and target-neutral.
//!
//! Every back end reads only this; none reads YAML. It is what the reference
//! gateway executes and what the fleet tool diffs.
//!
//! # Meaning
//!
//! * **Routes.** [`Ir::routes`] holds every route of every api, sorted by
//!   match precedence: a request goes to the *first* route in this list whose
//!   [`Matcher`] takes its host, path and method and whose [`Conditions`]
//!   (`match`) it meets. That order already encodes the rules: exact paths
//!   before templates, templates with more literal segments first, longer
//!   prefixes before shorter ones; where paths tie, more header conditions
//!   first, then more query conditions; and remaining ties in the order the
//!   spec lists the routes. A route whose conditions a request fails is, for
//!   that request, not there. If some route takes the path (and its
//!   conditions hold) but none the method, the answer is 405 with an `allow`
//!   header naming the methods of those routes; if none takes the path, 404
//!   with `{"error":"no route"}`.
//! * **Paths** are full request paths (the api's base path joined in).
//!   [`Lowered::upstream_path`] says what is sent upstream (`strip-base-path`
//!   and `rewrite` both lower to it).
//! * **Policy instances.** [`Ir::policies`] holds each policy the spec
//!   attaches, once, by [`PolicyId`]: where it is attached (gateway, an api,
//!   a route) and its kind, like `gateway/rate-limit`. A gateway-level
//!   policy is one instance whatever number of routes inherit it; state
//!   (rate-limit counters, caches) belongs to the instance.
//! * **Policy chains.** [`Route::chain`] is the effective chain, as ids:
//!   gateway, then api, then route policies, where a kind given at a lower
//!   level replaced the inherited one and `disable` removed kinds. It is
//!   sorted by [`PolicyKind`], which is execution order ([`Phase`]).
//!   Authentication kinds admit a request when any one of them passes.
//! * **Baseline** ([`Baseline`]) applies to every route whatever its chain,
//!   including the request model ([`request`]): how the path is normalized
//!   before matching and where the client address comes from.
//! * **By host first.** [`crate::dispatch::DispatchView`] projects the
//!   route list per host class, with each path's method groups, 405 allow
//!   set and preflight entries, giving the same answer as this list.
//! * **Lowered meaning.** [`Route::lowered`] is what a back end emits
//!   without re-deriving anything: the proxy plan (one upstream or a split,
//!   each with effective connect/read timeouts and retries), the upstream
//!   path transform, the effective body limit and the authentication group
//!   (methods in order, realm), and whether the client's host is sent
//!   upstream (`preserve-host`). A `mock`/`redirect` answers before the proxy.
//! * **Secrets** are references ([`Secret`]), never values.
//!
//! # Identity
//!
//! Entities are named by the spec: routes by [`RouteId`] (`api.route`),
//! policy instances by [`PolicyId`], upstreams and consumers by name.
//! Generated names in every target derive from these only. [`SourceMap`]
//! points each entity back to its spec line; an instance's [`Provenance`] says
//! which named policy it came through. [`Ir::hash`] covers the meaning only
//! (not sources, not origins), so reformatting a spec or renaming a named
//! policy leaves it unchanged.

mod check;
pub mod conditions;
pub mod delta;
pub mod diff;
mod hash;
mod index;
pub mod instance;
pub mod lowered;
pub mod matcher;
pub mod policy;
pub mod request;
pub mod script;
mod select;
mod source_map;
pub mod tls;
pub mod values;

pub use conditions::{Conditions, QueryText};
pub use hash::{ContentHash, RouteMeanings};
pub use index::PolicyIndex;
pub use instance::{Attachment, PolicyId, PolicyInstance, Provenance};
pub use lowered::{AuthGroup, Destination, Lowered, ProxyPlan, UpstreamPath};
pub use matcher::{HostPattern, Matcher, PathKind, PathPattern, Segment};
pub use policy::{Phase, Policy, PolicyKind, Stakes, TargetKind};
pub use request::{ClientAddress, ForwardedHeader, PathNormalization};
pub use script::Script;
pub use source_map::{Level, Loc, SourceMap};
pub use values::{
    ByteSize, Date, Duration, HeaderMap, HeaderName, HeaderValue, Method, Name, Secret,
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// Version of the IR format; bumped when its meaning or shape changes.
pub const IR_FORMAT: u32 = 3;

/// A compiled spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Ir {
    pub format: u32,
    /// Hash of the meaning: gateway, upstreams, consumers and routes.
    pub hash: ContentHash,
    pub gateway: Gateway,
    #[serde(deserialize_with = "deserialize_sorted_map")]
    pub upstreams: BTreeMap<Name, Upstream>,
    #[serde(deserialize_with = "deserialize_sorted_map")]
    pub consumers: BTreeMap<Name, Consumer>,
    /// Every policy instance some route's chain uses, by id.
    #[serde(deserialize_with = "deserialize_sorted_map")]
    pub policies: BTreeMap<PolicyId, PolicyInstance>,
    /// In match precedence order; see the module docs.
    pub routes: Vec<Arc<Route>>,
    pub sources: SourceMap,
}

/// Gateway-wide settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Gateway {
    /// Names generated objects on every target.
    pub name: Name,
    /// The port each target serves on.
    pub listen: u16,
    pub baseline: Baseline,
    /// `gateway.tls`: the TLS listener, when the spec has one. Left out of
    /// the JSON when unset, so specs without it keep their content hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<tls::Tls>,
}

/// What every gateway does even with no policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Baseline {
    /// Keep an incoming `x-request-id` or make one; send it upstream and back.
    pub request_id: bool,
    /// Larger request bodies get 413.
    pub max_body: ByteSize,
    pub timeouts: Timeouts,
    /// Whether the gateway may advertise itself in `server`.
    pub server_header: bool,
    /// How request paths are normalized before matching. Left out of the
    /// JSON when standard (the only kind today), so hashes do not change.
    #[serde(default, skip_serializing_if = "PathNormalization::is_standard")]
    pub path: PathNormalization,
    /// Where the client address comes from (`client-address`). Left out of
    /// the JSON when it is the TCP peer, so specs without it keep their hash.
    #[serde(default, skip_serializing_if = "ClientAddress::is_peer")]
    pub client_address: ClientAddress,
}

impl Baseline {
    /// The language's `max-body` when the spec sets none.
    pub const DEFAULT_MAX_BODY: ByteSize = ByteSize(1 << 20);
}

/// Upstream connect and read timeouts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
}

impl Timeouts {
    /// The language's timeouts when the spec sets none.
    pub const DEFAULT: Timeouts = Timeouts {
        connect: Duration::from_secs(5),
        read: Duration::from_secs(30),
    };
}

/// A named pool of origin servers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Upstream {
    /// Its origin servers (the spec's `targets`; "target" in this code
    /// means a back end).
    pub targets: Vec<OriginServer>,
    pub balance: Balance,
    pub health: Option<HealthCheck>,
    pub retries: Option<policy::Retry>,
    /// Unset fields fall back to the baseline timeouts.
    pub timeouts: Option<policy::Timeout>,
}

/// One origin server of an upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OriginServer {
    pub url: OriginUrl,
    pub weight: u32,
}

/// `http(s)://host:port` of an origin; the port is always explicit here.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OriginUrl {
    pub tls: bool,
    pub host: OriginHost,
    pub port: u16,
}

/// The host of an origin server: a name to resolve, or an address to
/// connect to as it is. Back ends differ here (Envoy: a `STRICT_DNS` or a
/// `STATIC` cluster; nginx: a `resolver` for names), so the IR says which.
/// Written as in a URL: IPv6 in brackets.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OriginHost {
    /// A DNS name, lower-case: `pets.internal`.
    Dns(String),
    /// An IPv4 or IPv6 address.
    Ip(std::net::IpAddr),
}

impl fmt::Display for OriginHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginHost::Dns(name) => f.write_str(name),
            OriginHost::Ip(std::net::IpAddr::V4(a)) => write!(f, "{a}"),
            OriginHost::Ip(std::net::IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

impl fmt::Display for OriginUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

impl std::str::FromStr for OriginUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<OriginUrl, String> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(format!(
                "`{s}` must start with `http://` or `https://`, like `http://127.0.0.1:9001`"
            ));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(format!("`{s}`: an upstream target is scheme, host and port only; put paths in a `rewrite` policy"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{s}`: an IPv6 address needs a closing `]`"))?;
            addr.parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("`{s}`: `{addr}` is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(|| {
                    format!("`{s}`: `{after}` follows the IPv6 address; only `:PORT` may, like `http://[{addr}]:8080`")
                })?),
            };
            (addr.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{s}`: `{p}` is not a port (1-65535)"))?,
            None if tls => 443,
            None => 80,
        };
        let host = if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            OriginHost::Ip(ip)
        } else {
            match host.parse::<HostPattern>() {
                Ok(HostPattern::Exact(name)) => OriginHost::Dns(name),
                _ => return Err(format!("`{s}`: `{host}` is not a host name or address")),
            }
        };
        Ok(OriginUrl { tls, host, port })
    }
}

impl Serialize for OriginUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for OriginUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_from_str(d)
    }
}

/// How requests spread over an upstream's targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    RoundRobin,
    LeastRequest,
    /// Same header value, same target (while it is healthy).
    HashHeader(HeaderName),
}

/// Active health checks: `GET path` every `interval`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HealthCheck {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub unhealthy_after: u32,
    pub healthy_after: u32,
}

/// A client the gateway knows, with its groups and credentials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Consumer {
    pub groups: BTreeSet<Name>,
    /// For `key-auth`; several while rotating.
    pub keys: BTreeSet<Secret>,
    /// For `basic-auth`.
    pub basic: Option<BasicCredential>,
}

/// A `basic-auth` user and password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BasicCredential {
    pub user: String,
    pub password: Secret,
}

/// The identity of a route: `api.route`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteId {
    pub api: Name,
    pub route: Name,
}

impl fmt::Display for RouteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api.as_str())?;
        f.write_str(".")?;
        f.write_str(self.route.as_str())
    }
}

/// Serializes `value` as one string: written out in full, then escaped
/// once. `collect_str` escapes each piece a `Display` writes, and the IR
/// holds route ids, policy ids and path patterns by the thousand.
fn serialize_display<S: Serializer>(value: &impl fmt::Display, s: S) -> Result<S::Ok, S::Error> {
    use fmt::Write as _;
    let mut text = String::with_capacity(64);
    let _ = write!(text, "{value}");
    s.serialize_str(&text)
}

/// Deserializes a map that the IR writes in key order: the entries are
/// collected and the tree built in one pass (`BTreeMap::from_iter` sorts,
/// which costs one comparison per entry on sorted input), not inserted one
/// by one with a search from the root each time. As with inserting, a key
/// written twice keeps its last value; unsorted input is sorted.
pub(crate) fn deserialize_sorted_map<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    struct Entries<K, V>(std::marker::PhantomData<(K, V)>);
    impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> serde::de::Visitor<'de>
        for Entries<K, V>
    {
        type Value = BTreeMap<K, V>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            // A hint is the input's word: at most a page's worth up front.
            let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(entries.into_iter().collect())
        }
    }
    d.deserialize_map(Entries(std::marker::PhantomData))
}

/// Deserializes a value written as one string through its `FromStr`,
/// reading the string where the parser holds it: no `String` per value,
/// and an IR holds route ids, policy ids and path patterns by the
/// ten thousand. Accepts what `String` accepts.
pub(crate) fn deserialize_from_str<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    struct Parsed<T>(std::marker::PhantomData<T>);
    impl<T: std::str::FromStr<Err = String>> serde::de::Visitor<'_> for Parsed<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
            text.parse().map_err(E::custom)
        }
    }
    d.deserialize_str(Parsed(std::marker::PhantomData))
}

impl std::str::FromStr for RouteId {
    type Err = String;
    fn from_str(s: &str) -> Result<RouteId, String> {
        let (a, r) = s
            .split_once('.')
            .ok_or_else(|| format!("`{s}` is not a route: write `API.ROUTE`"))?;
        Ok(RouteId {
            api: a.parse()?,
            route: r.parse()?,
        })
    }
}

impl Serialize for RouteId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_display(self, s)
    }
}
impl<'de> Deserialize<'de> for RouteId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_from_str(d)
    }
}

/// A route with everything a target needs to serve it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Route {
    pub id: RouteId,
    pub matcher: Matcher,
    /// The route's (or its api's) upstream as the spec names it; `None`
    /// only when the chain answers itself (`mock`, `redirect`) or a
    /// `traffic-split` picks it. [`Lowered::proxy`] is what to emit.
    pub upstream: Option<Name>,
    /// The effective policy chain: instances in [`Ir::policies`], in
    /// execution order, one per kind.
    pub chain: Vec<PolicyId>,
    /// The route's effective meaning beyond the chain, ready to emit.
    /// Boxed: it is made last, from the route's other parts
    /// (`resolve::RouteParts`), which are smaller without it while the
    /// compiler holds 100,000 of them.
    pub lowered: Box<Lowered>,
}

impl Route {
    /// The id of the route's `kind` policy, if its chain has one.
    pub fn policy_id(&self, kind: PolicyKind) -> Option<&PolicyId> {
        self.chain.iter().find(|p| p.kind == kind)
    }
}

impl Ir {
    pub fn route(&self, id: &RouteId) -> Option<&Route> {
        self.routes.iter().find(|r| &r.id == id).map(|r| &**r)
    }

    /// A route's chain with each instance, in execution order.
    pub fn chain<'a>(
        &'a self,
        route: &'a Route,
    ) -> impl Iterator<Item = (&'a PolicyId, &'a PolicyInstance)> + 'a {
        route
            .chain
            .iter()
            .filter_map(move |id| Some((id, self.policies.get(id)?)))
    }

    /// The route's `kind` policy, if its chain has one.
    pub fn policy(&self, route: &Route, kind: PolicyKind) -> Option<&Policy> {
        Some(&self.policies.get(route.policy_id(kind)?)?.policy)
    }
}

/// An IR that passed validation. Back ends take only this, so they report
/// only "this target cannot express that", never "this spec is wrong".
#[derive(Clone, Debug, PartialEq)]
pub struct ValidIr(Ir);

impl ValidIr {
    /// Only the compiler makes one (and [`ValidIr::from_json`], which checks
    /// the hash and what back ends rely on).
    pub(crate) fn new(ir: Ir) -> ValidIr {
        debug_assert_eq!(check::check(&ir), Ok(()));
        ValidIr(ir)
    }

    /// Loads a compiled `gatefold.ir.json`, refusing one whose format is
    /// unknown, whose content no longer matches its hash (edited by hand),
    /// or that breaks what validation guarantees and back ends rely on:
    /// unique route ids; every upstream a route or `traffic-split` names and
    /// every group an `acl` checks defined; each chain in phase order with
    /// no kind twice, naming defined instances attached where they can
    /// apply to the route; every instance used and matching its id; and a
    /// source map that covers exactly the routes, the policy instances, the
    /// upstreams and the consumers. (The hash alone can be recomputed by
    /// anyone.)
    pub fn from_json(text: &str) -> Result<ValidIr, String> {
        Self::from_parsed(Self::read(text)?)
    }

    fn read(text: &str) -> Result<Ir, String> {
        serde_json::from_str(text).map_err(|e| format!("not a gatefold IR file: {e}"))
    }

    /// [`ValidIr::from_json`] for an IR already read (or made from another
    /// by [`delta::IrDelta::apply`]): the same checks.
    pub fn from_parsed(ir: Ir) -> Result<ValidIr, String> {
        Self::check_hashed(ir, ContentHash::of)
    }

    /// [`ValidIr::from_json`], also giving each route's JSON as the hash
    /// read it, for an IR made from this one by changes
    /// ([`delta::IrDelta::apply_keeping`]).
    pub fn from_json_keeping(text: &str) -> Result<(ValidIr, RouteMeanings), String> {
        Self::from_parsed_keeping(Self::read(text)?, None)
    }

    /// [`ValidIr::from_parsed`] with the routes' JSON kept, reusing
    /// `reuse` as [`ContentHash::compute_keeping`] does.
    pub(crate) fn from_parsed_keeping(
        ir: Ir,
        reuse: Option<(&RouteMeanings, &[Option<usize>])>,
    ) -> Result<(ValidIr, RouteMeanings), String> {
        let mut kept = None;
        let ir = Self::check_hashed(ir, |ir| {
            let (hash, meanings) = ContentHash::compute_keeping(ir, reuse);
            kept = Some(meanings);
            hash
        })?;
        Ok((ir, kept.unwrap_or_default()))
    }

    /// The checks of [`ValidIr::from_json`], with the content hash
    /// computed by `hash`.
    fn check_hashed(ir: Ir, hash: impl FnOnce(&Ir) -> ContentHash) -> Result<ValidIr, String> {
        if ir.format != IR_FORMAT {
            return Err(format!(
                "IR format {} is not supported (this gatefold reads format {IR_FORMAT}); recompile the spec",
                ir.format
            ));
        }
        let actual = hash(&ir);
        if actual != ir.hash {
            return Err(format!(
                "the IR's content does not match its hash ({} != {}): it was edited after compilation; recompile the spec instead",
                actual, ir.hash
            ));
        }
        check::check(&ir)
            .map_err(|e| format!("not a valid gatefold IR: {e}; recompile the spec"))?;
        Ok(ValidIr(ir))
    }

    pub fn ir(&self) -> &Ir {
        &self.0
    }

    /// Deterministic compact JSON with a trailing newline. Compact, not
    /// pretty: the IR of a large spec is a third of the size, and people
    /// read it through `gatefold explain` or `jq`.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string(&self.0).expect("IR serializes");
        s.push('\n');
        s
    }
}

impl std::ops::Deref for ValidIr {
    type Target = Ir;
    fn deref(&self) -> &Ir {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map built in one pass reads as one inserted key by key: any key
    /// order, the last of a repeated key, and a non-string key refused.
    #[test]
    fn sorted_maps_read_as_inserted_maps() {
        #[derive(Deserialize)]
        struct M(#[serde(deserialize_with = "deserialize_sorted_map")] BTreeMap<Name, u32>);
        let m: M = serde_json::from_str(r#"{"b":1,"a":2,"c":3,"a":4}"#).unwrap();
        let inserted: BTreeMap<Name, u32> =
            serde_json::from_str(r#"{"b":1,"a":2,"c":3,"a":4}"#).unwrap();
        assert_eq!(m.0, inserted);
        assert_eq!(m.0.get(&"a".parse::<Name>().unwrap()), Some(&4));
        assert!(serde_json::from_str::<M>(r#"{"a b":1}"#).is_err());
        assert!(serde_json::from_str::<M>(r#"[1]"#).is_err());
    }

    /// Ids parsed in place take escaped strings as `String` did, and say
    /// what is wrong with a bad one.
    #[test]
    fn ids_parse_in_place() {
        let id: RouteId = serde_json::from_str(r#""pets.get\u002dpet""#).unwrap();
        assert_eq!(id.to_string(), "pets.get-pet");
        let e = serde_json::from_str::<RouteId>(r#""nodot""#).unwrap_err();
        assert!(e.to_string().contains("is not a route"), "{e}");
        let e = serde_json::from_str::<RouteId>("7").unwrap_err();
        assert!(e.to_string().contains("expected a string"), "{e}");
    }

    /// An origin host says whether it is a name to resolve or an address,
    /// and is written back as it reads in a URL (IPv6 in brackets).
    #[test]
    fn origin_hosts_are_names_or_addresses() {
        let url: OriginUrl = "http://Pets.Internal:9001".parse().unwrap();
        assert_eq!(url.host, OriginHost::Dns("pets.internal".into()));
        let url: OriginUrl = "https://10.0.0.7".parse().unwrap();
        assert_eq!(url.host, OriginHost::Ip([10, 0, 0, 7].into()));
        assert_eq!(url.to_string(), "https://10.0.0.7:443");
        let url: OriginUrl = "http://[::1]:8080".parse().unwrap();
        assert!(matches!(url.host, OriginHost::Ip(std::net::IpAddr::V6(_))));
        assert_eq!(url.to_string(), "http://[::1]:8080");
        assert!("http://*.example.com".parse::<OriginUrl>().is_err());
    }
}
