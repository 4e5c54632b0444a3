//! The canonical route order of the IR.
//!
//! Match order is path precedence first; among equally specific paths the
//! route with more header conditions wins, then the one with more query
//! conditions, then the one listed first, but only where two routes can
//! take the same request.
//! Routes that can never compete are ordered by path shape and id instead of
//! by listing, so moving an api to another file or reordering routes that do
//! not overlap changes neither the IR nor its hash.

use crate::ir::{PathKind, Segment};
use crate::resolve::{ResolvedRoute, RouteParts};
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

fn group_key(route: &RouteParts, depth: &LiteralDepth) -> GroupKey {
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

    // Listing order is kept within a group: indices are pushed in listing
    // order, and a group's key starts with its precedence, so the groups
    // come out in precedence order without sorting the routes themselves.
    // Only indices move until the end: routes are large, and a second
    // collection of them would double the compiler's peak memory.
    let mut groups: BTreeMap<GroupKey, Vec<usize>> = BTreeMap::new();
    for (i, r) in routes.iter().enumerate() {
        groups
            .entry(group_key(&r.route, &depth))
            .or_default()
            .push(i);
    }
    let mut order = Vec::with_capacity(routes.len());
    for (_, group) in groups {
        order_group(routes, group, &mut order);
    }
    permute(routes, order);
}

/// Puts `items[order[k]]` at position `k`, in place (cycle by cycle).
fn permute<T>(items: &mut [T], mut order: Vec<usize>) {
    for start in 0..order.len() {
        let mut k = start;
        // Follow the cycle through `start`, marking each visited slot as
        // done by pointing it at itself.
        while order[k] != start {
            let from = order[k];
            items.swap(k, from);
            order[k] = k;
            k = from;
        }
        order[k] = k;
    }
}

/// Kahn's algorithm over "wins and overlaps" edges (more conditions, then
/// listed before), taking the smallest (shape, id) among the routes free to
/// go next; appends the group's route indices to `order` in match order.
fn order_group(routes: &[ResolvedRoute<'_>], group: Vec<usize>, order: &mut Vec<usize>) {
    let n = group.len();
    if n == 1 {
        order.extend(group);
        return;
    }
    let route = |i: usize| &routes[group[i]].route;
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting = vec![0usize; n];
    let conditions = |i: usize| route(i).matcher.conditions.precedence();
    for i in 0..n {
        for j in i + 1..n {
            if overlap(&route(i).matcher, &route(j).matcher) {
                // `i` is listed first: it wins unless `j` has more conditions.
                let (first, second) = if conditions(j) > conditions(i) {
                    (j, i)
                } else {
                    (i, j)
                };
                after[first].push(second);
                waiting[second] += 1;
            }
        }
    }
    let key = |i: usize| {
        let r = route(i);
        Reverse((r.matcher.path.shape(), r.id.clone(), i))
    };
    let mut ready: BinaryHeap<_> = (0..n).filter(|i| waiting[*i] == 0).map(key).collect();
    while let Some(Reverse((_, _, i))) = ready.pop() {
        order.push(group[i]);
        for &j in &after[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.push(key(j));
            }
        }
    }
}
