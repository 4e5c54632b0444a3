//! The canonical route order of the IR.
//!
//! Match order is precedence first; among equally specific routes the one
//! listed first wins, but only where two routes can take the same request.
//! Routes that can never compete are ordered by path shape and id instead of
//! by listing, so moving an api to another file or reordering routes that do
//! not overlap changes neither the IR nor its hash.

use crate::ir::{Matcher, PathKind, Route, Segment};
use crate::resolve::ResolvedRoute;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// Routes that might overlap share a group; routes in different groups never
/// take the same request (or precedence already orders them).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    precedence: Reverse<(u8, usize)>,
    bucket: String,
}

fn group_key(route: &Route, wildcard_lengths: &[(usize, usize)]) -> GroupKey {
    let p = &route.matcher.path;
    let precedence = Reverse(p.precedence());
    let bucket = match p.kind() {
        // Equal precedence and different shapes never overlap for these.
        PathKind::Exact | PathKind::Prefix => p.shape(),
        PathKind::Template => {
            let len = p.segments.len();
            let first = match p.segments.first() {
                Some(Segment::Literal(l))
                    if !wildcard_lengths.contains(&(p.literal_count(), len)) =>
                {
                    l.as_str()
                }
                // A template starting with a param may meet any other of its length.
                _ => "{}",
            };
            format!("{len}/{first}")
        }
    };
    GroupKey { precedence, bucket }
}

fn paths_overlap(a: &Matcher, b: &Matcher) -> bool {
    let (pa, pb) = (&a.path, &b.path);
    if pa.kind() != PathKind::Template {
        return pa.shape() == pb.shape();
    }
    pa.segments.len() == pb.segments.len()
        && pa.segments.iter().zip(&pb.segments).all(|pair| match pair {
            (Segment::Literal(x), Segment::Literal(y)) => x == y,
            _ => true,
        })
}

/// Whether some request could match both.
pub fn overlap(a: &Matcher, b: &Matcher) -> bool {
    let methods = match (&a.methods, &b.methods) {
        (Some(x), Some(y)) => !x.is_disjoint(y),
        _ => true,
    };
    methods && a.hosts_overlap(b) && paths_overlap(a, b)
}

/// Reorders routes, given in listing order, into the canonical match order:
/// the only ordering of routes there is. Routes that overlap keep their
/// listing order, so in the result an earlier route wins over a later one
/// wherever both could take a request.
pub fn canonical_order(routes: &mut Vec<ResolvedRoute<'_>>) {
    let mut wildcard_lengths: Vec<(usize, usize)> = routes
        .iter()
        .map(|r| &r.route.matcher.path)
        .filter(|p| {
            p.kind() == PathKind::Template && matches!(p.segments.first(), Some(Segment::Param(_)))
        })
        .map(|p| (p.literal_count(), p.segments.len()))
        .collect();
    wildcard_lengths.sort_unstable();
    wildcard_lengths.dedup();

    // Listing order is kept within a group: a stable sort on precedence.
    let mut decl: Vec<(usize, ResolvedRoute<'_>)> = routes.drain(..).enumerate().collect();
    decl.sort_by_key(|(i, r)| (Reverse(r.route.matcher.path.precedence()), *i));
    let mut groups: BTreeMap<GroupKey, Vec<ResolvedRoute<'_>>> = BTreeMap::new();
    for (_, r) in decl {
        groups
            .entry(group_key(&r.route, &wildcard_lengths))
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
