//! The reference graph of a spec: apis, routes, named policies, upstreams and
//! consumers, with an edge for every use. Finds bundle cycles (errors) and
//! definitions nothing uses (warnings). Dangling names are reported during
//! resolution, where the spelling suggestions are at hand.

use crate::diag::{Diagnostic, Diagnostics};
use crate::front::ast::*;
use crate::ir::values::Name;
use crate::resolve::ResolvedRoute;
use crate::source::Span;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use std::collections::{BTreeSet, HashMap};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Entity<'a> {
    Gateway,
    Api(&'a Name),
    Policy(&'a Name),
    Upstream(&'a Name),
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

    fn edge(&mut self, from: Entity<'a>, to: Entity<'a>) {
        let (a, b) = (self.node(from), self.node(to));
        self.g.update_edge(a, b, ());
    }

    fn policy_refs(&mut self, from: Entity<'a>, refs: &'a [PolicyRef]) {
        for r in refs {
            match r {
                PolicyRef::Named(n) => self.edge(from, Entity::Policy(&n.name)),
                PolicyRef::Inline(p) => self.option_refs(from, p),
            }
        }
    }

    fn option_refs(&mut self, from: Entity<'a>, p: &'a PolicyAst) {
        for (kind, r) in &p.refs {
            if *kind == RefKind::Upstream {
                self.edge(from, Entity::Upstream(&r.name));
            }
        }
    }
}

/// Builds the graph and reports cycles and unused definitions.
pub fn check_graph(spec: &SpecAst, routes: &[ResolvedRoute<'_>], diags: &mut Diagnostics) {
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
        match &d.value {
            PolicyDef::Single(p) => g.option_refs(me, p),
            PolicyDef::Bundle(items) => g.policy_refs(me, items),
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
        g.edge(Entity::Gateway, me);
        if let Some(u) = &api.value.upstream {
            g.edge(me, Entity::Upstream(&u.name));
        }
        g.policy_refs(me, &api.value.policies);
        // Routes hang off their api: what a route uses, its api uses.
        for r in &api.value.routes {
            if let Some(u) = &r.value.upstream {
                g.edge(me, Entity::Upstream(&u.name));
            }
            g.policy_refs(me, &r.value.policies);
        }
    }

    report_cycles(spec, &g, diags);

    let spans: HashMap<Entity<'_>, Span> = spec
        .policies
        .iter()
        .map(|d| (Entity::Policy(&d.name), d.span))
        .chain(
            spec.upstreams
                .iter()
                .map(|d| (Entity::Upstream(&d.name), d.span)),
        )
        .collect();
    let mut unused: Vec<(Span, Entity<'_>)> =
        g.g.node_indices()
            .filter(|i| {
                g.g.neighbors_directed(*i, Direction::Incoming)
                    .next()
                    .is_none()
            })
            .filter_map(|i| spans.get(&g.g[i]).map(|s| (*s, g.g[i])))
            .collect();
    unused.sort_by_key(|(s, _)| *s);
    for (span, e) in unused {
        let (what, name) = match e {
            Entity::Policy(n) => ("policy", n),
            Entity::Upstream(n) => ("upstream", n),
            _ => continue,
        };
        diags.push(
            Diagnostic::warning(
                "unused-definition",
                span,
                format!("{what} `{name}` is defined but never used"),
            )
            .with_help("attach it somewhere, or remove it"),
        );
    }

    // Consumers matter only where some route authenticates.
    let authenticates = routes
        .iter()
        .any(|r| r.route.chain.iter().any(|p| p.kind().is_authentication()));
    if !authenticates {
        if let Some(c) = spec.consumers.first() {
            diags.push(
                Diagnostic::warning(
                    "unused-definition",
                    c.span,
                    "consumers are defined but no route authenticates, so none is ever identified",
                )
                .with_help("add `key-auth`, `basic-auth` or `jwt` where consumers should be known"),
            );
        }
    }
    let groups: BTreeSet<&Name> = spec
        .consumers
        .iter()
        .flat_map(|c| &c.value.groups)
        .collect();
    let mut seen = BTreeSet::new();
    for step in routes.iter().flat_map(|r| &r.steps) {
        for (kind, r) in &step.policy.refs {
            if *kind == RefKind::Group
                && !groups.contains(&r.name)
                && seen.insert((r.span, &r.name))
            {
                diags.push(
                    Diagnostic::warning(
                        "unknown-group",
                        r.span,
                        format!("no consumer is in group `{}`", r.name),
                    )
                    .with_help("add the group to a consumer's `groups:`, or check the spelling"),
                );
            }
        }
    }
}

fn report_cycles(spec: &SpecAst, g: &Graph<'_>, diags: &mut Diagnostics) {
    for scc in tarjan_scc(&g.g) {
        let cyclic = scc.len() > 1 || g.g.contains_edge(scc[0], scc[0]);
        if !cyclic {
            continue;
        }
        let mut names: Vec<&Name> = scc
            .iter()
            .filter_map(|i| match g.g[*i] {
                Entity::Policy(n) => Some(n),
                _ => None,
            })
            .collect();
        names.sort();
        let Some(first) = spec.policies.iter().find(|d| names.contains(&&d.name)) else {
            continue;
        };
        let list = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(" -> ");
        diags.push(
            Diagnostic::error(
                "policy-cycle",
                first.span,
                format!("policy bundles include each other in a cycle: {list}"),
            )
            .with_help(
                "a bundle may include other bundles, but never itself, directly or through others",
            ),
        );
    }
}
