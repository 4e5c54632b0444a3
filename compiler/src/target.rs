//! The contract between the IR and a back end (Target API v2).
//!
//! A target declares how it carries out each policy kind, and, where that
//! differs, each field or value of one ([`Target::fields`]); the capability
//! matrix in the docs is generated from these declarations. Before emitting,
//! [`check`] turns the declarations into [`Gap`]s for one IR, naming the
//! target, the policy instance, the routes it applies to and the field.
//!
//! # Fail closed
//!
//! A security kind ([`PolicyKind::is_security`]) that a target cannot carry
//! out exactly (approximate or unsupported) is an error, with or without
//! `--strict`: leaving out an authentication or a limit would open the
//! gateway. Only advisory kinds ([`PolicyKind::is_advisory`]) may be left
//! out with a warning; any other unsupported kind is an error too, and an
//! approximation of one is a warning (an error under `--strict`). `script`
//! is refused by every target until scripts are compiled.
//!
//! Output is a file set ([`Output`]) with a [`Manifest`]: the entry file,
//! the secrets the runtime must be given, and what each file is.

use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::policy::{JwtKey, Policy, PublicKey};
use crate::ir::{Loc, PolicyId, PolicyKind, RouteId, Secret, TargetKind, ValidIr};
use crate::source::{FileId, Pos, Span};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How a target carries out a policy kind, field or value.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Support {
    /// With the target's own feature for it. (Not "native": that is the
    /// policy kind that passes target configuration through.)
    #[serde(rename = "built-in")]
    Builtin,
    /// With generated code or a combination of features, same behaviour.
    Emulated,
    /// With a behaviour that differs in a way `note` says.
    Approximate { note: &'static str },
    /// Not at all.
    Unsupported,
}

impl Support {
    /// Whether the target does exactly what the IR says.
    pub fn is_exact(self) -> bool {
        matches!(self, Support::Builtin | Support::Emulated)
    }

    /// The matrix cell: `built-in`, `emulated`, `approximate`, `-`.
    pub fn cell(self) -> &'static str {
        match self {
            Support::Builtin => "built-in",
            Support::Emulated => "emulated",
            Support::Approximate { .. } => "approximate",
            Support::Unsupported => "-",
        }
    }
}

/// How a target carries out one field (or one value of a field) of a kind,
/// where that differs from the kind as a whole.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FieldSupport {
    pub kind: PolicyKind,
    /// The option as the spec writes it: `per`, `key`.
    pub field: &'static str,
    /// A value of the field, when only some values differ: `header`.
    pub value: Option<&'static str>,
    pub support: Support,
}

/// How a target carries out a part of the request model that is not a
/// policy (the normalized path, `baseline.path`), where that differs from
/// the spec. Never a security kind: those are policies, and fail closed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ModelSupport {
    /// The spec's name for the part: `baseline.path`.
    pub part: &'static str,
    pub support: Support,
}

/// Options every target accepts.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Treat warnings about what a target approximates or leaves out as errors.
    pub strict: bool,
    /// Where the emitted config serves plain HTTP; `None`: every address
    /// on `gateway.listen`. `gatefold up` and the tests set a loopback
    /// address with a free port.
    pub listen: Option<std::net::SocketAddr>,
    /// Where the emitted config serves TLS (when the spec has
    /// `gateway.tls`); `None`: every address on `gateway.tls.listen`.
    pub listen_tls: Option<std::net::SocketAddr>,
}

/// A path inside the output folder: relative, `/`-separated, no `.` or
/// `..` parts, so a target can never write outside the folder.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RelPath(String);

