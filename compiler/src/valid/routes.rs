//! Finds routes that can never match: duplicates and shadowed routes.

use crate::diag::{Diagnostic, Diagnostics};
use crate::dispatch::relations::{takes_every_host_of, takes_method};
use crate::dispatch::MethodSet;
use crate::ir::HostPattern;
use crate::resolve::ResolvedRoute;
use std::collections::HashMap;

/// Reports duplicate and shadowed routes, naming the routes that take their
/// requests. `routes` must be in canonical order ([`super::canonical_order`]):
/// there, of two routes that could take the same request, the earlier wins.
pub fn check_routes(routes: &[ResolvedRoute<'_>], diags: &mut Diagnostics) {
    // Only routes with the same path shape can cover one another entirely:
    // any other pair differs in a literal segment or a precedence that wins.
    let mut by_shape: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in routes.iter().enumerate() {
        let earlier = by_shape.entry(r.route.matcher.path.shape()).or_default();
        check_one(routes, earlier, i, diags);
        earlier.push(i);
    }
}

/// Checks route `i` against the earlier routes of the same shape. It can
/// never match when, for each of its hosts (or "any host") and each of its
/// methods (or "any method", including unlisted ones), some earlier route
/// takes that host and method and every request meeting `i`'s conditions
/// (so a route with conditions never shadows one without).
fn check_one(routes: &[ResolvedRoute<'_>], earlier: &[usize], i: usize, diags: &mut Diagnostics) {
    let b = &routes[i];
    let bm = &b.route.matcher;
    for &j in earlier {
        let a = &routes[j];
        let am = &a.route.matcher;
        if am.hosts == bm.hosts && am.methods == bm.methods && am.conditions == bm.conditions {
            diags.push(
                Diagnostic::error(
                    "duplicate-route",
                    b.path_span,
                    format!(
                        "route `{}` matches exactly what route `{}` matches, so it can never be reached",
                        b.route.id, a.route.id
                    ),
                )
                .with_related(a.path_span, format!("`{}` is listed first and wins", a.route.id))
                .with_help("remove one of them, or give them different methods, hosts or `match` conditions"),
            );
            return;
        }
    }
    let hosts: Vec<Option<&HostPattern>> = if bm.hosts.is_empty() {
        vec![None]
    } else {
        bm.hosts.iter().map(Some).collect()
    };
    // Each listed method, and "other" (outside `Method::ALL`) for a route
    // without `methods`: only such a route takes those.
    let methods: Vec<_> = MethodSet::of(bm).slots().collect();
    if methods.is_empty() {
        return; // a route that takes no method is reported where it is decoded
    }
    let mut covering: Vec<usize> = Vec::new();
    for host in &hosts {
        for &method in &methods {
            let winner = earlier.iter().copied().find(|&j| {
                let am = &routes[j].route.matcher;
                // A route with conditions takes only the requests meeting
                // them: it covers this one only if these imply its own.
                takes_every_host_of(am, *host)
                    && takes_method(am, method)
                    && am.conditions.implied_by(&bm.conditions)
            });
            match winner {
                Some(j) if !covering.contains(&j) => covering.push(j),
                Some(_) => {}
                None => return, // some request reaches this route
            }
        }
    }
    covering.sort_unstable();
    let names: Vec<String> = covering
        .iter()
        .map(|k| format!("`{}`", routes[*k].route.id))
        .collect();
    let mut d = Diagnostic::error(
        "shadowed-route",
        b.path_span,
        format!(
            "route `{}` can never match: every request it takes goes to {} first",
            b.route.id,
            names.join(" and ")
        ),
    )
    .with_help("narrow the earlier route (methods, hosts, `match`), or remove this one");
    for k in &covering {
        d = d.with_related(
            routes[*k].path_span,
            format!("`{}` wins here", routes[*k].route.id),
        );
    }
    diags.push(d);
}
