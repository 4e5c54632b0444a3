//! Routes for Kong's expressions router.
//!
//! The spec's dispatch is first match in the IR's route order; Kong's
//! traditional router instead ranks routes by how many conditions they
//! have before it looks at `regex_priority`, so no choice of
//! `regex_priority` keeps a method-less route ahead of a later one with
//! methods. The expressions router evaluates the matching routes by
//! `priority` only (highest first): each route gets `priority = count -
//! index`, so the first matching gatefold route wins.

use crate::model::{Route, ServiceRef};
use gatefold_compiler::ir::lowered::ProxyPlan;
use gatefold_compiler::ir::{HostPattern, Matcher, Segment, ValidIr};

/// A route per IR route, in IR order.
pub fn routes(ir: &ValidIr) -> Vec<Route> {
    let count = ir.routes.len() as u64;
    ir.routes
        .iter()
        .enumerate()
        .map(|(i, r)| Route {
            name: route_name(&r.id),
            expression: expression(&r.matcher),
            priority: count - i as u64,
            protocols: vec!["http", "https"],
            strip_path: false,
            preserve_host: false,
            service: match &r.lowered.proxy {
                Some(ProxyPlan::Single(d)) => Some(ServiceRef {
                    name: crate::service_name(ir, d),
                }),
                // traffic-split is refused for Kong.
                _ => r.upstream.as_ref().map(|u| ServiceRef {
                    name: u.to_string(),
                }),
            },
            tags: vec![crate::tag(format_args!("route/{}", r.id))],
        })
        .collect()
}

/// The Kong name of a gatefold route: `API.ROUTE`.
pub fn route_name(id: &gatefold_compiler::ir::RouteId) -> String {
    id.to_string()
}

/// An ATC expression: path, and hosts and methods when the route has them.
/// Strings are raw literals (`r#"..."#`): path literals and host names
/// hold neither `"` nor `#`, so nothing needs escaping.
pub fn expression(m: &Matcher) -> String {
    let mut parts = vec![path(m)];
    if !m.hosts.is_empty() {
        let hosts: Vec<String> = m
            .hosts
            .iter()
            .map(|h| match h {
                HostPattern::Exact(n) => format!("http.host == r#\"{n}\"#"),
                HostPattern::Wildcard(suffix) => format!("http.host =^ r#\"{suffix}\"#"),
            })
            .collect();
        parts.push(any(hosts));
    }
    if let Some(methods) = &m.methods {
        let methods: Vec<String> = methods
            .iter()
            .map(|x| format!("http.method == r#\"{}\"#", x.as_str()))
            .collect();
        parts.push(any(methods));
    }
    parts.join(" && ")
}

fn any(alternatives: Vec<String>) -> String {
    if alternatives.len() == 1 {
        alternatives.into_iter().next().expect("one")
    } else {
        format!("({})", alternatives.join(" || "))
    }
}

fn path(m: &Matcher) -> String {
    let p = &m.path;
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