impl RelPath {
    pub fn new(path: &str) -> Result<RelPath, String> {
        let ok = !path.is_empty()
            && !path.starts_with('/')
            && !path.contains('\\')
            && !path.contains(':')
            && path
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if ok {
            Ok(RelPath(path.to_string()))
        } else {
            Err(format!(
                "`{path}` is not a relative output path (no leading `/`, `.`, `..`, `\\` or `:`)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One generated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputFile {
    pub path: RelPath,
    pub bytes: Vec<u8>,
    /// What the file is, for the manifest.
    pub description: String,
}

/// What a deployment of the output must know.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Manifest {
    pub target: TargetKind,
    /// The file the runtime loads first.
    pub entry: RelPath,
    /// Secrets the runtime must be given (references, never values).
    pub secrets: BTreeSet<Secret>,
    /// Environment variables holding public keys (not secret, but required).
    pub public_key_env: BTreeSet<String>,
    /// Every file, with what it is.
    pub files: BTreeMap<RelPath, String>,
}

/// The file name a manifest is written under, beside the files.
pub const MANIFEST_FILE: &str = "gatefold.manifest.json";

/// A target's output.
#[derive(Clone, Debug)]
pub struct Output {
    pub files: Vec<OutputFile>,
    pub manifest: Manifest,
}

impl Output {
    /// An output whose manifest lists `files` (the first is the entry) and
    /// the secrets `ir` needs.
    pub fn new(target: TargetKind, ir: &ValidIr, files: Vec<OutputFile>) -> Output {
        let (secrets, public_key_env) = required_secrets(ir);
        let manifest = Manifest {
            target,
            entry: files.first().expect("a target emits a file").path.clone(),
            secrets,
            public_key_env,
            files: files
                .iter()
                .map(|f| (f.path.clone(), f.description.clone()))
                .collect(),
        };
        Output { files, manifest }
    }
}

/// The secrets and public-key variables a running gateway must be given.
pub fn required_secrets(ir: &ValidIr) -> (BTreeSet<Secret>, BTreeSet<String>) {
    let mut secrets = BTreeSet::new();
    let mut env = BTreeSet::new();
    for c in ir.consumers.values() {
        secrets.extend(c.keys.iter().cloned());
        if let Some(b) = &c.basic {
            secrets.insert(b.password.clone());
        }
    }
    // TLS private keys in the environment are secrets too.
    let tls = ir.gateway.tls.iter().flat_map(|t| &t.certificates);
    for c in tls {
        if let crate::ir::tls::TlsKey::Env(v) = &c.key {
            secrets.insert(Secret::Env(v.clone()));
        }
    }
    for p in ir.policies.values() {
        if let Policy::Jwt(j) = &p.policy {
            match &j.key {
                JwtKey::Hs256 { secret } => {
                    secrets.insert(secret.clone());
                }
                JwtKey::Rs256(PublicKey::Env(v)) | JwtKey::Es256(PublicKey::Env(v)) => {
                    env.insert(v.clone());
                }
                JwtKey::Rs256(PublicKey::File { .. }) | JwtKey::Es256(PublicKey::File { .. }) => {}
            }
        }
    }
    (secrets, env)
}

/// The fields and values language 1.1 added to existing kinds, as
/// `(kind, field, value)`. A target that does not carry one out lists it in
/// [`Target::fields`] as unsupported and picks it in
/// [`Target::policy_fields`] through [`language_1_1_uses`], so a spec using
/// it is refused for that target instead of half-done (fail closed).
pub const LANGUAGE_1_1_FIELDS: [(PolicyKind, &str, Option<&str>); 10] = [
    (PolicyKind::Redirect, "scheme", None),
    (PolicyKind::Redirect, "host", None),
    (PolicyKind::Redirect, "port", None),
    (PolicyKind::Redirect, "path", None),
    (PolicyKind::Redirect, "replace-prefix", None),
    (PolicyKind::Cors, "origins", Some("https://*.domain")),
    (PolicyKind::Cors, "methods", Some("*")),
    (PolicyKind::Cors, "headers", Some("*")),
    (PolicyKind::Cors, "credentials", Some("with origin *")),
    (PolicyKind::Retry, "on", Some("reset")),
];

/// The [`LANGUAGE_1_1_FIELDS`] one policy uses, as `(field, value)`.
pub fn language_1_1_uses(policy: &Policy) -> Vec<(&'static str, Option<&'static str>)> {
    use crate::ir::policy::{CorsOrigin, RedirectLocation, RedirectPath, RetryOn};
    let mut out = Vec::new();
    match policy {
        Policy::Redirect(r) => {
            if let RedirectLocation::Parts(p) = &r.location {
                for (used, field) in [
                    (p.scheme.is_some(), "scheme"),
                    (p.host.is_some(), "host"),
                    (p.port.is_some(), "port"),
                    (matches!(p.path, Some(RedirectPath::Template(_))), "path"),
                    (
                        matches!(p.path, Some(RedirectPath::ReplacePrefix(_))),
                        "replace-prefix",
                    ),
                ] {
                    if used {
                        out.push((field, None));
                    }
                }
            }
        }
        Policy::Cors(c) => {
            if c.origins
                .iter()
                .any(|o| matches!(o, CorsOrigin::Pattern(_)))
            {
                out.push(("origins", Some("https://*.domain")));
            }
            if c.any_method {
                out.push(("methods", Some("*")));
            }
            if c.any_header {
                out.push(("headers", Some("*")));
            }
            if c.credentials && c.origins.contains(&CorsOrigin::Any) {
                out.push(("credentials", Some("with origin *")));
            }
        }
        Policy::Retry(r) if r.on.contains(&RetryOn::Reset) => out.push(("on", Some("reset"))),
        _ => {}
    }
    out
}

/// [`LANGUAGE_1_1_FIELDS`] of these kinds as unsupported field entries,
/// for a target's [`Target::fields`].
pub fn language_1_1_unsupported(kinds: &[PolicyKind]) -> Vec<FieldSupport> {
    LANGUAGE_1_1_FIELDS
        .iter()
        .filter(|(k, _, _)| kinds.contains(k))
        .map(|&(kind, field, value)| FieldSupport {
            kind,
            field,
            value,
            support: Support::Unsupported,
        })
        .collect()
}

/// A back end.
pub trait Target {
    fn kind(&self) -> TargetKind;

    /// How this target carries out `kind` as a whole.
    fn support(&self, kind: PolicyKind) -> Support;

    /// Fields and values it carries out differently from their kind, for
    /// the matrix. Default: none.
    fn fields(&self) -> Vec<FieldSupport> {
        Vec::new()
    }

    /// The fields of one policy that it carries out differently from the
    /// kind, with how (a subset of [`Target::fields`] that this policy
    /// uses). Default: none.
    fn policy_fields(&self, _policy: &Policy) -> Vec<FieldSupport> {
        Vec::new()
    }

    /// Parts of the request model it carries out differently from the
    /// spec, for the matrix and the conformance suite. Default: none.
    fn request_model(&self) -> Vec<ModelSupport> {
        Vec::new()
    }

    /// How this target carries out a route-level language feature.
    /// Default: not at all, so a target that has not implemented a newer
    /// feature refuses specs using it ([`check_features`]) instead of
    /// ignoring it.
    fn feature(&self, _feature: Feature) -> Support {
        Support::Unsupported
    }

    /// What the target refuses that no single policy or feature shows: a
    /// combination in a route's chain, or a gateway setting it cannot
    /// carry out (Kong: two authentication kinds on one route, where Kong
    /// would require all of them). Errors join the gaps wherever a spec is
    /// compiled for this target. Default: none.
    fn spec_diagnostics(&self, _ir: &ValidIr) -> Diagnostics {
        Diagnostics::new()
    }

    /// Generates the target's files. Called only when [`check`],
    /// [`check_features`] and [`Target::spec_diagnostics`] found no error: the spec is valid and everything
    /// in it can be carried out.
    fn emit(&self, ir: &ValidIr, options: &Options) -> Output;
}

/// A language feature of routes rather than of a policy kind (language
/// 1.1). A target that cannot carry out one a spec uses refuses the spec:
/// a route whose `match` were ignored would take requests meant for
/// another route. One that carries it out with a declared difference
/// (`Approximate`) compiles with a warning: both features read only what
/// the client sends (headers, query, host), so a difference changes which
/// of the routes the client could reach anyway a given request takes,
/// never what the client can reach.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Feature {
    /// `match`: header and query conditions.
    Conditions,
    /// `preserve-host`.
    PreserveHost,
}

impl Feature {
    pub const ALL: [Feature; 2] = [Feature::Conditions, Feature::PreserveHost];

    /// As the spec writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Conditions => "match",
            Feature::PreserveHost => "preserve-host",
        }
    }

