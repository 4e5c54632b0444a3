//! Resolution: names to definitions, inheritance (gateway -> api -> route),
//! defaults, and each route's chain in phase order. Produces the IR.

use crate::diag::{Diagnostic, Diagnostics};
use crate::front::ast::*;
use crate::front::decode::did_you_mean;
use crate::ir::policy::{Policy, PolicyKind, Rewrite};
use crate::ir::values::{ByteSize, Duration, Name};
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

/// A route after resolution, still carrying spans for validation.
pub struct ResolvedRoute<'a> {
    pub route: Route,
    pub span: Span,
    pub path_span: Span,
    pub steps: Vec<Step<'a>>,
    /// The policies written on the route itself (names and inline).
    pub own_policies: &'a [PolicyRef],
    /// The base path `strip-base-path` removes before proxying.
    pub strip_base: Option<String>,
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
    /// Problems of effective chains, by code and place: a policy inherited
    /// by many routes is reported once, naming every route it breaks.
    chain_diags: BTreeMap<(&'static str, Span), (Diagnostic, Vec<RouteId>)>,
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
        chain_diags: BTreeMap::new(),
        unknown_reported: HashSet::new(),
        duplicates_reported: HashSet::new(),
    };
    r.check_option_names();
    r.check_consumers();
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
    r.check_credentials_exist(&routes);
    r.flush_chain_diags();
    (gateway, routes, r.diags)
}

