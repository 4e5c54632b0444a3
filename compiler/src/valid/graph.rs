//! The reference graph of a spec: the gateway, apis, routes, named policies
//! and bundles, upstreams and consumers, with an edge for every use: the
//! gateway holds its apis, an api its routes; the gateway, an api, a route
//! or a bundle references named policies; a route sends requests to
//! upstreams (its own or its api's, and `traffic-split` destinations) and
//! identifies consumers. Identification goes through one node per
//! authentication kind (route -> `key-auth` -> each consumer with a key), so
//! the graph grows with routes plus consumers, not their product.
//!
//! Finds bundle cycles (errors) and, from incoming edges, policies, upstreams
//! and consumers that nothing uses (warnings). Dangling names are reported
//! during resolution, where the spelling suggestions are at hand.

use crate::diag::{Diagnostic, Diagnostics};
use crate::front::ast::*;
use crate::ir::policy::PolicyKind;
use crate::ir::values::Name;
use crate::resolve::ResolvedRoute;
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use std::collections::{BTreeSet, HashMap};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Entity<'a> {
    Gateway,
    Api(&'a Name),
    /// Index into the resolved routes.
    Route(usize),
    Policy(&'a Name),
    Upstream(&'a Name),
    /// An authentication kind some route uses.
    Auth(PolicyKind),
    Consumer(&'a Name),
}

struct Graph<'a> {
    g: DiGraph<Entity<'a>, ()>,
    index: HashMap<Entity<'a>, NodeIndex>,
}

impl<'a> Graph<'a> {
    fn node(&mut self, e: Entity<'a>) -> NodeIndex {
        *self.index.entry(e).or_insert_with(|| self.g.add_node(e))
    }

    /// An edge, once however often the use is written (a lookup among
    /// `from`'s edges: for nodes with few of them).
    fn edge(&mut self, from: Entity<'a>, to: Entity<'a>) {
        let (a, b) = (self.node(from), self.node(to));
        self.g.update_edge(a, b, ());
    }

    /// An edge known to be new (an api's route, the gateway's api).
    fn new_edge(&mut self, from: Entity<'a>, to: Entity<'a>) {
        let (a, b) = (self.node(from), self.node(to));
        self.g.add_edge(a, b, ());
    }

    fn policy_refs(&mut self, from: Entity<'a>, refs: &'a [PolicyRef]) {
        for r in refs {
            if let PolicyRef::Named(n) = r {
                self.edge(from, Entity::Policy(&n.name));
            }
        }
    }

    /// Whether anything other than `e` itself has an edge to `e`.
    fn used(&self, e: Entity<'a>) -> bool {
        self.index.get(&e).is_some_and(|&i| {
            self.g
                .neighbors_directed(i, Direction::Incoming)
                .any(|from| from != i)
        })
    }

    fn build(spec: &'a SpecAst, routes: &'a [ResolvedRoute<'a>]) -> Graph<'a> {
        let mut g = Graph {
            g: DiGraph::new(),
            index: HashMap::new(),
        };
        g.node(Entity::Gateway);
        if let Some(gw) = &spec.gateway {
            g.policy_refs(Entity::Gateway, &gw.policies);
        }
        for d in &spec.policies {
            let me = Entity::Policy(&d.name);
            g.node(me);
            if let PolicyDef::Bundle(items) = &d.value {
                g.policy_refs(me, items);
            }
        }
        for d in &spec.upstreams {
            g.node(Entity::Upstream(&d.name));
        }
        for d in &spec.consumers {
            g.node(Entity::Consumer(&d.name));
        }
        for api in &spec.apis {
            let me = Entity::Api(&api.name);
            g.new_edge(Entity::Gateway, me);
            g.policy_refs(me, &api.value.policies);
        }
        for (i, r) in routes.iter().enumerate() {
            let me = Entity::Route(i);
            g.new_edge(Entity::Api(&r.route.id.api), me);
            g.policy_refs(me, r.own_policies);
            if let Some(u) = &r.route.upstream {
                g.edge(me, Entity::Upstream(u));
            }
            for step in &r.steps {
                for (kind, n) in &step.policy.refs {
                    if *kind == RefKind::Upstream {
                        g.edge(me, Entity::Upstream(&n.name));
                    }
                }
                let kind = step.policy.kind();
                if kind.is_authentication() {
                    g.edge(me, Entity::Auth(kind));
                }
            }
        }
        // Each authentication kind in use identifies the consumers holding
        // a credential it checks; a jwt names any consumer by its claim.
        for kind in [PolicyKind::KeyAuth, PolicyKind::BasicAuth, PolicyKind::Jwt] {
            if !g.used(Entity::Auth(kind)) {
                continue;
            }
            let from = g.node(Entity::Auth(kind));
            for c in &spec.consumers {
                let holds = match kind {
                    PolicyKind::KeyAuth => !c.value.keys.is_empty(),
                    PolicyKind::BasicAuth => c.value.basic.is_some(),
                    _ => true,
                };
                if holds {
                    let to = g.node(Entity::Consumer(&c.name));
                    g.g.add_edge(from, to, ());
                }
            }
        }
        g
    }
}

/// Builds the graph and reports cycles and unused definitions.
pub fn check_graph(spec: &SpecAst, routes: &[ResolvedRoute<'_>], diags: &mut Diagnostics) {
    let g = Graph::build(spec, routes);
    report_cycles(spec, &g, diags);
    // With parts of the spec undecoded, "unused" would often mean "its user
    // failed to decode"; with any error, chains may lack their authentication.
    // A definition also looks unused when the route meant to use it names
    // it wrongly or not at all: that error (with its did-you-mean) is the
    // root cause, and the warning would only repeat it.
    let reported = |codes: &[&str]| diags.iter().any(|d| codes.contains(&d.code));
    let policy_misnamed = reported(&["unknown-policy"]);
    let upstream_misnamed = reported(&["unknown-upstream", "no-upstream"]);
    if !spec.decode_errors {
        if !policy_misnamed {
            report_unused_policies(spec, &g, diags);
        }
        if !upstream_misnamed {
            report_unreached_upstreams(spec, &g, diags);
        }
    }
    if !diags.has_errors() {
        report_unidentified_consumers(spec, &g, diags);
    }
}

/// Named policies and bundles that nothing references.
fn report_unused_policies(spec: &SpecAst, g: &Graph<'_>, diags: &mut Diagnostics) {
    for d in &spec.policies {
        if !g.used(Entity::Policy(&d.name)) {
            diags.push(
                Diagnostic::warning(
                    "unused-definition",
                    d.span,
                    format!("policy `{}` is defined but never used", d.name),
                )
                .with_help("attach it somewhere (`policies: [name]`), or remove it"),
            );
        }
    }
}

/// Upstreams that no route sends requests to, through `upstream` or a `traffic-split`.
fn report_unreached_upstreams(spec: &SpecAst, g: &Graph<'_>, diags: &mut Diagnostics) {
    for d in &spec.upstreams {
        if !g.used(Entity::Upstream(&d.name)) {
            diags.push(
                Diagnostic::warning(
                    "unused-definition",
                    d.span,
                    format!("upstream `{}` is defined but no route sends requests to it", d.name),
                )
                .with_help("name it in an api's or route's `upstream:` (or a `traffic-split`), or remove it"),
            );
        }
    }
}

/// Consumers that no authentication policy in any route could identify.
fn report_unidentified_consumers(spec: &SpecAst, g: &Graph<'_>, diags: &mut Diagnostics) {
    let key_auth = g.used(Entity::Auth(PolicyKind::KeyAuth));
    let basic_auth = g.used(Entity::Auth(PolicyKind::BasicAuth));
    for c in &spec.consumers {
        if g.used(Entity::Consumer(&c.name)) {
            continue;
        }
        let v = &c.value;
        let (why, help) = match (!v.keys.is_empty(), v.basic.is_some()) {
            _ if !key_auth && !basic_auth => (
                "no route authenticates".to_string(),
                "add `key-auth`, `basic-auth` or `jwt` to the routes this consumer calls",
            ),
            (true, _) => (
                "its key is checked by no route: no route uses `key-auth`".to_string(),
                "add `key-auth` to the routes this consumer calls",
            ),
            (false, true) => (
                "its basic credentials are checked by no route: no route uses `basic-auth`"
                    .to_string(),
                "add `basic-auth` to the routes this consumer calls",
            ),
            (false, false) => (
                "it has no credentials, and no route uses `jwt` to identify it by name".to_string(),
                "give it `credentials:` that a route's authentication checks",
            ),
        };
        diags.push(
            Diagnostic::warning(
                "unused-definition",
                c.span,
                format!("consumer `{}` can never be identified: {why}", c.name),
            )
            .with_help(help),
        );
    }
}

/// Reports each bundle cycle once, as the path it takes: `a -> b -> a`.
fn report_cycles(spec: &SpecAst, g: &Graph<'_>, diags: &mut Diagnostics) {
    for scc in kosaraju_scc(&g.g) {
        let cyclic = scc.len() > 1 || g.g.contains_edge(scc[0], scc[0]);
        if !cyclic {
            continue;
        }
        let members: BTreeSet<&Name> = scc
            .iter()
            .filter_map(|i| match g.g[*i] {
                Entity::Policy(n) => Some(n),
                _ => None,
            })
            .collect();
        let defs: HashMap<&Name, &Def<PolicyDef>> =
            spec.policies.iter().map(|d| (&d.name, d)).collect();
        // Walk from the first member in spec order, always into the first
        // bundle entry that stays in the cycle, until a bundle repeats.
        let Some(start) = spec.policies.iter().find(|d| members.contains(&d.name)) else {
            continue;
        };
        let mut path: Vec<(&Name, Option<&NameRef>)> = vec![(&start.name, None)];
        loop {
            let (current, _) = path[path.len() - 1];
            let Some(PolicyDef::Bundle(items)) = defs.get(current).map(|d| &d.value) else {
                break;
            };
            let next = items.iter().find_map(|r| match r {
                PolicyRef::Named(n) if members.contains(&n.name) => Some(n),
                _ => None,
            });
            let Some(next) = next else { break };
            let repeat = path.iter().position(|(n, _)| **n == next.name);
            path.push((&next.name, Some(next)));
            if let Some(at) = repeat {
                path.drain(..at);
                break;
            }
        }
        let text = path
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(" -> ");
        let first = defs[path[0].0];
        let mut d = Diagnostic::error(
            "policy-cycle",
            first.span,
            format!("policy bundles include each other in a cycle: `{text}`"),
        )
        .with_help(
            "a bundle may include other bundles, but never itself, directly or through others; remove one of these entries",
        );
        for (name, r) in &path[1..] {
            if let Some(r) = r {
                d = d.with_related(r.span, format!("includes `{name}`"));
            }
        }
        diags.push(d);
    }
}
