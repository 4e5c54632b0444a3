//! Checks that hold between the policies of one route's effective chain
//! and the route: something answers or proxies every request, `acl` and
//! per-consumer limits have someone authenticated, `mock` and `redirect`
//! do not both answer, templates name only the route's parameters, and
//! rewrites agree with the api's `strip-base-path`.

use crate::diag::{Diagnostic, Diagnostics};
use crate::front::ast::*;
use crate::ir::policy::{
    Policy, PolicyKind, Redirect, RedirectLocation, RedirectParts, RedirectPath, Rewrite,
};
use crate::ir::values::Name;
use crate::ir::{Level, PathPattern, RouteId};
use crate::resolve::{ResolvedRoute, Step};
use crate::source::Span;
use std::collections::BTreeMap;

/// Checks every resolved route's chain. Run before the routes are put in
/// match order, so that a problem shared by many routes names them in the
/// order the spec lists them.
pub fn check_chains(spec: &SpecAst, routes: &[ResolvedRoute<'_>], diags: &mut Diagnostics) {
    let mut c = ChainChecks {
        spec,
        diags: Diagnostics::new(),
        chain_diags: BTreeMap::new(),
    };
    for r in routes {
        c.check_route(r);
    }
    c.flush();
    diags.extend(c.diags);
}

struct ChainChecks<'s> {
    spec: &'s SpecAst,
    diags: Diagnostics,
    /// Problems of effective chains, by code and place: a policy inherited
    /// by many routes is reported once, naming every route it breaks.
    chain_diags: BTreeMap<(&'static str, Span), (Diagnostic, Vec<RouteId>)>,
}

impl ChainChecks<'_> {
    fn check_route(&mut self, r: &ResolvedRoute<'_>) {
        let (id, steps, api, rt) = (&r.route.id, &r.steps[..], r.api, &r.ast.value);
        let has = |k: PolicyKind| steps.iter().any(|s| s.policy.kind() == k);
        let answers_itself = has(PolicyKind::Mock) || has(PolicyKind::Redirect);
        let upstream_ref = rt.upstream.as_ref().or(api.value.upstream.as_ref());
        if upstream_ref.is_none()
            && !answers_itself
            && !has(PolicyKind::TrafficSplit)
            && !r.incomplete
        {
            let help = self.no_upstream_help(&api.name);
            self.diags.push(
                Diagnostic::error(
                    "no-upstream",
                    r.span,
                    format!("route `{id}` has nowhere to send requests"),
                )
                .with_help(help),
            );
        }
        let path = &r.route.matcher.path;
        self.check_chain(
            id,
            steps,
            path,
            r.path_span,
            &api.value.base_path,
            r.incomplete,
        );
        self.check_upstream_overridden(id, rt, steps);
        self.check_strip_and_rewrite(id, api, steps);
    }

    /// Records a problem of one route's chain; see [`ChainChecks::chain_diags`].
    fn error(&mut self, id: &RouteId, d: Diagnostic) {
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

    fn flush(&mut self) {
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
    fn check_upstream_overridden(&mut self, id: &RouteId, rt: &RouteAst, steps: &[Step<'_>]) {
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
    fn check_strip_and_rewrite(&mut self, id: &RouteId, api: &Def<ApiAst>, steps: &[Step<'_>]) {
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
        self.error(
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
        steps: &[Step<'_>],
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
            self.error(
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
                self.error(
                    id,
                    Diagnostic::error("acl-without-auth", acl.policy.kind_span, format!("route `{id}` checks consumer groups but authenticates nobody, so every request would get 403"))
                        .with_help("add `key-auth`, `basic-auth` or `jwt` to the route, its api or the gateway"),
                );
            }
        }
        if let Some(rl) = find(PolicyKind::RateLimit) {
            if let Policy::RateLimit(p) = &rl.policy.policy {
                if p.key == crate::ir::policy::RateKey::Consumer && !authenticated {
                    self.error(
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
                        self.error(
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
            let replaces_prefix = matches!(
                &step.policy.policy,
                Policy::Redirect(Redirect {
                    location: RedirectLocation::Parts(RedirectParts {
                        path: Some(RedirectPath::ReplacePrefix(_)),
                        ..
                    }),
                    ..
                })
            );
            if replaces_prefix && !path.prefix {
                let at = step
                    .policy
                    .template
                    .as_ref()
                    .map_or(step.policy.kind_span, |n| n.span);
                self.error(
                    id,
                    Diagnostic::error(
                        "redirect-prefix-on-non-prefix",
                        at,
                        format!("`replace-prefix` needs a prefix route, but route `{id}` matches one path shape (`{path}`), with no rest to keep"),
                    )
                    .with_related(path_span, "route path")
                    .with_help(format!("give the whole new path with `path:`, or make the route a prefix route (`{}/*`)", path.to_string().trim_end_matches('/'))),
                );
            } else {
                self.check_params(id, path, path_span, step, "`redirect`");
            }
        }
    }

    /// Reports `{param}`s of a rewrite or redirect template that the
    /// route's path lacks, each at the placeholder.
    fn check_params(
        &mut self,
        id: &RouteId,
        path: &PathPattern,
        path_span: Span,
        step: &Step<'_>,
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
            self.error(
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
