//! Where each IR entity came from in the spec, kept beside the meaning so
//! that back ends can point diagnostics at spec lines and `explain` can show
//! origins, without formatting changes touching the content hash.

use super::{Name, RouteId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A place in a spec file: index into [`SourceMap::files`], 1-based line and column.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Loc {
    pub file: u32,
    pub line: u32,
    pub col: u32,
}

/// The attachment level a chain step was inherited from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Gateway,
    Api,
    Route,
}

/// Where one step of a route's chain came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StepSource {
    pub level: Level,
    /// The named policy (or bundle path) it came through; `None` when inline.
    pub via: Vec<Name>,
    /// Where the policy's options are written.
    pub at: Loc,
}

/// Where a route and each step of its chain (same indexes as `Route::chain`) came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RouteSources {
    pub at: Loc,
    pub chain: Vec<StepSource>,
}

/// Source locations of every entity of an [`super::Ir`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SourceMap {
    /// Spec file paths from the spec's root (a folder's files relative to
    /// it, a single file by its name), so the IR does not depend on how the
    /// spec path was typed.
    pub files: Vec<String>,
    pub routes: BTreeMap<RouteId, RouteSources>,
    pub upstreams: BTreeMap<Name, Loc>,
    pub consumers: BTreeMap<Name, Loc>,
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
