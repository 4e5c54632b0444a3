//! The dispatch view: the IR's routes as targets that choose by host first
//! (NGINX server blocks, Envoy virtual hosts) need them. Like naga's `proc`,
//! a projection of the IR computed on demand, never serialized: the IR's
//! single first-match list ([`crate::ir::Ir::routes`]) stays the meaning,
//! and this view is provably the same answer, arranged per host.
//!
//! # Host classes
//!
//! [`DispatchView::classes`] holds, in precedence order:
//!
//! 1. one class per distinct exact host some route names (`api.example.com`);
//! 2. one per wildcard host pattern (`*.example.com`), more specific
//!    (longer suffix) first;
//! 3. the default class, last, for requests whose host no other class takes
//!    (and requests without a host): host-less routes only.
//!
//! A route belongs to a class when one of its host patterns takes every host
//! of that class: host-less routes belong to every class, and a wildcard
//! route is copied into the exact and narrower wildcard classes it covers.
//! Within a class, routes keep their IR order ([`HostClass::routes`]).
//!
//! **The selection rule a target must implement:** lower-case the request
//! host and drop its port; the exact class of that name if there is one;
//! else the wildcard class with the longest suffix that matches it (at least
//! one label before the suffix); else the default class. This picks the
//! class holding exactly the routes whose [`crate::ir::HostPattern`]s take
//! the host, in IR order, so "select the class, then the first route of its
//! list that takes path and method" is the IR's first match.
//! [`DispatchView::class_for`] implements it.
//!
//! # Path groups
//!
//! [`HostClass::paths`] arranges a class by path pattern, in precedence
//! order: **the first group whose pattern takes the request path is the only
//! one to consult**. Each group's [`PathGroup::methods`] already lists every
//! route of the class that takes its paths, including routes of broader
//! patterns (a `/pets/*` route in the `/pets/{id}` group), so a target never
//! falls through from one group to another. Where two patterns overlap
//! without one covering the other (`/{kind}/new` and `/pets/*`), the view
//! adds a group for their intersection (`/pets/new`, marked
//! [`PathGroup::synthesized`]), which is more specific than both and so
//! comes first.
//!
//! In a group, a request method goes to the route of the first
//! [`MethodGroup`] holding it whose conditions the request meets; a method
//! in none gets 405 with an `allow` header of [`PathGroup::allow`] (listed
//! methods, [`Method::ALL`] order). A CORS preflight (`OPTIONS` with
//! `origin` and an `access-control-request-method` that is a method token)
//! is answered by the `cors` of the route in [`PathGroup::preflight`]
//! holding the asked method; when none holds it, the request is an
//! ordinary `OPTIONS` request.
//!
//! # Conditions
//!
//! A route with `match` conditions ([`crate::ir::Conditions`]) takes only
//! the requests meeting them; one failing them is routed as if the route
//! did not exist. Its [`MethodGroup`] is marked
//! [`MethodGroup::conditional`] and does not take its methods from the
//! groups after it: the method sets are then disjoint only among the
//! unconditional groups. The first group holding the method whose
//! conditions hold wins (the IR order already puts routes with more
//! conditions first where paths tie). When none does, the request gets 405
//! with the methods of the groups whose conditions hold, or 404 when no
//! route of the path group holds: exactly the IR's answer with the failing
//! routes removed. A group's first match stays final: every route taking
//! the group's paths is in it. Without conditional groups (every spec that
//! does not use `match`), [`PathGroup::allow`] is the whole answer and the
//! sets are disjoint, as described above; targets that do not implement
//! conditions refuse specs with them ([`crate::target::Feature`]).

pub mod conditions;
mod index;
mod methods;
pub mod relations;
#[cfg(test)]
mod tests;

pub use methods::MethodSet;

use crate::ir::{HostPattern, Ir, Method, PathPattern, PolicyKind, Segment, ValidIr};
use index::LeadIndex;
use rustc_hash::FxHashMap;
use std::collections::HashMap;

/// A route: its index in [`crate::ir::Ir::routes`].
pub type RouteIx = usize;

/// The routes per host class; see the module docs.
#[derive(Clone, Debug)]
pub struct DispatchView {
    classes: Vec<HostClass>,
    /// Lower-case exact host -> class index.
    exact: HashMap<String, usize>,
    /// Wildcard suffix with its leading dot (`.example.com`) -> class index.
    wildcard: HashMap<String, usize>,
}

