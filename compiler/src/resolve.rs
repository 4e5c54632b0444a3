//! Resolution: names to definitions, inheritance (gateway -> api -> route),
//! defaults, and each route's chain in phase order. Produces the IR's
//! routes. It reports only what stops it resolving: names that refer to
//! nothing, a kind attached twice at one level, `disable` that contradicts
//! or removes nothing. What the resolved chains mean together is checked
//! by validation (`crate::valid`).

use crate::diag::{Diagnostic, Diagnostics};
use crate::front::ast::*;
use crate::front::decode::did_you_mean;
use crate::ir::policy::PolicyKind;
use crate::ir::values::Name;
use crate::ir::*;
use crate::source::Span;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Where one step of a chain came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepSource {
    pub level: Level,
    /// The bundles and named policy it came through; empty when inline.
    pub via: Vec<Name>,
    /// Where the policy's options are written.
    pub at: Loc,
}

/// One policy of an effective chain, with where it came from.
#[derive(Clone)]
pub struct Step<'a> {
    pub policy: &'a PolicyAst,
    pub source: StepSource,
}

/// What an IR route is made of before it is lowered. The lowered meaning
/// needs every policy instance, so it is added last ([`RouteParts::lowered`]);
/// leaving it out here saves 200 bytes per route at the compiler's peak.
pub struct RouteParts {
    pub id: RouteId,
    pub matcher: Matcher,
    pub upstream: Option<Name>,
    pub chain: Vec<PolicyId>,
}

impl RouteParts {
    /// The IR route, with its lowered meaning.
    pub fn lowered(self, lowered: Lowered) -> Route {
        Route {
            id: self.id,
            matcher: self.matcher,
            upstream: self.upstream,
            chain: self.chain,
            lowered: Box::new(lowered),
        }
    }
}

/// A route after resolution, still carrying spans for validation.
pub struct ResolvedRoute<'a> {
    pub route: RouteParts,
    pub span: Span,
    pub path_span: Span,
    pub steps: Vec<Step<'a>>,
    /// The policies written on the route itself (names and inline).
    pub own_policies: &'a [PolicyRef],
    /// The base path `strip-base-path` removes before proxying.
    pub strip_base: Option<String>,
    /// `preserve-host`: the route's, else the api's, else false.
    pub preserve_host: bool,
    /// The api and route as written, for validation's messages.
    pub api: &'a Def<ApiAst>,
    pub ast: &'a Def<RouteAst>,
    /// Whether a policy name in the chain's levels refers to nothing (or
    /// to a definition that failed to decode): the chain lacks it, so what
    /// it seems to lack follows from that error and is not reported again.
    pub incomplete: bool,
}

pub(crate) fn loc(span: Span) -> Loc {
    Loc {
        file: span.file.0,
        line: span.start.line,
        col: span.start.col,
    }
}

struct Resolver<'a> {
    spec: &'a SpecAst,
    policies: HashMap<&'a Name, &'a Def<PolicyDef>>,
    upstreams: HashMap<&'a Name, &'a Def<Upstream>>,
    diags: Diagnostics,
    /// Unknown policy names already reported: a bundle naming one is
    /// expanded wherever it is attached, but the name is written once.
    unknown_reported: HashSet<Span>,
    /// Pairs of places already reported as the same kind twice at one
    /// level: a bundle with a repeat is expanded wherever it is attached.
    duplicates_reported: HashSet<(Span, Span)>,
}