    /// Whether `route` uses it.
    pub fn used_by(self, route: &crate::ir::Route) -> bool {
        match self {
            Feature::Conditions => !route.matcher.conditions.is_empty(),
            Feature::PreserveHost => route.lowered.preserve_host,
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A route-level feature a target cannot carry out exactly: an error
/// (fail closed), or a warning when the target declares it approximate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FeatureGap {
    pub target: TargetKind,
    pub feature: Feature,
    /// The routes using it, in IR order.
    pub routes: Vec<RouteId>,
    pub support: Support,
}

/// Every route-level feature `ir` uses that `target` does not carry out
/// exactly, in [`Feature::ALL`] order.
pub fn check_features(target: &dyn Target, ir: &ValidIr) -> Vec<FeatureGap> {
    Feature::ALL
        .into_iter()
        .filter(|f| !target.feature(*f).is_exact())
        .filter_map(|feature| {
            let routes: Vec<RouteId> = ir
                .routes
                .iter()
                .filter(|r| feature.used_by(r))
                .map(|r| r.id.clone())
                .collect();
            (!routes.is_empty()).then(|| FeatureGap {
                target: target.kind(),
                feature,
                routes,
                support: target.feature(feature),
            })
        })
        .collect()
}

/// Feature gaps at the first route using each feature: errors, warnings
/// for the approximated ones (see [`Feature`]).
pub fn feature_diagnostics(gaps: &[FeatureGap], ir: &ValidIr) -> Diagnostics {
    let mut out = Diagnostics::new();
    for g in gaps {
        let Some(first) = g.routes.first() else {
            continue;
        };
        let span = span_of(ir.sources.routes.get(first).copied().unwrap_or(Loc::START));
        let routes = match g.routes.len() {
            1 => format!("route `{first}`"),
            n => format!("route `{first}` and {} more", n - 1),
        };
        let (how, diagnostic): (String, fn(_, _, String) -> Diagnostic) = match g.support {
            Support::Approximate { note } => (
                format!("only approximates it ({note})"),
                Diagnostic::warning,
            ),
            _ => ("cannot carry it out yet".to_string(), Diagnostic::error),
        };
        out.push(
            diagnostic(
                "unsupported-feature",
                span,
                format!("target `{}` {how}: `{}` ({routes})", g.target, g.feature),
            )
            .with_help(format!(
                "remove `{}` for this target, or pick a target that carries it out (`gatefold capabilities`)",
                g.feature
            )),
        );
    }
    out
}

/// One thing a target cannot carry out exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Gap {
    pub target: TargetKind,
    pub policy: PolicyId,
    /// The routes whose chain holds the instance, in IR order.
    pub routes: Vec<RouteId>,
    /// The field (and value) concerned; `None` for the kind as a whole.
    pub field: Option<&'static str>,
    pub value: Option<&'static str>,
    pub support: Support,
    /// Whether compiling must stop (see the module docs).
    pub error: bool,
}

/// Every gap between `target` and `ir`, by instance in id order.
pub fn check(target: &dyn Target, ir: &ValidIr, options: &Options) -> Vec<Gap> {
    let mut routes: BTreeMap<&PolicyId, Vec<RouteId>> = BTreeMap::new();
    for r in &ir.routes {
        for id in &r.chain {
            routes.entry(id).or_default().push(r.id.clone());
        }
    }
    let mut gaps = Vec::new();
    for (id, instance) in &ir.policies {
        let kind = id.kind;
        let severity = |support: Support| match support {
            Support::Builtin | Support::Emulated => None,
            _ if kind.is_security() => Some(true),
            Support::Unsupported if !kind.is_advisory() => Some(true),
            _ => Some(options.strict),
        };
        let mut push = |field: Option<&'static str>, value, support| {
            if let Some(error) = severity(support) {
                gaps.push(Gap {
                    target: target.kind(),
                    policy: id.clone(),
                    routes: routes.get(id).cloned().unwrap_or_default(),
                    field,
                    value,
                    support,
                    error,
                });
            }
        };
        let whole = target.support(kind);
        // A script is carried out whole or not at all: it has no fields.
        if kind == PolicyKind::Script || !whole.is_exact() {
            push(None, None, whole);
            continue;
        }
        for f in target.policy_fields(&instance.policy) {
            push(Some(f.field), f.value, f.support);
        }
    }
    gaps
}

