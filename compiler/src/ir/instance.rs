//! Policy instances: each policy the spec attaches somewhere, once, with a
//! stable identity that routes' chains refer to.
//!
//! A policy attached at the gateway is *one* instance however many routes
//! inherit it; so is one attached to an api. Per-policy state (rate-limit
//! counters, response caches, a Kong plugin, an Envoy token bucket) belongs
//! to the instance and is keyed by its [`PolicyId`].

use super::policy::{Policy, PolicyKind};
use super::{Level, Name, RouteId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Where a policy instance is attached. It decides what the instance's
/// state covers: a gateway-level rate limit counts every route that
/// inherits it together, an api-level one the api's routes, a route-level
/// one that route.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attachment {
    Gateway,
    Api(Name),
    Route(RouteId),
}

impl Attachment {
    /// The level, without the owner.
    pub fn level(&self) -> Level {
        match self {
            Attachment::Gateway => Level::Gateway,
            Attachment::Api(_) => Level::Api,
            Attachment::Route(_) => Level::Route,
        }
    }

    /// The attachment of a policy at `level` as it applies to route `id`.
    pub fn at(level: Level, id: &RouteId) -> Attachment {
        match level {
            Level::Gateway => Attachment::Gateway,
            Level::Api => Attachment::Api(id.api.clone()),
            Level::Route => Attachment::Route(id.clone()),
        }
    }

    /// Whether a policy attached here applies to route `id` (by inheritance or directly).
    pub fn covers(&self, id: &RouteId) -> bool {
        match self {
            Attachment::Gateway => true,
            Attachment::Api(api) => *api == id.api,
            Attachment::Route(r) => r == id,
        }
    }
}

impl fmt::Display for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attachment::Gateway => f.write_str("gateway"),
            Attachment::Api(a) => {
                f.write_str("api/")?;
                f.write_str(a.as_str())
            }
            Attachment::Route(r) => {
                f.write_str("route/")?;
                fmt::Display::fmt(r, f)
            }
        }
    }
}

/// The identity of a policy instance: where it is attached and its kind
/// (one level holds each kind once, so the pair is unique). Written
/// `gateway/rate-limit`, `api/shop/cors`, `route/shop.list/cache`.
///
/// It derives from the spec's structure only: never from a line number or a
/// named policy's name, so reformatting, reordering or renaming a named
/// policy keeps every id (and the state keyed by it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyId {
    pub attachment: Attachment,
    pub kind: PolicyKind,
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.attachment, f)?;
        f.write_str("/")?;
        f.write_str(self.kind.as_str())
    }
}

impl std::str::FromStr for PolicyId {
    type Err = String;
    fn from_str(s: &str) -> Result<PolicyId, String> {
        let bad = || {
            format!("`{s}` is not a policy id: write `gateway/KIND`, `api/API/KIND` or `route/API.ROUTE/KIND`")
        };
        let (place, kind) = s.rsplit_once('/').ok_or_else(bad)?;
        let kind = PolicyKind::parse(kind).ok_or_else(bad)?;
        let attachment = match place.split_once('/') {
            None if place == "gateway" => Attachment::Gateway,
            Some(("api", a)) => Attachment::Api(a.parse().map_err(|_| bad())?),
            Some(("route", r)) => Attachment::Route(r.parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        };
        Ok(PolicyId { attachment, kind })
    }
}

impl Serialize for PolicyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::serialize_display(self, s)
    }
}
impl<'de> Deserialize<'de> for PolicyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::deserialize_from_str(d)
    }
}

/// How an instance was written: inline, or through named policies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Provenance {
    /// The bundles and named policy it came through, outermost first; empty
    /// when written inline. Not part of the meaning (renaming a named
    /// policy changes nothing a gateway does), so not hashed.
    pub via: Vec<Name>,
}

/// One policy attached at one place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyInstance {
    /// Equal to the id's attachment; here so a reader of the instance alone knows it.
    pub attachment: Attachment,
    pub origin: Provenance,
    pub policy: Policy,
}

impl PolicyInstance {
    pub fn kind(&self) -> PolicyKind {
        self.policy.kind()
    }
}
