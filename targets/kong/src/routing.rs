//! Routes for Kong's expressions router.
//!
//! The spec's dispatch is first match in the IR's route order; Kong's
//! traditional router instead ranks routes by how many conditions they
//! have before it looks at `regex_priority`, so no choice of
//! `regex_priority` keeps a method-less route ahead of a later one with
//! methods. The expressions router evaluates the matching routes by
//! `priority` only (highest first): each route gets `priority = count -
//! index`, so the first matching gatefold route wins. That order already
//! puts routes with more `match` conditions first where paths tie, so
//! conditions only add predicates ([`crate::conditions`]).

use crate::conditions::{ConditionTable, KongConditions};
use crate::model::{Route, ServiceRef};
use gatefold_compiler::dispatch::{DispatchView, MethodSet};
use gatefold_compiler::ir::lowered::ProxyPlan;
use gatefold_compiler::ir::{HostPattern, Matcher, PathPattern, Segment, ValidIr};

/// A route per IR route, in IR order, then the 405 fallbacks below them.
pub fn routes(ir: &ValidIr, fallbacks: &[Fallback]) -> Vec<Route> {
    let table = ConditionTable::new(ir);
    let below = fallbacks.len() as u64;
    let count = ir.routes.len() as u64;
    let mut out: Vec<Route> = ir
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| Route {
            name: route_name(&r.id),
            expression: expression(&r.matcher, &table),
            priority: below + count - i as u64,
            protocols: vec!["http", "https"],
            strip_path: false,
            // Kong then sends the client's `host` as received.
            preserve_host: r.lowered.preserve_host,
            service: match &r.lowered.proxy {
                Some(ProxyPlan::Single(d)) => Some(ServiceRef {
                    name: crate::service_name(ir, d),
                }),
                // traffic-split: through the first destination's service;
                // the post-function picks the Kong upstream.
                Some(ProxyPlan::Split { to, .. }) => to.first().map(|d| ServiceRef {
                    name: crate::service_name(ir, d),
                }),
                None => r.upstream.as_ref().map(|u| ServiceRef {
                    name: u.to_string(),
                }),
            },
            tags: vec![crate::tag(format_args!("route/{}", r.id))],
        })
        .collect();
    for (k, f) in fallbacks.iter().enumerate() {
        out.push(Route {
            name: f.name.clone(),
            expression: f.expression.clone(),
            priority: below - k as u64,
            protocols: vec!["http", "https"],
            strip_path: false,
            preserve_host: false,
            service: Some(ServiceRef {
                name: fallback_service(&f.allow),
            }),
            tags: vec![crate::tag("dispatch/405")],
        });
    }
    out
}

/// The service of the 405 routes answering with `allow` (`GET, POST` ->
/// `gatefold-405.GET.POST`; upstream names hold no `.`). Never called: its
/// pre-function answers first.
pub fn fallback_service(allow: &str) -> String {
    format!("gatefold-405.{}", allow.replace(", ", "."))
}

/// A route taking the requests whose host and path some routes take but
/// whose method none does, answered 405 with `allow` by its pre-function.
pub struct Fallback {
    pub name: String,
    pub expression: String,
    /// The `allow` header: the path group's methods.
    pub allow: String,
    /// When some route of the group has `match` conditions, the answer
    /// depends on which hold: each group's methods with the condition
    /// markers it requires (none for an unconditional one), in the
    /// group's order. Empty otherwise.
    pub choices: Vec<(MethodSet, Vec<usize>)>,
}

/// One fallback per path group with methods no route takes, from the
/// dispatch view: classes in precedence order (exact hosts, wildcards,
/// then host-less), groups in precedence order, so the first fallback
/// matching a request is the group the spec consults. Every class holds
/// the routes of the classes after it that take its hosts, so a later
/// class's fallback never answers for a path an earlier class's groups
/// take; Kong's priorities put all of them below every real route, which
/// is the spec's "no route takes the method" case.
pub fn fallbacks(ir: &ValidIr) -> Vec<Fallback> {
    let view = DispatchView::new(ir);
    let table = ConditionTable::new(ir);
    let mut out = Vec::new();
    for class in view.classes() {
        for g in &class.paths {
            let Some(allow) = g.allow else { continue };
            let mut expression = path(&g.pattern);
            if let Some(h) = &class.host {
                expression = format!("{expression} && {}", host(h));
            }
            let choices = if g.methods.iter().any(|m| m.conditional) {
                g.methods
                    .iter()
                    .map(|m| {
                        let c = &ir.routes[m.route].matcher.conditions;
                        (m.methods, table.sorted_numbers(c))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            out.push(Fallback {
                name: format!("gatefold-405-{}", out.len() + 1),
                expression,
                allow: allow.to_string(),
                choices,
            });
        }
    }
    out
}

/// The Kong name of a gatefold route: `API.ROUTE`.
pub fn route_name(id: &gatefold_compiler::ir::RouteId) -> String {
    id.to_string()
}

/// An ATC expression: path, and hosts, methods and the markers of its
/// `match` conditions when the route has them. Strings are raw literals
/// (`r#"..."#`): path literals, host names and method names hold neither
/// `"` nor `#`, so nothing needs escaping; condition values never reach
/// the expression (see [`crate::conditions`]).
pub fn expression(m: &Matcher, table: &ConditionTable) -> String {
    let mut parts = vec![path(&m.path)];
    if !m.hosts.is_empty() {
        parts.push(any(m.hosts.iter().map(host).collect()));
    }
    if let Some(methods) = &m.methods {
        let methods: Vec<String> = methods
            .iter()
            .map(|x| format!("http.method == r#\"{}\"#", x.as_str()))
            .collect();
        parts.push(any(methods));
    }
    parts.extend(table.predicates(&m.conditions));
    parts.join(" && ")
}

fn host(h: &HostPattern) -> String {
    match h {
        HostPattern::Exact(n) => format!("http.host == r#\"{n}\"#"),
        HostPattern::Wildcard(suffix) => format!("http.host =^ r#\"{suffix}\"#"),
    }
}

fn any(alternatives: Vec<String>) -> String {
    if alternatives.len() == 1 {
        alternatives.into_iter().next().expect("one")
    } else {
        format!("({})", alternatives.join(" || "))
    }
}

fn path(p: &PathPattern) -> String {
    let literal: Option<String> = p
        .segments
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => Some(format!("/{l}")),
            Segment::Param(_) => None,
        })
        .collect();
    match (literal, p.prefix) {
        (Some(l), false) if l.is_empty() => "http.path == r#\"/\"#".to_string(),
        (Some(l), false) => format!("http.path == r#\"{l}\"#"),
        (Some(l), true) if l.is_empty() => "http.path ^= r#\"/\"#".to_string(),
        (Some(l), true) => format!("(http.path == r#\"{l}\"# || http.path ^= r#\"{l}/\"#)"),
        (None, prefix) => {
            let mut re = String::from("^");
            for s in &p.segments {
                re.push('/');
                match s {
                    Segment::Literal(l) => re.push_str(&regex_escape(l)),
                    Segment::Param(_) => re.push_str("[^/]+"),
                }
            }
            re.push_str(if prefix { "(/.*)?$" } else { "$" });
            format!("http.path ~ r#\"{re}\"#")
        }
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