/// The place in the spec a [`Loc`] names, for target diagnostics.
pub fn span_of(loc: Loc) -> Span {
    Span::point(
        FileId(loc.file),
        Pos {
            line: loc.line,
            col: loc.col,
        },
    )
}

/// Gaps as diagnostics at the policies' places.
pub fn gap_diagnostics(gaps: &[Gap], ir: &ValidIr) -> Diagnostics {
    let mut out = Diagnostics::new();
    for g in gaps {
        let span = span_of(
            ir.sources
                .policies
                .get(&g.policy)
                .copied()
                .unwrap_or(Loc::START),
        );
        let what = match (g.field, g.value) {
            (None, _) => format!("`{}`", g.policy.kind),
            (Some(f), None) => format!("`{}` option `{f}`", g.policy.kind),
            (Some(f), Some(v)) => format!("`{}` option `{f}: {v}`", g.policy.kind),
        };
        let routes = match g.routes.as_slice() {
            [] => String::new(),
            [one] => format!(" on route `{one}`"),
            [first, rest @ ..] => format!(" on route `{first}` and {} more", rest.len()),
        };
        let how = match g.support {
            Support::Approximate { note } => format!("only approximates it: {note}"),
            _ => "cannot carry it out".to_string(),
        };
        let mut message = format!(
            "target `{}` {how}: {what} (policy `{}`{routes})",
            g.target, g.policy
        );
        let help = if g.policy.kind == PolicyKind::Script {
            message = format!(
                "target `{}` cannot run `script` yet (policy `{}`{routes}): scripts run on the reference gateway, nginx, Envoy, Kong and Cloudflare so far",
                g.target, g.policy
            );
            "serve this spec with the reference gateway (`gatefold serve`), or express the script with other policy kinds or `native` for this target"
                .to_string()
        } else if g.policy.kind.is_security() {
            format!("`{}` protects the gateway, so it is never left out: remove it for this target, or pick a target that carries it out (`gatefold capabilities`)", g.policy.kind)
        } else {
            "see `gatefold capabilities`; remove the policy for this target or use `native`"
                .to_string()
        };
        // Under an error nothing is written, so nothing is "left out"; an
        // approximated policy is written, only not exactly.
        let d = if g.error {
            Diagnostic::error("unsupported-policy", span, message)
        } else if matches!(g.support, Support::Approximate { .. }) {
            Diagnostic::warning("unsupported-policy", span, message)
        } else {
            Diagnostic::warning(
                "unsupported-policy",
                span,
                format!("{message}; it is left out"),
            )
        };
        out.push(d.with_help(help));
    }
    out
}