/// The routes one set of hosts sees.
#[derive(Clone, Debug)]
pub struct HostClass {
    /// The class's host pattern; `None` for the default class.
    pub host: Option<HostPattern>,
    /// Its first-match list: the IR's routes that take every host of the
    /// class, in IR order.
    pub routes: Vec<RouteIx>,
    /// Path groups, in precedence order: the first whose pattern takes the
    /// path is the one.
    pub paths: Vec<PathGroup>,
    /// Groups by first literal segment, for [`HostClass::path_group`].
    /// FxHash, though a client's path is looked up: only the config inserts
    /// keys, so a chosen path can at worst probe the table's own clusters,
    /// and SipHash cost 120 of the lookup's 670 instructions per
    /// request (bench/instructions.sh).
    by_first: FxHashMap<String, Vec<u32>>,
    /// Groups that can take any first segment (a param first, `/`, `/*`).
    any_first: Vec<u32>,
}

/// The routes that take one path pattern's paths, per method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathGroup {
    /// The pattern; its param names are those of the first route having it
    /// (each route binds params from its own [`crate::ir::Matcher::path`]).
    pub pattern: PathPattern,
    /// True when no route has this pattern: it is the intersection of
    /// overlapping patterns, present so groups never fall through.
    pub synthesized: bool,
    /// Method to route, in first-match order; the sets of unconditional
    /// groups are disjoint (a conditional group may share its methods
    /// with groups after it).
    pub methods: Vec<MethodGroup>,
    /// `Some(methods)` when some method is taken by no unconditional route:
    /// those get 405 with `allow: <methods>` (with conditional groups, the
    /// methods of the groups whose conditions hold). `None` when every
    /// method is routed whatever the conditions.
    pub allow: Option<MethodSet>,
    /// The methods a CORS preflight may ask about, with the route whose
    /// `cors` answers it: the [`PathGroup::methods`] entries whose route's
    /// chain has `cors`.
    pub preflight: Vec<MethodGroup>,
}

/// These methods go to this route (when `conditional`, only for requests
/// meeting its conditions).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MethodGroup {
    pub methods: MethodSet,
    pub route: RouteIx,
    /// The route has `match` conditions: a request failing them passes on
    /// to the next group holding its method.
    pub conditional: bool,
}

/// What a request is dispatched to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Dispatch {
    Route(RouteIx),
    /// Routes take the host and path but not the method: 405, with this
    /// `allow`.
    MethodNotAllowed(MethodSet),
    /// 404 `{"error":"no route"}`.
    NotFound,
}

impl DispatchView {
    /// Projects a valid IR.
    pub fn new(ir: &ValidIr) -> DispatchView {
        DispatchView::of(ir.ir())
    }

    /// Whether the views of `a` and `b` are the same: a view reads each
    /// route's matcher and whether its chain has `cors`, in route order,
    /// and nothing else (keep this in step with [`DispatchView::of`]). A
    /// reload that changes policies, upstreams or consumers but no route's
    /// match can keep the view it has instead of building it again (at
    /// 5,000 routes, a fifth of a reference gateway's load).
    pub fn same_input(a: &Ir, b: &Ir) -> bool {
        let cors = |r: &crate::ir::Route| r.policy_id(PolicyKind::Cors).is_some();
        a.routes.len() == b.routes.len()
            && a.routes
                .iter()
                .zip(&b.routes)
                // A route kept by a reload is the same allocation.
                .all(|(x, y)| {
                    std::sync::Arc::ptr_eq(x, y) || (x.matcher == y.matcher && cors(x) == cors(y))
                })
    }