/// Resolves a decoded spec. Diagnostics include every dangling name.
pub fn resolve(spec: &SpecAst) -> (Gateway, Vec<ResolvedRoute<'_>>, Diagnostics) {
    let mut r = Resolver {
        spec,
        policies: spec.policies.iter().map(|d| (&d.name, d)).collect(),
        upstreams: spec.upstreams.iter().map(|d| (&d.name, d)).collect(),
        diags: Diagnostics::new(),
        unknown_reported: HashSet::new(),
        duplicates_reported: HashSet::new(),
    };
    r.check_option_names();
    let gateway = r.gateway();
    let gw_steps = match &spec.gateway {
        Some(g) => r.level_steps(&g.policies, Level::Gateway),
        None => Vec::new(),
    };
    // Sized once: routes are large and a doubling Vec would hold up to
    // twice their size at the compiler's peak.
    let mut routes = Vec::with_capacity(spec.apis.iter().map(|a| a.value.routes.len()).sum());
    for api in &spec.apis {
        let api_steps = r.level_steps(&api.value.policies, Level::Api);
        r.check_disable_and_attach(&api.value.disable, &api_steps);
        let inherited = r.apply(
            gw_steps.clone(),
            api_steps,
            &api.value.disable,
            "the gateway",
        );
        if let Some(u) = &api.value.upstream {
            r.check_upstream(u);
        }
        for route in &api.value.routes {
            if let Some(rr) = r.route(api, route, &inherited) {
                routes.push(rr);
            }
        }
    }
    (gateway, routes, r.diags)
}

/// Every policy written in the spec, once each (inline or named), however
/// many routes it applies to.
fn all_policies(spec: &SpecAst) -> Vec<&PolicyAst> {
    fn inline(refs: &[PolicyRef]) -> impl Iterator<Item = &PolicyAst> {
        refs.iter().filter_map(|r| match r {
            PolicyRef::Inline(p) => Some(&**p),
            PolicyRef::Named(_) => None,
        })
    }
    let mut out: Vec<&PolicyAst> = Vec::new();
    if let Some(g) = &spec.gateway {
        out.extend(inline(&g.policies));
    }
    for d in &spec.policies {
        match &d.value {
            PolicyDef::Single(p) => out.push(p),
            PolicyDef::Bundle(items) => out.extend(inline(items)),
        }
    }
    for api in &spec.apis {
        out.extend(inline(&api.value.policies));
        for route in &api.value.routes {
            out.extend(inline(&route.value.policies));
        }
    }
    out
}

impl<'a> Resolver<'a> {
    fn gateway(&mut self) -> Gateway {
        let g = self.spec.gateway.as_ref();
        Gateway {
            name: g
                .and_then(|g| g.name.clone())
                .unwrap_or_else(|| "gateway".parse().expect("valid name")),
            listen: g.and_then(|g| g.listen).unwrap_or(8080),
            tls: g.and_then(|g| g.tls.as_ref()).map(|t| t.tls.clone()),
            baseline: Baseline {
                request_id: g.and_then(|g| g.request_id).unwrap_or(true),
                max_body: g
                    .and_then(|g| g.max_body)
                    .unwrap_or(Baseline::DEFAULT_MAX_BODY),
                timeouts: Timeouts {
                    connect: g
                        .and_then(|g| g.connect_timeout)
                        .unwrap_or(Timeouts::DEFAULT.connect),
                    read: g
                        .and_then(|g| g.read_timeout)
                        .unwrap_or(Timeouts::DEFAULT.read),
                },
                server_header: g.and_then(|g| g.server_header).unwrap_or(false),
                path: Default::default(),
                client_address: g.and_then(|g| g.client_address.clone()).unwrap_or_default(),
            },
        }
    }

    fn check_upstream(&mut self, u: &NameRef) -> bool {
        if self.upstreams.contains_key(&u.name) {
            return true;
        }
        if self.spec.undecoded_upstreams.contains(&u.name) {
            return false;
        }
        let names: Vec<&str> = self
            .spec
            .upstreams
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        self.diags.push(unknown_name(
            "unknown-upstream",
            u,
            format!("no upstream is named `{}`", u.name),
            &names,
            || "define it under `upstreams:`".to_string(),
        ));
        false
    }

