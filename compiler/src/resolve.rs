//! Resolution: names to definitions, inheritance (gateway -> api -> route),
//! defaults, and each route's chain in phase order. Produces the IR.

use crate::diag::{Diagnostic, Diagnostics};
use crate::front::ast::*;
use crate::front::decode::did_you_mean;
use crate::ir::policy::{Policy, PolicyKind, Rewrite};
use crate::ir::values::{ByteSize, Duration, Name};
use crate::ir::*;
use crate::source::Span;
use std::collections::{BTreeMap, HashMap};

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
}

/// Resolves a decoded spec. Diagnostics include every dangling name.
pub fn resolve(spec: &SpecAst) -> (Gateway, Vec<ResolvedRoute<'_>>, Diagnostics) {
    let mut r = Resolver {
        spec,
        policies: spec.policies.iter().map(|d| (&d.name, d)).collect(),
        upstreams: spec.upstreams.iter().map(|d| (&d.name, d)).collect(),
        diags: Diagnostics::new(),
    };
    let gateway = r.gateway();
    let gw_steps = match &spec.gateway {
        Some(g) => r.level_steps(&g.policies, Level::Gateway),
        None => Vec::new(),
    };
    let mut routes = Vec::new();
    for api in &spec.apis {
        let api_steps = r.level_steps(&api.value.policies, Level::Api);
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

impl<'a> Resolver<'a> {
    fn gateway(&mut self) -> Gateway {
        let g = self.spec.gateway.as_ref();
        Gateway {
            name: g
                .and_then(|g| g.name.clone())
                .unwrap_or_else(|| "gateway".parse().expect("valid name")),
            listen: g.and_then(|g| g.listen).unwrap_or(8080),
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
        let names: Vec<&str> = self
            .spec
            .upstreams
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        self.diags.push(
            Diagnostic::error(
                "unknown-upstream",
                u.span,
                format!("no upstream is named `{}`", u.name),
            )
            .with_help(if names.is_empty() {
                "define it under `upstreams:`".to_string()
            } else {
                did_you_mean(u.name.as_str(), &names)
            }),
        );
        false
    }

    /// The steps one level's `policies:` list contributes, bundles expanded.
    fn level_steps(&mut self, refs: &'a [PolicyRef], level: Level) -> Vec<Step<'a>> {
        let mut out = Vec::new();
        self.expand(refs, level, &mut Vec::new(), &mut out);
        // The same kind twice at one level is ambiguous: which one wins?
        let mut seen: HashMap<PolicyKind, &Step<'a>> = HashMap::new();
        let mut dups = Vec::new();
        for step in &out {
            if let Some(first) = seen.get(&step.policy.kind()) {
                dups.push(
                    Diagnostic::error(
                        "duplicate-policy-kind",
                        step.policy.kind_span,
                        format!(
                            "`{}` is attached twice at the same level",
                            step.policy.kind()
                        ),
                    )
                    .with_related(first.policy.kind_span, "also attached here")
                    .with_help(
                        "keep one of them, or move one to the api or route level to override",
                    ),
                );
            } else {
                seen.insert(step.policy.kind(), step);
            }
        }
        for d in dups {
            self.diags.push(d);
        }
        out
    }

    fn expand(
        &mut self,
        refs: &'a [PolicyRef],
        level: Level,
        via: &mut Vec<Name>,
        out: &mut Vec<Step<'a>>,
    ) {
        for r in refs {
            match r {
                PolicyRef::Inline(p) => out.push(Step {
                    policy: p,
                    source: StepSource {
                        level,
                        via: via.clone(),
                        at: loc(p.kind_span),
                    },
                }),
                PolicyRef::Named(n) => {
                    let Some(def) = self.policies.get(&n.name).copied() else {
                        let names: Vec<&str> =
                            self.spec.policies.iter().map(|d| d.name.as_str()).collect();
                        self.diags.push(
                            Diagnostic::error("unknown-policy", n.span, format!("no policy is named `{}`", n.name)).with_help(
                                if names.is_empty() {
                                    "define it under `policies:`, or write the policy inline: `- rate-limit: { ... }`".to_string()
                                } else {
                                    did_you_mean(n.name.as_str(), &names)
                                },
                            ),
                        );
                        continue;
                    };
                    if via.contains(&n.name) {
                        continue; // a bundle cycle; reported by validation
                    }
                    via.push(n.name.clone());
                    match &def.value {
                        PolicyDef::Single(p) => out.push(Step {
                            policy: p,
                            source: StepSource {
                                level,
                                via: via.clone(),
                                at: loc(p.kind_span),
                            },
                        }),
                        PolicyDef::Bundle(items) => self.expand(items, level, via, out),
                    }
                    via.pop();
                }
            }
        }
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
                        format!("`disable: [{kind}]` removes nothing: {from} attaches no `{kind}`"),
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
        let steps = self.apply(
            inherited.to_vec(),
            own,
            &rt.disable,
            &format!("api `{}`", api.name),
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
        for step in &steps {
            for (kind, r) in &step.policy.refs {
                if *kind == RefKind::Upstream {
                    self.check_upstream(r);
                }
            }
        }
        let has = |k: PolicyKind| steps.iter().any(|s| s.policy.kind() == k);
        let answers_itself = has(PolicyKind::Mock) || has(PolicyKind::Redirect);
        if upstream_ref.is_none() && !answers_itself && !has(PolicyKind::TrafficSplit) {
            self.diags.push(
                Diagnostic::error("no-upstream", route.span, format!("route `{id}` has nowhere to send requests"))
                    .with_help(format!("give api `{}` or this route an `upstream:`, or answer with a `mock` or `redirect`", api.name)),
            );
        }
        self.check_chain(&id, &steps, &path, rt.path_span);
        let strip_prefix = (a.strip_base_path && !a.base_path.segments.is_empty())
            .then(|| a.base_path.to_string());
        Some(ResolvedRoute {
            route: Route {
                id,
                matcher: Matcher {
                    hosts: a.hosts.clone(),
                    path,
                    methods: rt.methods.clone(),
                },
                upstream,
                strip_prefix,
                chain: steps.iter().map(|s| s.policy.policy.clone()).collect(),
            },
            span: route.span,
            path_span: rt.path_span,
            steps,
        })
    }

    /// Checks that hold between the policies of one effective chain and its route.
    fn check_chain(
        &mut self,
        id: &RouteId,
        steps: &[Step<'a>],
        path: &PathPattern,
        path_span: Span,
    ) {
        let find = |k: PolicyKind| steps.iter().find(|s| s.policy.kind() == k);
        let authenticated = steps.iter().any(|s| s.policy.kind().is_authentication());
        if let (Some(m), Some(r)) = (find(PolicyKind::Mock), find(PolicyKind::Redirect)) {
            self.diags.push(
                Diagnostic::error(
                    "mock-and-redirect",
                    r.policy.kind_span,
                    format!("route `{id}` both mocks and redirects; only one can answer"),
                )
                .with_related(m.policy.kind_span, "mock attached here")
                .with_help("keep one, or `disable` the inherited one on this route"),
            );
        }
        if let Some(acl) = find(PolicyKind::Acl) {
            if !authenticated {
                self.diags.push(
                    Diagnostic::error("acl-without-auth", acl.policy.kind_span, format!("route `{id}` checks consumer groups but authenticates nobody, so every request would get 403"))
                        .with_help("add `key-auth`, `basic-auth` or `jwt` to the route, its api or the gateway"),
                );
            }
        }
        if let Some(rl) = find(PolicyKind::RateLimit) {
            if let Policy::RateLimit(p) = &rl.policy.policy {
                if p.key == crate::ir::policy::RateKey::Consumer && !authenticated {
                    self.diags.push(
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
                Policy::Rewrite(Rewrite::Path(p)) => self.check_params(
                    id,
                    path,
                    path_span,
                    &p.to_string(),
                    step.policy.kind_span,
                    "`rewrite`",
                ),
                Policy::Rewrite(Rewrite::Prefix {
                    strip: Some(strip), ..
                }) => {
                    let lit = path.literal_prefix();
                    let covers =
                        lit == *strip || lit.starts_with(&format!("{strip}/")) || strip == "/";
                    if !covers {
                        self.diags.push(
                            Diagnostic::error("rewrite-contradiction", step.policy.kind_span, format!("`strip-prefix: {strip}` can never apply to route `{id}`: its paths start with `{lit}`"))
                                .with_related(path_span, "route path")
                                .with_help(format!("strip a prefix of `{lit}`")),
                        );
                    }
                }
                _ => {}
            }
        }
        if let Some(step) = find(PolicyKind::Redirect) {
            if let Policy::Redirect(r) = &step.policy.policy {
                self.check_params(
                    id,
                    path,
                    path_span,
                    &r.to,
                    step.policy.kind_span,
                    "`redirect`",
                );
            }
        }
    }

    /// Reports `{param}`s of a rewrite or redirect template that the route's path lacks.
    fn check_params(
        &mut self,
        id: &RouteId,
        path: &PathPattern,
        path_span: Span,
        text: &str,
        at: Span,
        what: &str,
    ) {
        let params: Vec<&str> = path.params().collect();
        for p in template_params(text) {
            if params.contains(&p) {
                continue;
            }
            self.diags.push(
                Diagnostic::error("rewrite-contradiction", at, format!("{what} uses `{{{p}}}`, but route `{id}` has no such parameter (its path is `{path}`)"))
                    .with_related(path_span, "route path")
                    .with_help(if params.is_empty() {
                        "the route path has no parameters; use a literal path".to_string()
                    } else {
                        format!("use one of: {}", params.iter().map(|p| format!("{{{p}}}")).collect::<Vec<_>>().join(", "))
                    }),
            );
        }
    }
}

/// `{name}` placeholders in a template string.
fn template_params(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}