    fn of(ir: &Ir) -> DispatchView {
        let mut exact: Vec<&HostPattern> = Vec::new();
        let mut wild: Vec<&HostPattern> = Vec::new();
        for r in &ir.routes {
            for h in &r.matcher.hosts {
                match h {
                    HostPattern::Exact(_) => exact.push(h),
                    HostPattern::Wildcard(_) => wild.push(h),
                }
            }
        }
        exact.sort();
        exact.dedup();
        wild.sort();
        wild.dedup();
        // More specific (longer suffix) first; ties by name.
        wild.sort_by_key(|h| match h {
            HostPattern::Wildcard(s) => std::cmp::Reverse(s.len()),
            HostPattern::Exact(_) => std::cmp::Reverse(0),
        });
        let hosts: Vec<Option<&HostPattern>> = exact
            .into_iter()
            .chain(wild)
            .map(Some)
            .chain([None])
            .collect();
        let has_cors: Vec<bool> = ir
            .routes
            .iter()
            .map(|r| r.policy_id(PolicyKind::Cors).is_some())
            .collect();
        let mut view = DispatchView {
            classes: Vec::with_capacity(hosts.len()),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        };
        for host in hosts {
            let routes: Vec<RouteIx> = match host {
                Some(h) => ir
                    .routes
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.matcher.takes_every_host_of(Some(h)))
                    .map(|(i, _)| i)
                    .collect(),
                None => ir
                    .routes
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.matcher.hosts.is_empty())
                    .map(|(i, _)| i)
                    .collect(),
            };
            let at = view.classes.len();
            match host {
                Some(HostPattern::Exact(h)) => {
                    view.exact.insert(h.clone(), at);
                }
                Some(HostPattern::Wildcard(s)) => {
                    view.wildcard.insert(s.clone(), at);
                }
                None => {}
            }
            view.classes
                .push(HostClass::new(ir, host.cloned(), routes, &has_cors));
        }
        view
    }

    /// Every class, in precedence order; the default class is last.
    pub fn classes(&self) -> &[HostClass] {
        &self.classes
    }

    /// The default class: host-less routes only.
    pub fn default_class(&self) -> &HostClass {
        self.classes
            .last()
            .expect("the default class is always there")
    }

    /// The class a request host selects (the rule in the module docs).
    /// `host` is as received (`Host` or `:authority`): any case, maybe a
    /// port. Allocates only for hosts over 255 bytes.
    pub fn class_for(&self, host: Option<&str>) -> &HostClass {
        let Some(host) = host else {
            return self.default_class();
        };
        if self.classes.len() == 1 {
            return self.default_class(); // no route names a host
        }
        let host = crate::ir::matcher::host_without_port(host);
        let mut buf = [0u8; 255];
        let long;
        let lower: &str = if host.len() <= buf.len() {
            let b = &mut buf[..host.len()];
            b.copy_from_slice(host.as_bytes());
            b.make_ascii_lowercase();
            // Lower-casing ASCII bytes keeps UTF-8 valid.
            std::str::from_utf8(b).unwrap_or("")
        } else {
            long = host.to_ascii_lowercase();
            &long
        };
        if let Some(&i) = self.exact.get(lower) {
            return &self.classes[i];
        }
        if !self.wildcard.is_empty() {
            // Suffixes at each dot after the first label, longest first.
            for (at, _) in lower.match_indices('.').filter(|(at, _)| *at > 0) {
                if let Some(&i) = self.wildcard.get(&lower[at..]) {
                    return &self.classes[i];
                }
            }
        }
        self.default_class()
    }

    /// Dispatches a request that meets no route's conditions (as one
    /// without headers or query would): host as received, a normalized
    /// path, and the method (`None`: one outside [`Method::ALL`]).
    pub fn dispatch(&self, host: Option<&str>, path: &str, method: Option<Method>) -> Dispatch {
        self.dispatch_with(host, path, method, |_| false)
    }

    /// Dispatches a request; `holds(route)` says whether the request meets
    /// that route's conditions (asked only of routes that have some).
    pub fn dispatch_with(
        &self,
        host: Option<&str>,
        path: &str,
        method: Option<Method>,
        holds: impl Fn(RouteIx) -> bool,
    ) -> Dispatch {
        match self.class_for(host).path_group(path) {
            Some(g) => g.dispatch_with(method, holds),
            None => Dispatch::NotFound,
        }
    }

    /// The route whose `cors` answers a preflight asking about `asked`, if
    /// any; `None` means the request is an ordinary `OPTIONS` request.
    /// For a request that meets no route's conditions; see
    /// [`DispatchView::preflight_with`].
    pub fn preflight(
        &self,
        host: Option<&str>,
        path: &str,
        asked: Option<Method>,
    ) -> Option<RouteIx> {
        self.preflight_with(host, path, asked, |_| false)
    }

    /// [`DispatchView::preflight`] with `holds` as in
    /// [`DispatchView::dispatch_with`]: the conditions are checked against
    /// the preflight request itself.
    pub fn preflight_with(
        &self,
        host: Option<&str>,
        path: &str,
        asked: Option<Method>,
        holds: impl Fn(RouteIx) -> bool,
    ) -> Option<RouteIx> {
        self.class_for(host)
            .path_group(path)?
            .preflight_with(asked, holds)
    }
}

