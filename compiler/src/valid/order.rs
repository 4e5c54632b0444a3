//! The canonical route order of the IR.
//!
//! Match order is precedence first; among equally specific routes the one
//! listed first wins, but only where two routes can take the same request.
//! Routes that can never compete are ordered by path shape and id instead of
//! by listing, so moving an api to another file or reordering routes that do
//! not overlap changes neither the IR nor its hash.

use crate::ir::{PathKind, Route, Segment};
use crate::resolve::ResolvedRoute;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

/// Routes that might overlap share a group; routes in different groups never
/// take the same request (or precedence already orders them).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    precedence: Reverse<(u8, usize)>,
    bucket: String,
}

/// For templates: per (literal count, length), how many leading segments are
/// literal in every such route. Two routes of one class that differ there
/// can never take the same request, so they need not be compared.
type LiteralDepth = HashMap<(usize, usize), usize>;

fn template_class(p: &crate::ir::PathPattern) -> (usize, usize) {
    (p.literal_count(), p.segments.len())
}

fn leading_literals(p: &crate::ir::PathPattern) -> usize {
    p.segments
        .iter()
        .take_while(|s| matches!(s, Segment::Literal(_)))
        .count()
}

fn group_key(route: &Route, depth: &LiteralDepth) -> GroupKey {
    let p = &route.matcher.path;
    let precedence = Reverse(p.precedence());
    let bucket = match p.kind() {
        // Equal precedence and different shapes never overlap for these.
        PathKind::Exact | PathKind::Prefix => p.shape(),
        PathKind::Template => {
            let class = template_class(p);
            let m = depth.get(&class).copied().unwrap_or(0);
            let mut key = format!("{}/{}", class.0, class.1);
            for seg in &p.segments[..m] {
                if let Segment::Literal(l) = seg {
                    key.push('/');
                    key.push_str(l);
                }
            }
            key
        }
    };
    GroupKey { precedence, bucket }
}

/// Whether some request could match both (shared with the dispatch view).
pub use crate::dispatch::relations::matchers_overlap as overlap;

/// Reorders routes, given in listing order, into the canonical match order:
/// the only ordering of routes there is. Routes that overlap keep their
/// listing order, so in the result an earlier route wins over a later one
/// wherever both could take a request.
pub fn canonical_order(routes: &mut Vec<ResolvedRoute<'_>>) {
    let mut depth: LiteralDepth = HashMap::new();
    for p in routes.iter().map(|r| &r.route.matcher.path) {
        if p.kind() == PathKind::Template {
            let d = depth.entry(template_class(p)).or_insert(usize::MAX);
            *d = (*d).min(leading_literals(p));
        }
    }

    // Listing order is kept within a group: routes are pushed in listing
    // order, and a group's key starts with its precedence, so the groups
    // come out in precedence order without sorting the routes themselves.
    let mut groups: BTreeMap<GroupKey, Vec<ResolvedRoute<'_>>> = BTreeMap::new();
    for r in routes.drain(..) {
        groups
            .entry(group_key(&r.route, &depth))
            .or_default()
            .push(r);
    }
    for (_, group) in groups {
        routes.extend(order_group(group));
    }
}

/// Kahn's algorithm over "listed before and overlaps" edges, taking the
/// smallest (shape, id) among the routes free to go next.
fn order_group(group: Vec<ResolvedRoute<'_>>) -> Vec<ResolvedRoute<'_>> {
    let n = group.len();
    if n == 1 {
        return group;
    }
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting = vec![0usize; n];
    for i in 0..n {
        for j in i + 1..n {
            if overlap(&group[i].route.matcher, &group[j].route.matcher) {
                after[i].push(j);
                waiting[j] += 1;
            }
        }
    }
    let key = |i: usize| {
        let r = &group[i].route;
        Reverse((r.matcher.path.shape(), r.id.clone(), i))
    };
    let mut ready: BinaryHeap<_> = (0..n).filter(|i| waiting[*i] == 0).map(key).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse((_, _, i))) = ready.pop() {
        order.push(i);
        for &j in &after[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.push(key(j));
            }
        }
    }
    let mut slots: Vec<Option<ResolvedRoute<'_>>> = group.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i].take().expect("each route once"))
        .collect()
}