/// The capability matrix as a Markdown table: a row per policy kind in
/// execution order, then a row per field or value some target carries out
/// differently from its kind (`rate-limit` `per: 30s`), a column per target.
pub fn matrix_markdown(targets: &[&dyn Target]) -> String {
    let mut out = String::from("| policy |");
    for t in targets {
        out.push_str(&format!(" {} |", t.kind()));
    }
    out.push_str("\n|---|");
    for _ in targets {
        out.push_str("---|");
    }
    out.push('\n');
    let mut notes: Vec<String> = Vec::new();
    let mut cell = |s: Support| match s {
        Support::Approximate { note } => {
            notes.push(note.to_string());
            format!("approximate [{}]", notes.len())
        }
        other => other.cell().to_string(),
    };
    for kind in PolicyKind::ALL {
        out.push_str(&format!("| `{kind}` |"));
        for t in targets {
            out.push_str(&format!(" {} |", cell(t.support(kind))));
        }
        out.push('\n');
        for (field, value) in field_rows(targets, kind) {
            let label = match value {
                Some(v) => format!("`{field}: {v}`"),
                None => format!("`{field}`"),
            };
            out.push_str(&format!("| `{kind}` {label} |"));
            for t in targets {
                out.push_str(&format!(
                    " {} |",
                    cell(field_support(*t, kind, field, value))
                ));
            }
            out.push('\n');
        }
    }
    // The request model's parts, when some target declares one.
    let parts: BTreeSet<&'static str> = targets
        .iter()
        .flat_map(|t| t.request_model())
        .map(|m| m.part)
        .collect();
    for part in parts {
        out.push_str(&format!("| request model `{part}` |"));
        for t in targets {
            let support = t
                .request_model()
                .into_iter()
                .find(|m| m.part == part)
                .map_or(Support::Builtin, |m| m.support);
            out.push_str(&format!(" {} |", cell(support)));
        }
        out.push('\n');
    }
    // Route-level features (language 1.1) after the policy kinds.
    for feature in Feature::ALL {
        out.push_str(&format!("| route `{feature}` |"));
        for t in targets {
            out.push_str(&format!(" {} |", cell(t.feature(feature))));
        }
        out.push('\n');
    }
    if !notes.is_empty() {
        out.push('\n');
        for (i, n) in notes.iter().enumerate() {
            out.push_str(&format!("[{}]: {n}\n", i + 1));
        }
    }
    out
}