impl HostClass {
    fn new(
        ir: &Ir,
        host: Option<HostPattern>,
        routes: Vec<RouteIx>,
        has_cors: &[bool],
    ) -> HostClass {
        let patterns = closure(ir, &routes);
        // Stable: among equal precedence, groups keep IR order (they never
        // share a path: their intersection would be a group before both).
        // Cached: a prefix's precedence allocates its literal prefix.
        let mut order: Vec<usize> = (0..patterns.len()).collect();
        order.sort_by_cached_key(|&i| std::cmp::Reverse(patterns[i].0.precedence()));
        // The class's routes by leading literals, to find each group's
        // covering routes without scanning the whole class.
        let mut index = LeadIndex::default();
        for &r in &routes {
            index.push(&ir.routes[r].matcher.path, r);
        }
        let mut class = HostClass {
            host,
            routes,
            paths: Vec::with_capacity(order.len()),
            by_first: FxHashMap::default(),
            any_first: Vec::new(),
        };
        for i in order {
            let (pattern, synthesized) = &patterns[i];
            let candidates = index.covering(pattern);
            let group = PathGroup::new(ir, pattern.clone(), *synthesized, candidates, has_cors);
            let at = class.paths.len() as u32;
            match first_literal(pattern) {
                Some(l) => class.by_first.entry(l.to_string()).or_default().push(at),
                None => class.any_first.push(at),
            }
            class.paths.push(group);
        }
        class
    }

    /// The group a normalized request path goes to: the first (in
    /// precedence order) whose pattern takes it. Allocates nothing.
    pub fn path_group(&self, path: &str) -> Option<&PathGroup> {
        let rest = path.get(1..).unwrap_or("");
        // A byte loop, not `split('/')`: see `PathPattern::is_match`.
        let first = &rest[..rest.bytes().position(|b| b == b'/').unwrap_or(rest.len())];
        let bucket = self.by_first.get(first).map_or(&[][..], Vec::as_slice);
        // Both lists are in precedence order: merge them.
        index::merge(bucket.iter(), self.any_first.iter())
            .map(|&i| &self.paths[i as usize])
            .find(|g| g.pattern.is_match(path))
    }
}

impl PathGroup {
    /// The group of `pattern`; `candidates`, in IR order, must include
    /// every route of the class that takes all its paths (others are
    /// skipped).
    fn new(
        ir: &Ir,
        pattern: PathPattern,
        synthesized: bool,
        candidates: impl Iterator<Item = RouteIx>,
        has_cors: &[bool],
    ) -> PathGroup {
        let mut left = MethodSet::ANY;
        let mut taken = MethodSet::EMPTY;
        let mut methods = Vec::new();
        for r in candidates {
            let m = &ir.routes[r].matcher;
            if !relations::path_within(&pattern, &m.path) {
                continue;
            }
            let take = MethodSet::of(m).intersection(left);
            if !take.is_empty() {
                let conditional = !m.conditions.is_empty();
                methods.push(MethodGroup {
                    methods: take,
                    route: r,
                    conditional,
                });
                taken = taken.union(take);
                // A conditional route leaves its methods to the routes after
                // it, for the requests failing its conditions.
                if !conditional {
                    left = left.difference(take);
                }
            }
            if left.is_empty() {
                break;
            }
        }
        let allow = (!left.is_empty()).then(|| taken.methods().map(Some).collect::<MethodSet>());
        let preflight = methods
            .iter()
            .filter(|g| has_cors[g.route])
            .copied()
            .collect();
        PathGroup {
            pattern,
            synthesized,
            methods,
            allow,
            preflight,
        }
    }

    /// The route for a method, or 405 with the allow set, for a request
    /// that meets no route's conditions.
    pub fn dispatch(&self, method: Option<Method>) -> Dispatch {
        self.dispatch_with(method, |_| false)
    }

