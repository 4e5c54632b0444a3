//! Orders routes by match precedence and finds routes that can never match.

use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::{Method, PathKind};
use crate::resolve::ResolvedRoute;
use std::collections::{BTreeSet, HashMap};

/// Sorts `routes` into match order (see the IR docs) and reports duplicate
/// and shadowed routes, naming the route that takes their requests.
///
/// Ties in precedence keep spec order, since the first listed wins. Exact
/// and prefix routes of equal precedence but different paths never take the
/// same request, so they are ordered by path instead: reordering such routes
/// in the spec leaves the IR, and its hash, unchanged.
pub fn order_and_check_routes(routes: &mut Vec<ResolvedRoute<'_>>, diags: &mut Diagnostics) {
    let keys: Vec<_> = routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = &r.route.matcher.path;
            let shape = if p.kind() == PathKind::Template {
                String::new()
            } else {
                p.shape()
            };
            (std::cmp::Reverse(p.precedence()), shape, i)
        })
        .collect();
    let mut order: Vec<usize> = (0..routes.len()).collect();
    order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
    let mut slots: Vec<Option<ResolvedRoute<'_>>> = routes.drain(..).map(Some).collect();
    routes.extend(
        order
            .into_iter()
            .map(|i| slots[i].take().expect("each index once")),
    );

    // Only routes with the same path shape can cover one another entirely:
    // any other pair differs in a literal segment or a precedence that wins.
    let mut by_shape: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in routes.iter().enumerate() {
        let earlier = by_shape.entry(r.route.matcher.path.shape()).or_default();
        check_one(routes, earlier, i, diags);
        earlier.push(i);
    }
}

fn check_one(routes: &[ResolvedRoute<'_>], earlier: &[usize], i: usize, diags: &mut Diagnostics) {
    let b = &routes[i];
    let bm = &b.route.matcher;
    // Methods of earlier routes that take every host this one takes.
    let mut covered: BTreeSet<Method> = BTreeSet::new();
    let mut covering = Vec::new();
    for &j in earlier {
        let a = &routes[j];
        let am = &a.route.matcher;
        let hosts_covered = bm.hosts_within(am);
        if !hosts_covered {
            continue;
        }
        // Host lists are sets: their order means nothing.
        let same_hosts =
            am.hosts.iter().collect::<BTreeSet<_>>() == bm.hosts.iter().collect::<BTreeSet<_>>();
        if same_hosts && am.methods == bm.methods {
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
                .with_help("remove one of them, or give them different methods or hosts"),
            );
            return;
        }
        match &am.methods {
            None => covered.extend(Method::ALL),
            Some(ms) => covered.extend(ms.iter().copied()),
        }
        covering.push(j);
        let b_methods: BTreeSet<Method> = match &bm.methods {
            None => Method::ALL.into_iter().collect(),
            Some(ms) => ms.clone(),
        };
        if b_methods.is_subset(&covered) {
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
            .with_help("narrow the earlier route (methods, hosts), or remove this one");
            for k in &covering {
                d = d.with_related(
                    routes[*k].path_span,
                    format!("`{}` wins here", routes[*k].route.id),
                );
            }
            diags.push(d);
            return;
        }
    }
}