/// The matrix as JSON: `{ target: { kinds: { kind: support }, fields: [...],
/// features: { feature: support } } }`.
pub fn matrix_json(targets: &[&dyn Target]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for t in targets {
        let kinds: serde_json::Map<_, _> = PolicyKind::ALL
            .into_iter()
            .map(|k| {
                (
                    k.as_str().to_string(),
                    serde_json::to_value(t.support(k)).expect("json"),
                )
            })
            .collect();
        let features: serde_json::Map<_, _> = Feature::ALL
            .into_iter()
            .map(|f| {
                (
                    f.as_str().to_string(),
                    serde_json::to_value(t.feature(f)).expect("json"),
                )
            })
            .collect();
        map.insert(
            t.kind().as_str().to_string(),
            serde_json::json!({
                "kinds": kinds,
                "fields": t.fields(),
                "features": features,
                "request-model": t.request_model(),
            }),
        );
    }
    map.into()
}

/// The field rows of `kind`: every field or value some target declares, once.
fn field_rows(
    targets: &[&dyn Target],
    kind: PolicyKind,
) -> BTreeSet<(&'static str, Option<&'static str>)> {
    targets
        .iter()
        .flat_map(|t| t.fields())
        .filter(|f| f.kind == kind)
        .map(|f| (f.field, f.value))
        .collect()
}

/// How `t` carries out a field (or value): its declaration, else the kind's.
fn field_support(t: &dyn Target, kind: PolicyKind, field: &str, value: Option<&str>) -> Support {
    t.fields()
        .into_iter()
        .find(|f| f.kind == kind && f.field == field && f.value == value)
        .map_or_else(|| t.support(kind), |f| f.support)
}
