//! Where each IR entity came from in the spec, kept beside the meaning so
//! that back ends can point diagnostics at spec lines and `explain` can show
//! origins, without formatting changes touching the content hash.

use super::{Name, PolicyId, RouteId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A place in a spec file: index into [`SourceMap::files`], 1-based line
/// and column. In JSON a `[file, line, col]` triple: the source map has an
/// entry per route, and the field names would be a tenth of a large IR.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "(u32, u32, u32)", into = "(u32, u32, u32)")]
pub struct Loc {
    pub file: u32,
    pub line: u32,
    pub col: u32,
}

impl Loc {
    /// The start of the first file: where a diagnostic points when the
    /// source map has no place for what it is about.
    pub const START: Loc = Loc {
        file: 0,
        line: 1,
        col: 1,
    };
}

impl From<(u32, u32, u32)> for Loc {
    fn from((file, line, col): (u32, u32, u32)) -> Loc {
        Loc { file, line, col }
    }
}

impl From<Loc> for (u32, u32, u32) {
    fn from(l: Loc) -> Self {
        (l.file, l.line, l.col)
    }
}

/// The attachment level of a policy (the [`super::Attachment`] without its owner).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Gateway,
    Api,
    Route,
}

/// Source locations of every entity of an [`super::Ir`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SourceMap {
    /// Spec file paths from the spec's root (a folder's files relative to
    /// it, a single file by its name), so the IR does not depend on how the
    /// spec path was typed.
    pub files: Vec<String>,
    #[serde(deserialize_with = "super::deserialize_sorted_map")]
    pub routes: BTreeMap<RouteId, Loc>,
    /// Where each policy instance's options are written.
    #[serde(deserialize_with = "super::deserialize_sorted_map")]
    pub policies: BTreeMap<PolicyId, Loc>,
    #[serde(deserialize_with = "super::deserialize_sorted_map")]
    pub upstreams: BTreeMap<Name, Loc>,
    #[serde(deserialize_with = "super::deserialize_sorted_map")]
    pub consumers: BTreeMap<Name, Loc>,
    /// For each `script` policy instance, the spec position of each of its
    /// run-time failure sites ([`super::script::Site`] indexes this list),
    /// so a failing script is logged at its place in the spec.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scripts: BTreeMap<PolicyId, Vec<Loc>>,
    /// Where each `gateway.tls` certificate's `key` is written, in
    /// certificate order (for targets that cannot read a key file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_keys: Vec<Loc>,
}

impl SourceMap {
    /// `file:line:col` of a location.
    pub fn describe(&self, loc: Loc) -> String {
        let file = self
            .files
            .get(loc.file as usize)
            .map_or("?", String::as_str);
        format!("{file}:{}:{}", loc.line, loc.col)
    }
}