    /// Names inside policy options (traffic-split upstreams, acl groups)
    /// must be defined; each is checked once, where it is written.
    fn check_option_names(&mut self) {
        let groups: BTreeSet<&str> = self
            .spec
            .consumers
            .iter()
            .flat_map(|c| &c.value.groups)
            .map(Name::as_str)
            .collect();
        for p in all_policies(self.spec) {
            for (kind, r) in &p.refs {
                match kind {
                    RefKind::Upstream => {
                        self.check_upstream(r);
                    }
                    RefKind::Group
                        if !groups.contains(r.name.as_str()) && !self.spec.undecoded_consumers =>
                    {
                        let known: Vec<&str> = groups.iter().copied().collect();
                        self.diags.push(unknown_name(
                            "unknown-group",
                            r,
                            format!("no consumer is in group `{}`", r.name),
                            &known,
                            || format!("groups are defined by consumers: add `groups: [{}]` to the consumers in it", r.name),
                        ));
                    }
                    RefKind::Group => {}
                }
            }
        }
    }

    /// `disable` naming a kind the same level also attaches is contradictory.
    fn check_disable_and_attach(&mut self, disable: &Disable, own: &[Step<'a>]) {
        for (kind, span) in disable {
            if let Some(step) = own.iter().find(|s| s.policy.kind() == *kind) {
                self.diags.push(
                    Diagnostic::error(
                        "disable-and-attach",
                        *span,
                        format!("`disable: [{kind}]` beside a `{kind}` attached at the same level"),
                    )
                    .with_related(step.policy.kind_span, "attached here")
                    .with_help(format!("remove `{kind}` from `disable`: the `{kind}` attached here already replaces the inherited one")),
                );
            }
        }
    }

    /// The steps one level's `policies:` list contributes, bundles expanded.
    fn level_steps(&mut self, refs: &'a [PolicyRef], level: Level) -> Vec<Step<'a>> {
        let out = self.expand(refs, level);
        // The same kind twice at one level is ambiguous: which one wins?
        let mut seen: HashMap<PolicyKind, &Step<'a>> = HashMap::new();
        let mut dups = Vec::new();
        for step in &out {
            let kind = step.policy.kind();
            let Some(first) = seen.get(&kind) else {
                seen.insert(kind, step);
                continue;
            };
            let (at, first_at) = (step.policy.kind_span, first.policy.kind_span);
            // Each pair of places once: a bundle that includes another twice
            // reaches the same policy many times, at every level it is used.
            if !self.duplicates_reported.insert((at, first_at)) {
                continue;
            }
            let through = |s: &Step<'a>| match s.source.via.first() {
                Some(bundle) => format!(", through `{bundle}`"),
                None => String::new(),
            };
            let d = if at == first_at {
                // One definition, reached twice through bundles.
                let name = step.source.via.last().map_or("", Name::as_str);
                Diagnostic::error(
                    "duplicate-policy-kind",
                    at,
                    format!("`{kind}` policy `{name}` is attached twice at the same level{}", through(step)),
                )
                .with_help(format!(
                    "include `{name}` once; one level holds each kind once, and a `{kind}` at a lower level (api, route) replaces this one"
                ))
            } else {
                Diagnostic::error(
                    "duplicate-policy-kind",
                    at,
                    format!("`{kind}` is attached twice at the same level"),
                )
                .with_related(first_at, format!("also attached here{}", through(first)))
                .with_help(format!(
                    "keep one of them; one level holds each kind once, and a `{kind}` at a lower level (api, route) replaces this one"
                ))
            };
            dups.push(d);
        }
        for d in dups {
            self.diags.push(d);
        }
        out
    }

    /// Expands one level's list depth-first, bundles in place.
    ///
    /// The work is bounded however bundles nest (each including the
    /// previous one twice doubles the size per line). A level holds each
    /// policy kind at most once, so a bundle that expands to more steps
    /// than there are kinds is an error (reported here, naming it) and its
    /// expansion stops there; a bundle that added no step (empty, or only
    /// unknown names) is not walked again at this level.
    fn expand(&mut self, refs: &'a [PolicyRef], level: Level) -> Vec<Step<'a>> {
        /// A list being expanded: the level's own, or a bundle's.
        struct Frame<'a> {
            items: std::slice::Iter<'a, PolicyRef>,
            /// The reference to the bundle whose list this is.
            bundle: Option<&'a NameRef>,
            /// How many steps there were when it started.
            start: usize,
        }
        let bound = PolicyKind::ALL.len();
        let mut out: Vec<Step<'a>> = Vec::new();
        // Innermost last. An explicit stack: bundles may nest deeper than
        // the call stack could.
        let mut stack = vec![Frame {
            items: refs.iter(),
            bundle: None,
            start: 0,
        }];
        let mut on_path: HashSet<&'a Name> = HashSet::new();
        let mut adds_nothing: HashSet<&'a Name> = HashSet::new();
        while let Some(frame) = stack.last_mut() {
            let Some(r) = frame.items.next() else {
                let done = stack.pop().expect("a frame");
                if let Some(bundle) = done.bundle {
                    on_path.remove(&bundle.name);
                    if out.len() == done.start {
                        adds_nothing.insert(&bundle.name);
                    }
                }
                continue;
            };
            let (policy, single) = match r {
                PolicyRef::Inline(p) => (&**p, None),
                PolicyRef::Named(n) => {
                    let Some(def) = self.policies.get(&n.name).copied() else {
                        self.unknown_policy(n);
                        continue;
                    };
                    // A bundle cycle is reported by validation.
                    if on_path.contains(&n.name) || adds_nothing.contains(&n.name) {
                        continue;
                    }
                    match &def.value {
                        PolicyDef::Single(p) => (p, Some(&n.name)),
                        PolicyDef::Bundle(items) => {
                            on_path.insert(&n.name);
                            stack.push(Frame {
                                items: items.iter(),
                                bundle: Some(n),
                                start: out.len(),
                            });
                            continue;
                        }
                    }
                }
            };
            // The bundle written at this level that this step comes through.
            if let Some((outer, start)) = stack.get(1).and_then(|f| Some((f.bundle?, f.start))) {
                if out.len() - start == bound {
                    self.too_many_steps(outer);
                    // Skip the rest of that bundle; go on with the level's list.
                    stack.truncate(1);
                    on_path.clear();
                    continue;
                }
            }
            let via = stack
                .iter()
                .filter_map(|f| f.bundle.map(|b| &b.name))
                .chain(single)
                .cloned()
                .collect();
            out.push(Step {
                policy,
                source: StepSource {
                    level,
                    via,
                    at: loc(policy.kind_span),
                },
            });
        }
        out
    }

    /// Whether `refs`, bundles followed, name a policy that is not
    /// defined (or could not be decoded).
    fn names_unknown_policy(&self, refs: &'a [PolicyRef]) -> bool {
        let mut stack = vec![refs];
        let mut seen: HashSet<&'a Name> = HashSet::new();
        while let Some(list) = stack.pop() {
            for r in list {
                let PolicyRef::Named(n) = r else { continue };
                match self.policies.get(&n.name) {
                    None => return true,
                    Some(def) => {
                        if let PolicyDef::Bundle(items) = &def.value {
                            if seen.insert(&n.name) {
                                stack.push(items);
                            }
                        }
                    }
                }
            }
        }
        false
    }

    fn unknown_policy(&mut self, n: &NameRef) {
        if self.spec.undecoded_policies.contains(&n.name) || !self.unknown_reported.insert(n.span) {
            return;
        }
        let names: Vec<&str> = self.spec.policies.iter().map(|d| d.name.as_str()).collect();
        self.diags.push(unknown_name(
            "unknown-policy",
            n,
            format!("no policy is named `{}`", n.name),
            &names,
            || {
                "define it under `policies:`, or write the policy inline: `- rate-limit: { ... }`"
                    .to_string()
            },
        ));
    }

    /// A bundle attached at `at` expands past what one level can hold.
    fn too_many_steps(&mut self, at: &NameRef) {
        let kinds = PolicyKind::ALL.len();
        let mut d = Diagnostic::error(
            "bundle-too-large",
            at.span,
            format!(
                "bundle `{}` expands to more than {kinds} policies, but one level holds each of the {kinds} policy kinds at most once",
                at.name
            ),
        )
        .with_help(format!(
            "a bundle must not include a kind twice: look for a bundle listed twice in `{}` or in the bundles it includes",
            at.name
        ));
        if let Some(def) = self.policies.get(&at.name) {
            d = d.with_related(def.span, format!("`{}` is defined here", at.name));
        }
        self.diags.push(d);
    }

    /// Inherited steps, overridden by `lower` kind by kind, minus `disable`.
    fn apply(
        &mut self,
        inherited: Vec<Step<'a>>,
        lower: Vec<Step<'a>>,
        disable: &Disable,
        from: &str,
    ) -> Vec<Step<'a>> {
        let mut by_kind: BTreeMap<PolicyKind, Step<'a>> = inherited
            .into_iter()
            .map(|s| (s.policy.kind(), s))
            .collect();
        for (kind, span) in disable {
            if by_kind.remove(kind).is_none() {
                self.diags.push(
                    Diagnostic::warning(
                        "disable-nothing",
                        *span,
                        format!("`disable: [{kind}]` removes nothing: no `{kind}` is inherited from {from}"),
                    )
                    .with_help("remove this entry"),
                );
            }
        }
        for step in lower {
            by_kind.insert(step.policy.kind(), step);
        }
        by_kind.into_values().collect()
    }