    /// The route for a method, or 405 with the allow set (404 when the
    /// request meets the conditions of no route of the group); `holds` as
    /// in [`DispatchView::dispatch_with`].
    pub fn dispatch_with(
        &self,
        method: Option<Method>,
        holds: impl Fn(RouteIx) -> bool,
    ) -> Dispatch {
        let mut allowed = MethodSet::EMPTY;
        let mut conditional = false;
        for g in &self.methods {
            let meets = !g.conditional || holds(g.route);
            if meets && g.methods.contains(method) {
                return Dispatch::Route(g.route);
            }
            conditional |= g.conditional;
            if meets {
                allowed = allowed.union(g.methods);
            }
        }
        if !conditional {
            return Dispatch::MethodNotAllowed(self.allow.unwrap_or_default());
        }
        match allowed.methods().map(Some).collect::<MethodSet>() {
            _ if allowed.is_empty() => Dispatch::NotFound,
            allow => Dispatch::MethodNotAllowed(allow),
        }
    }

    /// The route whose `cors` answers a preflight asking about `asked`, for
    /// a request that meets no route's conditions.
    pub fn preflight_for(&self, asked: Option<Method>) -> Option<RouteIx> {
        self.preflight_with(asked, |_| false)
    }

    /// The route whose `cors` answers a preflight asking about `asked`: the
    /// route the asked method goes to, when its chain has `cors`.
    pub fn preflight_with(
        &self,
        asked: Option<Method>,
        holds: impl Fn(RouteIx) -> bool,
    ) -> Option<RouteIx> {
        let g = self
            .methods
            .iter()
            .find(|g| g.methods.contains(asked) && (!g.conditional || holds(g.route)))?;
        self.preflight
            .iter()
            .any(|p| p.route == g.route)
            .then_some(g.route)
    }
}

fn first_literal(p: &PathPattern) -> Option<&str> {
    match p.segments.first() {
        Some(Segment::Literal(l)) => Some(l),
        _ => None,
    }
}

/// Upper bound on the groups synthesized per class, so that templates
/// overlapping in many ways cannot take unbounded time. Past it the view
/// stops adding intersections; see [`closure`].
const MAX_SYNTHESIZED: usize = 4096;

/// The distinct path patterns of a class's routes (by shape, first route's
/// names, in IR order), then the intersections of patterns that overlap
/// without one covering the other, until no new one appears.
fn closure(ir: &Ir, routes: &[RouteIx]) -> Vec<(PathPattern, bool)> {
    // FxHash: keyed by the config's own patterns, built and dropped here.
    let mut shapes: rustc_hash::FxHashSet<PathPattern> = Default::default();
    let mut out: Vec<(PathPattern, bool)> = Vec::new();
    // Positions in `out`, growing with it.
    let mut index = LeadIndex::default();
    let mut add = |p: PathPattern,
                   synthesized: bool,
                   out: &mut Vec<(PathPattern, bool)>,
                   index: &mut LeadIndex| {
        if !shapes.insert(erase(&p)) {
            return;
        }
        index.push(&p, out.len());
        out.push((p, synthesized));
    };
    for &r in routes {
        let p = ir.routes[r].matcher.path.clone();
        add(p, false, &mut out, &mut index);
    }
    let mut synthesized = 0;
    let mut k = 0;
    while k < out.len() {
        // Earlier patterns that could overlap pattern k, in order: skipping
        // the others skips only pairs that add nothing.
        let earlier: Vec<usize> = match index.overlapping(&out[k].0) {
            Some(js) => js.take_while(|&j| j < k).collect(),
            None => (0..k).collect(),
        };
        for j in earlier {
            if synthesized >= MAX_SYNTHESIZED {
                break;
            }
            let (a, b) = (&out[k].0, &out[j].0);
            if relations::path_within(a, b) || relations::path_within(b, a) {
                continue;
            }
            if let Some(i) = relations::path_intersection(a, b) {
                let before = out.len();
                add(i, true, &mut out, &mut index);
                synthesized += out.len() - before;
            }
        }
        k += 1;
    }
    out
}

/// The pattern with param names erased: equal for patterns taking the same
/// paths.
fn erase(p: &PathPattern) -> PathPattern {
    PathPattern {
        segments: p
            .segments
            .iter()
            .map(|s| match s {
                Segment::Param(_) => Segment::Param(Default::default()),
                l => l.clone(),
            })
            .collect(),
        prefix: p.prefix,
    }
}
