//! The spec as written, decoded and checked value by value, with the place of
//! everything that later stages may need to point at.

use super::yaml::Node;
use crate::ir::policy::{Policy, PolicyKind};
use crate::ir::values::{ByteSize, Duration, Method, Name};
use crate::ir::{BasicCredential, Secret};
use crate::ir::{HostPattern, PathPattern, Upstream};
use crate::source::Span;
use std::collections::{BTreeSet, HashMap};

/// A definition: a name given in the spec, where it is, and what it defines.
#[derive(Clone, Debug)]
pub struct Def<T> {
    pub name: Name,
    pub span: Span,
    pub value: T,
}

/// A name used to refer to a definition, with where it is used.
#[derive(Clone, Debug)]
pub struct NameRef {
    pub name: Name,
    pub span: Span,
}

/// What a [`NameRef`] inside a policy's options points at.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RefKind {
    Upstream,
    Group,
}

/// One policy as written (inline or as a named definition).
#[derive(Clone, Debug)]
pub struct PolicyAst {
    pub policy: Policy,
    /// The `kind:` key.
    pub kind_span: Span,
    /// Names its options refer to (traffic-split upstreams, acl groups).
    pub refs: Vec<(RefKind, NameRef)>,
    /// The option a route-dependent check points at: a rewrite's `path`
    /// (or `strip-prefix`), a redirect's `to`.
    pub template: Option<Box<Node>>,
    /// A `script`'s run-time failure sites (request script's first), in
    /// [`crate::ir::script::Site`] order; empty for other kinds.
    pub sites: Vec<Span>,
}

impl PolicyAst {
    pub fn kind(&self) -> PolicyKind {
        self.policy.kind()
    }
}

/// An entry of a `policies:` list.
#[derive(Clone, Debug)]
pub enum PolicyRef {
    Named(NameRef),
    // Boxed: a policy with its options is far larger than a name.
    Inline(Box<PolicyAst>),
}

/// A named entry of the top-level `policies:` section.
// One per named policy, so the size of the larger variant costs little;
// boxing it would add an allocation to every named policy instead.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum PolicyDef {
    Single(PolicyAst),
    /// A list of policy references applied together.
    Bundle(Vec<PolicyRef>),
}

/// `disable: [kind]` entries.
pub type Disable = Vec<(PolicyKind, Span)>;

/// `gateway:`.
#[derive(Clone, Debug)]
pub struct GatewayAst {
    pub span: Span,
    pub name: Option<Name>,
    pub listen: Option<u16>,
    pub request_id: Option<bool>,
    pub max_body: Option<ByteSize>,
    pub connect_timeout: Option<Duration>,
    pub read_timeout: Option<Duration>,
    pub server_header: Option<bool>,
    /// `baseline.client-address`.
    pub client_address: Option<crate::ir::request::ClientAddress>,
    pub policies: Vec<PolicyRef>,
    /// `tls:`, decoded (certificates read) by [`super::tls`].
    pub tls: Option<super::tls::TlsAst>,
}

/// `consumers.NAME`.
#[derive(Clone, Debug)]
pub struct ConsumerAst {
    pub groups: BTreeSet<Name>,
    /// Each `groups` entry as written, for diagnostics.
    pub group_refs: Vec<NameRef>,
    pub keys: BTreeSet<Secret>,
    pub basic: Option<BasicCredential>,
    /// Where `basic.user` is written.
    pub basic_user_span: Option<Span>,
}

/// `apis.NAME`.
#[derive(Clone, Debug)]
pub struct ApiAst {
    pub hosts: BTreeSet<HostPattern>,
    pub base_path: PathPattern,
    pub strip_base_path: bool,
    /// Where `strip-base-path: true` is written.
    pub strip_base_path_span: Option<Span>,
    pub upstream: Option<NameRef>,
    pub policies: Vec<PolicyRef>,
    pub disable: Disable,
    pub routes: Vec<Def<RouteAst>>,
    /// `preserve-host`, when written.
    pub preserve_host: Option<bool>,
}

/// `apis.NAME.routes.NAME`.
#[derive(Clone, Debug)]
pub struct RouteAst {
    pub path: PathPattern,
    pub path_span: Span,
    pub methods: Option<BTreeSet<Method>>,
    pub upstream: Option<NameRef>,
    pub policies: Vec<PolicyRef>,
    pub disable: Disable,
    /// `match`: empty when not written.
    pub conditions: crate::ir::Conditions,
    /// `preserve-host`, when written (else the api's).
    pub preserve_host: Option<bool>,
}

/// Where each name of one section is defined (an index into the section's
/// list), exactly and in lower case, the first of each. Kept across the
/// files of a folder, so that each file's names are checked against the
/// earlier files' in constant time, not by rebuilding an index per file.
#[derive(Clone, Debug, Default)]
pub struct NameIndex {
    pub exact: HashMap<String, usize>,
    pub folded: HashMap<String, usize>,
}

/// A whole spec: every file's sections merged.
#[derive(Clone, Debug, Default)]
pub struct SpecAst {
    pub gateway: Option<GatewayAst>,
    pub upstreams: Vec<Def<Upstream>>,
    pub consumers: Vec<Def<ConsumerAst>>,
    pub policies: Vec<Def<PolicyDef>>,
    pub apis: Vec<Def<ApiAst>>,
    /// Upstreams and policies that are defined but could not be decoded
    /// (already reported): references to them do not dangle.
    pub undecoded_upstreams: BTreeSet<Name>,
    pub undecoded_policies: BTreeSet<Name>,
    /// Whether some consumers could not be read (a consumer that did not
    /// decode, a misspelt `consumers:` section): the groups they are in
    /// are unknown, so a group no consumer is in is not an error.
    pub undecoded_consumers: bool,
    /// Whether decoding reported errors. Parts of the spec may then be
    /// missing, so checks that look for what is absent (unused
    /// definitions, missing credentials) would only repeat those errors.
    pub decode_errors: bool,
    /// The names of each section so far, across files (see [`NameIndex`]).
    pub upstream_names: NameIndex,
    pub consumer_names: NameIndex,
    pub policy_names: NameIndex,
    pub api_names: NameIndex,
    /// Whether a file could not be parsed at all. What it defines is then
    /// unknown, so checks across files (dangling names, unused definitions,
    /// routes and chains) would report false problems: only each file's own
    /// problems are reported.
    pub unparsed_file: bool,
}