    fn route(
        &mut self,
        api: &'a Def<ApiAst>,
        route: &'a Def<RouteAst>,
        inherited: &[Step<'a>],
    ) -> Option<ResolvedRoute<'a>> {
        let a = &api.value;
        let rt = &route.value;
        let id = RouteId {
            api: api.name.clone(),
            route: route.name.clone(),
        };
        let own = self.level_steps(&rt.policies, Level::Route);
        self.check_disable_and_attach(&rt.disable, &own);
        let steps = self.apply(
            inherited.to_vec(),
            own,
            &rt.disable,
            &format!("api `{}` or the gateway", api.name),
        );
        let path = PathPattern {
            segments: a
                .base_path
                .segments
                .iter()
                .chain(&rt.path.segments)
                .cloned()
                .collect(),
            prefix: rt.path.prefix,
        };
        let upstream_ref = rt.upstream.as_ref().or(a.upstream.as_ref());
        let upstream = match upstream_ref {
            Some(u) if rt.upstream.is_some() => self.check_upstream(u).then(|| u.name.clone()),
            Some(u) => self.upstreams.contains_key(&u.name).then(|| u.name.clone()),
            None => None,
        };
        // A chain that names an unknown (or undecodable) policy lacks it, so
        // what the chain seems to lack (authentication, something that
        // answers) follows from that error, already reported: not again.
        let gateway_refs = self
            .spec
            .gateway
            .as_ref()
            .map_or(&[][..], |g| &g.policies[..]);
        let incomplete = [gateway_refs, &a.policies[..], &rt.policies[..]]
            .iter()
            .any(|refs| self.names_unknown_policy(refs));
        let strip_base = (a.strip_base_path && !a.base_path.segments.is_empty())
            .then(|| a.base_path.to_string());
        let chain = steps
            .iter()
            .map(|s| PolicyId {
                attachment: Attachment::at(s.source.level, &id),
                kind: s.policy.kind(),
            })
            .collect();
        Some(ResolvedRoute {
            route: RouteParts {
                id,
                matcher: Matcher {
                    hosts: a.hosts.clone(),
                    path,
                    methods: rt.methods.clone(),
                    conditions: rt.conditions.clone(),
                },
                upstream,
                chain,
            },
            span: route.span,
            path_span: rt.path_span,
            steps,
            own_policies: &rt.policies,
            strip_base,
            preserve_host: rt.preserve_host.or(a.preserve_host).unwrap_or(false),
            api,
            ast: route,
            incomplete,
        })
    }
}

/// A name that refers to nothing: a did-you-mean over the `known` names, or
/// `when_none` (where such things are defined) when there are none.
fn unknown_name(
    code: &'static str,
    at: &NameRef,
    message: String,
    known: &[&str],
    when_none: impl FnOnce() -> String,
) -> Diagnostic {
    let help = if known.is_empty() {
        when_none()
    } else {
        did_you_mean(at.name.as_str(), known)
    };
    Diagnostic::error(code, at.span, message).with_help(help)
}