/// Every policy written in the spec, once each (inline or named), however
/// many routes it applies to.
fn all_policies(spec: &SpecAst) -> Vec<&PolicyAst> {
    fn inline(refs: &[PolicyRef]) -> impl Iterator<Item = &PolicyAst> {
        refs.iter().filter_map(|r| match r {
            PolicyRef::Inline(p) => Some(p),
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
                max_body: g.and_then(|g| g.max_body).unwrap_or(ByteSize(1 << 20)),
                timeouts: Timeouts {
                    connect: g
                        .and_then(|g| g.connect_timeout)
                        .unwrap_or(Duration::from_secs(5)),
                    read: g
                        .and_then(|g| g.read_timeout)
                        .unwrap_or(Duration::from_secs(30)),
                },
                server_header: g.and_then(|g| g.server_header).unwrap_or(false),
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

    /// Consumer-wide rules: group names that differ only in case, and basic
    /// users shared by two consumers (the gateway could not tell them apart).
    fn check_consumers(&mut self) {
        let mut groups: BTreeMap<String, &NameRef> = BTreeMap::new();
        let mut users: HashMap<&str, (&Name, Span)> = HashMap::new();
        for c in &self.spec.consumers {
            for g in &c.value.group_refs {
                let first = *groups
                    .entry(g.name.as_str().to_ascii_lowercase())
                    .or_insert(g);
                if first.name != g.name {
                    self.diags.push(
                        Diagnostic::error(
                            "name-case-clash",
                            g.span,
                            format!("group `{}` differs from group `{}` only in case", g.name, first.name),
                        )
                        .with_related(first.span, format!("`{}` is used here", first.name))
                        .with_help(format!("groups are case-sensitive; write `{}` if it is the same group, or rename one", first.name)),
                    );
                }
            }
            let (Some(b), Some(at)) = (&c.value.basic, c.value.basic_user_span) else {
                continue;
            };
            match users.get(b.user.as_str()) {
                Some((first, first_at)) => self.diags.push(
                    Diagnostic::error(
                        "duplicate-basic-user",
                        at,
                        format!(
                            "consumers `{first}` and `{}` have the same basic-auth user `{}`",
                            c.name, b.user
                        ),
                    )
                    .with_related(*first_at, format!("`{first}` uses it here"))
                    .with_help(
                        "give each consumer its own user, so the gateway knows who is calling",
                    ),
                ),
                None => {
                    users.insert(b.user.as_str(), (&c.name, at));
                }
            }
        }
    }

    /// `key-auth` and `basic-auth` need a consumer holding that credential,
    /// or every request they check would get 401.
    fn check_credentials_exist(&mut self, routes: &[ResolvedRoute<'a>]) {
        if self.spec.decode_errors {
            return; // a credential may be among what failed to decode
        }
        let consumers = &self.spec.consumers;
        let has_key = consumers.iter().any(|c| !c.value.keys.is_empty());
        let has_basic = consumers.iter().any(|c| c.value.basic.is_some());
        let mut seen = BTreeSet::new();
        for step in routes.iter().flat_map(|r| &r.steps) {
            let p = step.policy;
            let (missing, credential) = match p.kind() {
                PolicyKind::KeyAuth => (!has_key, "credentials: { key: { env: ACME_API_KEY } }"),
                PolicyKind::BasicAuth => (
                    !has_basic,
                    "credentials: { basic: { user: acme, password: { env: ACME_PASSWORD } } }",
                ),
                _ => continue,
            };
            if missing && seen.insert(p.kind_span) {
                self.diags.push(
                    Diagnostic::error(
                        "no-credentials",
                        p.kind_span,
                        format!("`{}` is used, but no consumer has a credential it accepts, so every request would get 401", p.kind()),
                    )
                    .with_help(format!("give a consumer `{credential}`")),
                );
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

    /// Records a problem of one route's chain; see [`Resolver::chain_diags`].
    fn chain_error(&mut self, id: &RouteId, d: Diagnostic) {
        let key = (d.code, d.span.expect("chain problems have a place"));
        let ids = &mut self
            .chain_diags
            .entry(key)
            .or_insert_with(|| (d, Vec::new()))
            .1;
        if ids.last() != Some(id) {
            ids.push(id.clone());
        }
    }

    fn flush_chain_diags(&mut self) {
        for (_, (mut d, ids)) in std::mem::take(&mut self.chain_diags) {
            if ids.len() > 1 {
                let others: Vec<String> = ids[1..].iter().map(|i| format!("`{i}`")).collect();
                let noun = if others.len() == 1 { "route" } else { "routes" };
                d.message
                    .push_str(&format!(" (also {noun} {})", others.join(", ")));
            }
            self.diags.push(d);
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
                PolicyRef::Inline(p) => (p, None),
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
        let has = |k: PolicyKind| steps.iter().any(|s| s.policy.kind() == k);
        let answers_itself = has(PolicyKind::Mock) || has(PolicyKind::Redirect);
        if upstream_ref.is_none()
            && !answers_itself
            && !has(PolicyKind::TrafficSplit)
            && !incomplete
        {
            let help = self.no_upstream_help(&api.name);
            self.diags.push(
                Diagnostic::error(
                    "no-upstream",
                    route.span,
                    format!("route `{id}` has nowhere to send requests"),
                )
                .with_help(help),
            );
        }
        self.check_chain(&id, &steps, &path, rt.path_span, &a.base_path, incomplete);
        self.check_upstream_overridden(&id, rt, &steps);
        self.check_strip_and_rewrite(&id, api, &steps);
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
            route: Route {
                id,
                matcher: Matcher {
                    hosts: a.hosts.clone(),
                    path,
                    methods: rt.methods.clone(),
                },
                upstream,
                chain,
                // Filled in once every policy instance is known.
                lowered: Lowered {
                    proxy: None,
                    upstream_path: UpstreamPath::Keep,
                    max_body: ByteSize(0),
                    auth: None,
                },
            },
            span: route.span,
            path_span: rt.path_span,
            steps,
            own_policies: &rt.policies,
            strip_base,
        })
    }

    /// What to write when an api's route reaches no upstream: an existing
    /// upstream named like the api, or the only one, if there is such.
    fn no_upstream_help(&self, api: &Name) -> String {
        let ups = &self.spec.upstreams;
        let pick =
            ups.iter()
                .find(|u| u.name == *api)
                .or(if ups.len() == 1 { ups.first() } else { None });
        match pick {
            Some(u) => format!("give api `{api}` an upstream (`upstream: {}`), or answer with a `mock` or `redirect`", u.name),
            None => format!("give api `{api}` or this route an `upstream:`, or answer with a `mock` or `redirect`"),
        }
    }

    /// A route's own `upstream` is never used under a `traffic-split`.
    fn check_upstream_overridden(&mut self, id: &RouteId, rt: &RouteAst, steps: &[Step<'a>]) {
        let Some(own) = &rt.upstream else { return };
        let Some(split) = steps
            .iter()
            .find(|s| s.policy.kind() == PolicyKind::TrafficSplit)
        else {
            return;
        };
        let from = match split.source.level {
            Level::Gateway => "it inherits from the gateway",
            Level::Api => "it inherits from its api",
            Level::Route => "attached to it",
        };
        self.diags.push(
            Diagnostic::warning(
                "upstream-overridden",
                own.span,
                format!("route `{id}` sets `upstream: {}`, but the `traffic-split` {from} chooses the upstream of every request", own.name),
            )
            .with_related(split.policy.kind_span, "traffic-split attached here")
            .with_help("remove this `upstream`, or `disable: [traffic-split]` on the route"),
        );
    }

    /// `strip-base-path: true` and a `rewrite` would both change the path sent upstream.
    fn check_strip_and_rewrite(&mut self, id: &RouteId, api: &Def<ApiAst>, steps: &[Step<'a>]) {
        let a = &api.value;
        let (true, Some(strip_at)) = (a.strip_base_path, a.strip_base_path_span) else {
            return;
        };
        let Some(step) = steps
            .iter()
            .find(|s| s.policy.kind() == PolicyKind::Rewrite)
        else {
            return;
        };
        let help = match &step.policy.policy {
            Policy::Rewrite(Rewrite::Prefix { strip: None, .. }) => format!(
                "remove `strip-base-path: true` and write `strip-prefix: {}` in the rewrite",
                a.base_path
            ),
            Policy::Rewrite(Rewrite::Path(_)) => {
                "remove `strip-base-path: true`: a rewrite `path` already gives the whole path sent upstream".to_string()
            }
            _ => "remove `strip-base-path: true` and let the rewrite's `strip-prefix` remove the base path".to_string(),
        };
        self.chain_error(
            id,
            Diagnostic::error(
                "rewrite-contradiction",
                step.policy.kind_span,
                format!("route `{id}` has a `rewrite`, but api `{}` has `strip-base-path: true`: only one may change the path sent upstream", api.name),
            )
            .with_related(strip_at, "strip-base-path set here")
            .with_help(help),
        );
    }

    /// Checks that hold between the policies of one effective chain and its route.
    fn check_chain(
        &mut self,
        id: &RouteId,
        steps: &[Step<'a>],
        path: &PathPattern,
        path_span: Span,
        base: &PathPattern,
        incomplete: bool,
    ) {
        let find = |k: PolicyKind| steps.iter().find(|s| s.policy.kind() == k);
        // An incomplete chain may lack its authentication only because of
        // the unknown name (see `route`).
        let authenticated = incomplete || steps.iter().any(|s| s.policy.kind().is_authentication());
        if let (Some(m), Some(r)) = (find(PolicyKind::Mock), find(PolicyKind::Redirect)) {
            self.chain_error(
                id,
                Diagnostic::error(
                    "mock-and-redirect",
                    r.policy.kind_span,
                    format!("route `{id}` both mocks and redirects; only one can answer"),
                )
                .with_related(m.policy.kind_span, "mock attached here")
                .with_help(match (m.source.level, r.source.level) {
                    (a, b) if a < b => {
                        "keep one of them, or add `disable: [mock]` beside the redirect"
                    }
                    (a, b) if a > b => {
                        "keep one of them, or add `disable: [redirect]` beside the mock"
                    }
                    _ => "keep one of them",
                }),
            );
        }
        if let Some(acl) = find(PolicyKind::Acl) {
            if !authenticated {
                self.chain_error(
                    id,
                    Diagnostic::error("acl-without-auth", acl.policy.kind_span, format!("route `{id}` checks consumer groups but authenticates nobody, so every request would get 403"))
                        .with_help("add `key-auth`, `basic-auth` or `jwt` to the route, its api or the gateway"),
                );
            }
        }
        if let Some(rl) = find(PolicyKind::RateLimit) {
            if let Policy::RateLimit(p) = &rl.policy.policy {
                if p.key == crate::ir::policy::RateKey::Consumer && !authenticated {
                    self.chain_error(
                        id,
                        Diagnostic::error(
                            "rate-limit-without-auth",
                            rl.policy.kind_span,
                            format!("route `{id}` limits per consumer but authenticates nobody"),
                        )
                        .with_help("add an authentication policy, or use `key: ip`"),
                    );
                }
            }
        }
        if let Some(step) = find(PolicyKind::Rewrite) {
            match &step.policy.policy {
                Policy::Rewrite(Rewrite::Path(_)) => {
                    self.check_params(id, path, path_span, step, "`rewrite`")
                }
                Policy::Rewrite(Rewrite::Prefix {
                    strip: Some(strip), ..
                }) => {
                    let lit = path.literal_prefix();
                    let is_prefix =
                        |p: &str| p == "/" || lit == p || lit.starts_with(&format!("{p}/"));
                    if !is_prefix(strip) {
                        // Usually the base path was left out: the full path includes it.
                        let base = base.to_string();
                        let with_base = format!("{}{strip}", base.trim_end_matches('/'));
                        let help = if base != "/" && is_prefix(&with_base) {
                            format!("write `strip-prefix: {with_base}`: the route's full path includes the base path `{base}`")
                        } else {
                            format!("strip a prefix of `{lit}`, at a `/` boundary")
                        };
                        let at = step
                            .policy
                            .template
                            .as_ref()
                            .map_or(step.policy.kind_span, |n| n.span);
                        self.chain_error(
                            id,
                            Diagnostic::error("rewrite-contradiction", at, format!("`strip-prefix: {strip}` can never apply to route `{id}`: its paths start with `{lit}`"))
                                .with_related(path_span, "route path")
                                .with_help(help),
                        );
                    }
                }
                _ => {}
            }
        }
        if let Some(step) = find(PolicyKind::Redirect) {
            self.check_params(id, path, path_span, step, "`redirect`");
        }
    }

    /// Reports `{param}`s of a rewrite or redirect template that the
    /// route's path lacks, each at the placeholder.
    fn check_params(
        &mut self,
        id: &RouteId,
        path: &PathPattern,
        path_span: Span,
        step: &Step<'a>,
        what: &str,
    ) {
        let Some(node) = &step.policy.template else {
            return;
        };
        let crate::front::yaml::Value::Str(text) = &node.value else {
            return;
        };
        let params: Vec<&str> = path.params().collect();
        for (range, p) in template_params(text) {
            if params.contains(&p) {
                continue;
            }
            let at = crate::front::decode::span_within(node, text, range);
            self.chain_error(
                id,
                Diagnostic::error("rewrite-contradiction", at, format!("{what} uses `{{{p}}}`, but route `{id}` has no such parameter (its path is `{path}`)"))
                    .with_related(path_span, "route path")
                    .with_help(if params.is_empty() {
                        "the route path has no parameters; use a literal path".to_string()
                    } else {
                        let list: Vec<String> = params.iter().map(|p| format!("`{{{p}}}`")).collect();
                        format!("use the route's {}: {}", if list.len() == 1 { "parameter" } else { "parameters" }, list.join(", "))
                    }),
            );
        }
    }
}

/// `{name}` placeholders in a template string, with their byte ranges.
fn template_params(text: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find('{').map(|i| from + i) {
        match text[start..].find('}').map(|i| start + i) {
            Some(end) => {
                out.push((start..end + 1, &text[start + 1..end]));
                from = end + 1;
            }
            None => break,
        }
    }
    out
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
