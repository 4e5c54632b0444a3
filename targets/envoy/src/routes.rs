//! Virtual hosts and routes: the spec's precedence, reproduced with Envoy's
//! own order (a virtual host by domain: exact, then the longest suffix
//! wildcard, then `*`; then the first route that matches, in order).
//!
//! Each host class a spec names gets a virtual host holding, in IR
//! (precedence) order, every route that takes every host of the class;
//! `*` holds the routes without hosts. Each virtual host ends with a 405
//! entry per path shape (after every method route) and a 404 catch-all.
//! The entries are bucketed by the path's first segment in a match tree
//! ([`arrange`]), so a request is compared with its bucket's entries only,
//! not with every entry of a 10,000-route spec.

use crate::clusters::{cluster_name, mirror_cluster_name};
use crate::conditions::{ConditionTable, EnvoyConditions};
use crate::lua;
use crate::model::*;
use gatefold_compiler::diag::{Diagnostic, Diagnostics};
use gatefold_compiler::dispatch::{DispatchView, MethodGroup, MethodSet, PathGroup, RouteIx};
use gatefold_compiler::ir::policy::{HeaderTransform, IpFilter, Mock, MockBody, Policy, RetryOn};
use gatefold_compiler::ir::{
    Destination, Loc, Method, PathKind, PathPattern, PolicyId, ProxyPlan, Route as IrRoute,
    Segment, UpstreamPath, ValidIr,
};
use gatefold_compiler::target::span_of;
use std::collections::{BTreeMap, BTreeSet};

/// What every route build reads.
pub struct Ctx<'a> {
    pub ir: &'a ValidIr,
    /// The Lua filter is in the chain.
    pub lua: bool,
    /// The script filter is in the chain (some route has a script).
    pub scripts: bool,
    /// `response-headers` instances the virtual host carries for every
    /// route of it ([`hoist`]): route entries leave them out.
    pub hoisted: Vec<PolicyId>,
    /// The spec's `match` conditions, as the front filter marks them.
    pub conditions: &'a ConditionTable,
}

/// The virtual hosts of the gateway's route configuration, from the
/// dispatch view: a virtual host per host class (Envoy's domain choice is
/// the view's class rule); in each, per path group in order, the preflight
/// entries, a route entry per method group, then 405 for the methods no
/// route takes; a 404 catch-all last. A group takes every request for its
/// paths, so Envoy's first match is the IR's. The list is then bucketed by
/// first segment ([`arrange`]), which keeps that first match.
pub fn virtual_hosts(ctx: &Ctx) -> Vec<VirtualHost> {
    let ir = ctx.ir;
    let view = DispatchView::new(ir);
    let mut hosts: Vec<VirtualHost> = Vec::new();
    for class in view.classes() {
        let (name, domain) = match &class.host {
            Some(h) => (format!("host:{h}"), h.to_string()),
            None => ("any".to_string(), "*".to_string()),
        };
        let hoisted = hoist(ir, &class.routes);
        let ctx = Ctx {
            ir,
            lua: ctx.lua,
            scripts: ctx.scripts,
            hoisted: hoisted.iter().map(|(id, _)| id.clone()).collect(),
            conditions: ctx.conditions,
        };
        let mut vhost = VirtualHost {
            name,
            domains: vec![domain],
            routes: Vec::new(),
            matcher: None,
            response_headers_to_add: Vec::new(),
            response_headers_to_remove: Vec::new(),
        };
        let mut carried = Route::bare();
        for (_, t) in &hoisted {
            response_headers(t, &mut carried);
        }
        vhost.response_headers_to_add = carried.response_headers_to_add;
        vhost.response_headers_to_remove = carried.response_headers_to_remove;
        // The gateway's own answers that no route's policies reach (404,
        // 405, preflights) take the hoisted headers off again.
        let added: Vec<String> = vhost
            .response_headers_to_add
            .iter()
            .map(|h| h.header.key.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let finish = |mut r: Route| {
            if r.gateway_answer {
                r.response_headers_to_remove.extend(added.iter().cloned());
            }
            r
        };
        let groups: Vec<Vec<Route>> = class
            .paths
            .iter()
            .map(|g| {
                let mut out = Vec::new();
                group_routes(&ctx, g, &mut out);
                out.into_iter().map(finish).collect()
            })
            .collect();
        let not_found = finish(json_reply(
            "no-route",
            RouteMatch::prefix("/"),
            404,
            "no route",
            &[],
        ));
        (vhost.routes, vhost.matcher) = arrange(&class.paths, groups, not_found);
        hosts.push(vhost);
    }
    hosts
}

/// A virtual host's entries, `groups` (one list per path group, in
/// precedence order) then `last`, arranged so Envoy does not try them one
/// by one: a match tree on `:path` whose prefix map has a key `/seg` per
/// first literal segment of a group, each holding, in precedence order,
/// the groups with that first segment and the groups that can start with
/// any segment (a param first, `/`, `/*`), then `last`; a path no key
/// prefixes gets the latter only. This is the first match of the whole
/// list: a group with first segment `seg` takes only paths starting
/// `/seg` followed by `/`, `?` or nothing, and the longest key that
/// prefixes such a path is `/seg` itself (a segment has no `/`); a path
/// whose first segment has no key lands in a key that merely prefixes it
/// (`/pets` for `/petshop`), where no entry but the any-segment ones and
/// `last` can match, or in `on_no_match`. A lookup is one walk down a trie
/// plus the bucket's entries, instead of every entry of the virtual host.
/// Without any literal first segment the plain list is kept.
///
/// The same again one level down, in the same map: a key `/seg/sub` per
/// literal second segment, holding that pair's groups, the groups of `seg`
/// whose second segment can be anything, and the any-segment groups; the
/// longest key wins, so `/seg` keeps the paths no `/seg/sub` key covers,
/// and holds only the groups such paths can match. A key `/seg/sub` also
/// prefixes `/seg/subway`, where only groups that take any second segment
/// can match, and they are all in its bucket. Skipped for a first segment
/// whose copies would more than double its entries.
fn arrange(
    paths: &[PathGroup],
    groups: Vec<Vec<Route>>,
    last: Route,
) -> (Vec<Route>, Option<Matcher>) {
    let mut buckets: BTreeMap<&str, Vec<Route>> = paths
        .iter()
        .filter_map(|g| first_literal(&g.pattern))
        .map(|l| (l, Vec::new()))
        .collect();
    if buckets.is_empty() {
        let mut all: Vec<Route> = groups.into_iter().flatten().collect();
        all.push(last);
        return (all, None);
    }
    // Second level, per first segment `l`: a key `/l/m` per literal second
    // segment `m`, holding the groups `/l/m...`, those of `l` whose second
    // segment can be anything, and the any-segment groups; `/l` then keeps
    // only the latter two (a path a `/l/m...` group can match always has a
    // longer key). Worth it for `l` when the copies of the latter two do
    // not more than double its entries (an api of templates beside many
    // literal second segments keeps one level).
    let (mut pairs, mut l_any, mut any_n) = (BTreeMap::new(), BTreeMap::new(), 0usize);
    for (g, routes) in paths.iter().zip(&groups) {
        match (first_literal(&g.pattern), second_literal(&g.pattern)) {
            (Some(l), Some(m)) => *pairs.entry((l, m)).or_insert(0usize) += routes.len(),
            (Some(l), None) => *l_any.entry(l).or_insert(0usize) += routes.len(),
            (None, _) => any_n += routes.len(),
        }
    }
    let leveled: BTreeSet<&str> = buckets
        .keys()
        .copied()
        .filter(|l| {
            let shared = l_any.get(l).copied().unwrap_or(0) + any_n;
            let own: Vec<usize> = pairs
                .iter()
                .filter(|((f, _), _)| f == l)
                .map(|(_, n)| *n)
                .collect();
            let one = own.iter().sum::<usize>() + shared;
            let two = one + own.len() * shared;
            !own.is_empty() && two <= 2 * one
        })
        .collect();
    let mut seconds: BTreeMap<(&str, &str), Vec<Route>> = pairs
        .keys()
        .filter(|(l, _)| leveled.contains(l))
        .map(|k| (*k, Vec::new()))
        .collect();
    let mut any: Vec<Route> = Vec::new();
    for (g, routes) in paths.iter().zip(groups) {
        match (first_literal(&g.pattern), second_literal(&g.pattern)) {
            (Some(l), Some(m)) if leveled.contains(l) => {
                seconds.entry((l, m)).or_default().extend(routes);
            }
            (Some(l), Some(_)) => buckets.entry(l).or_default().extend(routes),
            (Some(l), None) => {
                for ((_, _), b) in seconds
                    .range_mut((l, "")..)
                    .take_while(|((f, _), _)| *f == l)
                {
                    b.extend(routes.iter().cloned());
                }
                buckets.entry(l).or_default().extend(routes);
            }
            (None, _) => {
                for b in buckets.values_mut().chain(seconds.values_mut()) {
                    b.extend(routes.iter().cloned());
                }
                any.extend(routes);
            }
        }
    }
    let list = |routes: Vec<Route>| OnMatch {
        action: NamedConfig {
            name: "routes".into(),
            typed_config: Any::RouteList { routes },
        },
    };
    // A path a key's entries all miss gets Envoy's own "no route" (NR),
    // which the local reply config answers as `last` would: one answer
    // instead of a copy of `last` per key (10,000 copies at 10,000 routes).
    any.push(last);
    // Envoy takes the longest key that prefixes the path: `/l/m` before
    // `/l` (and `/l/mm` before `/l/m` for `/l/mm`).
    let map = buckets
        .into_iter()
        .map(|(l, routes)| (format!("/{l}"), list(routes)))
        .chain(
            seconds
                .into_iter()
                .map(|((l, m), routes)| (format!("/{l}/{m}"), list(routes))),
        )
        .collect();
    let matcher = Matcher {
        matcher_tree: MatcherTree {
            input: NamedConfig {
                name: "path".into(),
                typed_config: Any::HeaderInput {
                    header_name: ":path".into(),
                },
            },
            prefix_match_map: MatchMap { map },
        },
        on_no_match: list(any),
    };
    (Vec::new(), Some(matcher))
}

fn first_literal(p: &PathPattern) -> Option<&str> {
    match p.segments.first() {
        Some(Segment::Literal(l)) => Some(l),
        _ => None,
    }
}

/// The second segment of a pattern whose first two are literal.
fn second_literal(p: &PathPattern) -> Option<&str> {
    match p.segments.get(..2) {
        Some([Segment::Literal(_), Segment::Literal(m)]) => Some(m),
        _ => None,
    }
}

/// The `response-headers` instances every route of a virtual host applies
/// first, when no route's own response headers (its other
/// `response-headers`, `mock` headers, `deprecation`) touch a header they
/// touch: the virtual host carries them once instead of every route entry
/// (a 10,000-route spec with a gateway-level header repeats it 20,000
/// times otherwise). With `most_specific_header_mutations_wins`, Envoy
/// applies them before the route's own, as the chain order does.
fn hoist<'a>(ir: &'a ValidIr, routes: &[RouteIx]) -> Vec<(PolicyId, &'a HeaderTransform)> {
    let transforms = |r: &'a IrRoute| -> Vec<(&'a PolicyId, &'a HeaderTransform)> {
        ir.chain(r)
            .filter_map(|(id, inst)| match &inst.policy {
                Policy::ResponseHeaders(t) => Some((id, t)),
                _ => None,
            })
            .collect()
    };
    let Some((first, rest)) = routes.split_first() else {
        return Vec::new();
    };
    let mut common = transforms(&ir.routes[*first]);
    for r in rest {
        let mine = transforms(&ir.routes[*r]);
        let same = common
            .iter()
            .zip(&mine)
            .take_while(|(a, b)| a.0 == b.0)
            .count();
        common.truncate(same);
        if common.is_empty() {
            return Vec::new();
        }
    }
    let touched = |t: &HeaderTransform| -> BTreeSet<String> {
        t.set
            .keys()
            .chain(t.add.keys())
            .map(|k| k.as_str().to_ascii_lowercase())
            .chain(t.remove.iter().map(|k| k.as_str().to_ascii_lowercase()))
            .collect()
    };
    let hoisted: BTreeSet<String> = common.iter().flat_map(|(_, t)| touched(t)).collect();
    let ids: BTreeSet<&PolicyId> = common.iter().map(|(id, _)| *id).collect();
    for r in routes {
        for (id, inst) in ir.chain(&ir.routes[*r]) {
            let theirs: BTreeSet<String> = match &inst.policy {
                Policy::ResponseHeaders(t) if !ids.contains(id) => touched(t),
                Policy::Mock(m) => {
                    let mut keys: BTreeSet<String> = m
                        .headers
                        .keys()
                        .map(|k| k.as_str().to_ascii_lowercase())
                        .collect();
                    keys.insert("content-type".into());
                    keys
                }
                Policy::Deprecation(_) => ["deprecation", "sunset", "link"]
                    .into_iter()
                    .map(String::from)
                    .collect(),
                Policy::Redirect(_) => BTreeSet::from(["location".to_string()]),
                _ => BTreeSet::new(),
            };
            if !theirs.is_disjoint(&hoisted) {
                return Vec::new();
            }
        }
    }
    common.into_iter().map(|(id, t)| (id.clone(), t)).collect()
}

fn group_routes(ctx: &Ctx, g: &PathGroup, out: &mut Vec<Route>) {
    let ir = ctx.ir;
    let base = path_match(&g.pattern);
    if ctx.lua {
        for pf in &g.preflight {
            let r = &ir.routes[pf.route];
            // A preflight is routed by the method it asks about; the Lua
            // filter answers it (204) from the route's cors settings.
            let mut m = base.clone();
            let options: MethodSet = [Some(Method::Options)].into_iter().collect();
            m.headers.extend(method_matcher(options));
            m.headers.push(present("origin"));
            match method_matcher(pf.methods) {
                Some(mut asked) => {
                    asked.name = "access-control-request-method".into();
                    m.headers.push(asked);
                }
                None => m.headers.push(present("access-control-request-method")),
            }
            m.headers
                .extend(ctx.conditions.matchers(&r.matcher.conditions));
            let mut pre = Route {
                name: format!("{}:preflight", route_name(r)),
                matcher: m,
                action: Action::DirectResponse(DirectResponse {
                    status: 204,
                    body: None,
                }),
                gateway_answer: true,
                ..Route::bare()
            };
            decorate(ctx, r, &mut pre, true);
            out.push(pre);
        }
    }
    for mg in &g.methods {
        emit_route(ctx, &ir.routes[mg.route], &g.pattern, mg.methods, out);
    }
    if let Some(allow) = g.allow {
        fallthrough(ctx, g, allow, &base, out);
    }
}

/// Most conditional routes in one path group whose methods change a 405's
/// `allow`: the group ends with an entry per combination of them.
pub const MAX_CONDITIONAL: usize = 6;

/// What this target refuses in a spec's `match` conditions: a path group
/// with more than [`MAX_CONDITIONAL`] conditional routes that change its
/// 405 (an entry per combination), and a conditional route without `cors`
/// before a route with `cors` for the same methods (a preflight meeting
/// its conditions is an ordinary request; preflight entries come first and
/// cannot step over the later route's).
pub fn condition_diagnostics(ir: &ValidIr) -> Diagnostics {
    let mut out = Diagnostics::new();
    if ir.routes.iter().all(|r| r.matcher.conditions.is_empty()) {
        return out;
    }
    let view = DispatchView::new(ir);
    let mut refuse = |r: RouteIx, why: String| {
        let route = &ir.routes[r];
        let loc = ir
            .sources
            .routes
            .get(&route.id)
            .copied()
            .unwrap_or(Loc::START);
        out.push(
            Diagnostic::error(
                "unsupported-feature",
                span_of(loc),
                format!("target `envoy` cannot carry out `match` on route `{}`: {why}", route.id),
            )
            .with_help("give these routes distinct paths, or pick a target that carries it out (`gatefold capabilities`)"),
        );
    };
    for class in view.classes() {
        for g in &class.paths {
            let fixed = g
                .methods
                .iter()
                .filter(|m| !m.conditional)
                .fold(MethodSet::EMPTY, |a, m| a.union(m.methods));
            let extra: Vec<&MethodGroup> = g
                .methods
                .iter()
                .filter(|m| m.conditional && m.methods.methods().any(|x| !fixed.contains(Some(x))))
                .collect();
            if g.allow.is_some() && extra.len() > MAX_CONDITIONAL {
                refuse(
                    extra[0].route,
                    format!(
                        "more than {MAX_CONDITIONAL} routes with conditions share the path `{}` with methods no route without conditions takes",
                        g.pattern
                    ),
                );
            }
            for (i, m) in g.methods.iter().enumerate() {
                let later_cors = g.preflight.iter().any(|p| {
                    p.route != m.route
                        && !p.methods.intersection(m.methods).is_empty()
                        && g.methods[i + 1..].iter().any(|l| l.route == p.route)
                });
                if m.conditional && !g.preflight.iter().any(|p| p.route == m.route) && later_cors {
                    refuse(
                        m.route,
                        format!(
                            "it has no `cors` and comes before a route with `cors` for the same methods on `{}`",
                            g.pattern
                        ),
                    );
                }
            }
        }
    }
    out
}

/// The group's answers for a method no entry took: 405 with `allow`
/// (`allow` itself without conditional routes). With conditional routes,
/// the allow set is the methods of the unconditional routes and of the
/// conditional ones whose conditions hold (404 when that is none): an
/// entry per combination of those routes, the larger combinations first,
/// so the first entry that matches is the one of exactly the routes whose
/// conditions hold.
fn fallthrough(
    ctx: &Ctx,
    g: &PathGroup,
    allow: MethodSet,
    base: &RouteMatch,
    out: &mut Vec<Route>,
) {
    let reply = |name: String, matcher: RouteMatch, set: MethodSet| {
        let list: Vec<&str> = set.methods().map(|m| m.as_str()).collect();
        if set.is_empty() {
            json_reply(&name, matcher, 404, "no route", &[])
        } else {
            json_reply(
                &name,
                matcher,
                405,
                "method not allowed",
                &[("allow", list.join(", "))],
            )
        }
    };
    let fixed = g
        .methods
        .iter()
        .filter(|m| !m.conditional)
        .fold(MethodSet::EMPTY, |a, m| a.union(m.methods));
    // Conditional routes whose methods add to the allow set, in order.
    let extra: Vec<&MethodGroup> = g
        .methods
        .iter()
        .filter(|m| m.conditional && m.methods.methods().any(|x| !fixed.contains(Some(x))))
        .collect();
    if g.methods.iter().all(|m| !m.conditional) {
        out.push(reply(format!("{}:405", g.pattern), base.clone(), allow));
        return;
    }
    let mut combos: Vec<u32> = (1..(1u32 << extra.len())).collect();
    combos.sort_by_key(|c| std::cmp::Reverse(c.count_ones()));
    for combo in combos {
        let mut m = base.clone();
        let mut set = fixed;
        for (i, mg) in extra.iter().enumerate() {
            if combo & (1 << i) != 0 {
                set = set.union(mg.methods);
                let route = &ctx.ir.routes[mg.route];
                m.headers
                    .extend(ctx.conditions.matchers(&route.matcher.conditions));
            }
        }
        out.push(reply(format!("{}:405-{combo}", g.pattern), m, set));
    }
    out.push(reply(format!("{}:405", g.pattern), base.clone(), fixed));
}

impl RouteMatch {
    fn prefix(p: &str) -> RouteMatch {
        RouteMatch {
            prefix: Some(p.to_string()),
            ..RouteMatch::default()
        }
    }
}

/// A route answering `{"error": message}` as JSON.
fn json_reply(
    name: &str,
    matcher: RouteMatch,
    status: u16,
    message: &str,
    extra: &[(&str, String)],
) -> Route {
    let mut headers = vec![set_header("content-type", "application/json")];
    headers.extend(extra.iter().map(|(k, v)| set_header(k, v)));
    Route {
        name: name.to_string(),
        matcher,
        action: Action::DirectResponse(DirectResponse {
            status,
            body: Some(DataSource::InlineString(
                serde_json::json!({ "error": message }).to_string(),
            )),
        }),
        response_headers_to_add: headers,
        gateway_answer: true,
        ..Route::bare()
    }
}

impl Route {
    fn bare() -> Route {
        Route {
            name: String::new(),
            matcher: RouteMatch::default(),
            action: Action::DirectResponse(DirectResponse {
                status: 500,
                body: None,
            }),
            request_headers_to_add: Vec::new(),
            request_headers_to_remove: Vec::new(),
            response_headers_to_add: Vec::new(),
            response_headers_to_remove: Vec::new(),
            typed_per_filter_config: BTreeMap::new(),
            metadata: None,
            gateway_answer: false,
        }
    }
}

/// A header value as Envoy's header formatter reads it: `%` starts a
/// command there, so a literal one is `%%`.
fn literal(value: &str) -> String {
    value.replace('%', "%%")
}

fn set_header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: HeaderValue {
            key: key.to_string(),
            value: literal(value),
        },
        append_action: "OVERWRITE_IF_EXISTS_OR_ADD",
    }
}

fn add_header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: HeaderValue {
            key: key.to_string(),
            value: literal(value),
        },
        append_action: "APPEND_IF_EXISTS_OR_ADD",
    }
}

/// RE2 text matching `s` literally.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '/' || c == '-' || c == '_' {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

/// An anchored RE2 regex matching the paths `p` matches, each `{param}` a
/// capture group (in order).
pub fn path_regex(p: &PathPattern) -> String {
    let mut out = String::from("^");
    for s in &p.segments {
        out.push('/');
        match s {
            Segment::Literal(l) => out.push_str(&regex_escape(l)),
            Segment::Param(_) => out.push_str("([^/]+)"),
        }
    }
    if p.prefix {
        out.push_str(if p.segments.is_empty() {
            "/.*"
        } else {
            "(?:/.*)?"
        });
    } else if p.segments.is_empty() {
        out.push('/');
    }
    out.push('$');
    out
}

fn path_match(p: &PathPattern) -> RouteMatch {
    let mut m = RouteMatch::default();
    match p.kind() {
        PathKind::Exact => m.path = Some(p.to_string()),
        PathKind::Template => {
            m.safe_regex = Some(Regex {
                regex: path_regex(p),
            })
        }
        PathKind::Prefix if p.segments.is_empty() => m.prefix = Some("/".into()),
        PathKind::Prefix => m.path_separated_prefix = Some(p.literal_prefix()),
    }
    m
}

/// A `:method` matcher taking exactly `set`; `None` for every method.
fn method_matcher(set: MethodSet) -> Option<HeaderMatcher> {
    if set == MethodSet::ANY {
        return None;
    }
    // With "other" methods, match the listed methods it lacks, inverted.
    let (listed, invert): (Vec<&str>, bool) = if set.has_other() {
        (
            MethodSet::ANY
                .difference(set)
                .methods()
                .map(|m| m.as_str())
                .collect(),
            true,
        )
    } else {
        (set.methods().map(|m| m.as_str()).collect(), false)
    };
    let string_match = match listed.as_slice() {
        [one] => StringMatch::Exact(one.to_string()),
        _ => StringMatch::SafeRegex(Regex {
            regex: format!("^({})$", listed.join("|")),
        }),
    };
    Some(HeaderMatcher {
        name: ":method".into(),
        string_match: Some(string_match),
        present_match: None,
        invert_match: invert.then_some(true),
    })
}

fn present(name: &str) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        string_match: None,
        present_match: Some(true),
        invert_match: None,
    }
}

fn route_name(r: &IrRoute) -> String {
    r.id.to_string()
}

/// Methods retried on `timeout` and status codes: the idempotent ones.
const IDEMPOTENT: [Method; 6] = [
    Method::Get,
    Method::Head,
    Method::Options,
    Method::Trace,
    Method::Put,
    Method::Delete,
];

/// The entries for `methods` of route `r` within a path group matching `base`.
fn emit_route(
    ctx: &Ctx,
    r: &IrRoute,
    group: &PathPattern,
    methods: MethodSet,
    out: &mut Vec<Route>,
) {
    let base = &path_match(group);
    let ir = ctx.ir;
    let mut main = Route {
        name: route_name(r),
        matcher: base.clone(),
        ..Route::bare()
    };
    main.matcher.headers.extend(method_matcher(methods));
    main.matcher
        .headers
        .extend(ctx.conditions.matchers(&r.matcher.conditions));
    let mut short = false;
    for (_, inst) in ir.chain(r) {
        match &inst.policy {
            Policy::Mock(m) => {
                mock(m, &mut main);
                short = true;
            }
            Policy::Redirect(rd) => {
                // The Lua filter computes the location (`to`, or built
                // from the request's parts) into dynamic metadata, as the
                // reference gateway does; see `lua::lua_redirect`.
                main.action = Action::DirectResponse(DirectResponse {
                    status: rd.status.code(),
                    body: None,
                });
                main.response_headers_to_add.push(HeaderValueOption {
                    header: HeaderValue {
                        key: "location".into(),
                        value: format!("%DYNAMIC_METADATA({}:location)%", lua::FILTER),
                    },
                    append_action: "OVERWRITE_IF_EXISTS_OR_ADD",
                });
                short = true;
            }
            _ => {}
        }
    }
    decorate(ctx, r, &mut main, false);
    let Some(plan) = r.lowered.proxy.as_ref().filter(|_| !short) else {
        // Validation guarantees a route without upstream answers itself.
        out.push(main);
        return;
    };
    let mut action = proxy_action(ctx, r, plan);
    let start = out.len();
    upstream_path(r, group, &mut action, &main, out);
    // Retries on timeouts and statuses apply to idempotent methods only:
    // the others get an entry of their own retrying connect failures.
    let retry = plan.destinations().first().and_then(|d| d.retry.as_ref());
    if let Some(retry) = retry {
        let only_connect = retry.on.iter().all(|o| *o == RetryOn::ConnectFailure);
        let idempotent: MethodSet = IDEMPOTENT.into_iter().map(Some).collect();
        let others = methods.difference(idempotent);
        if !only_connect && !others.is_empty() {
            let mut other = main.clone();
            other.name = format!("{}:non-idempotent", route_name(r));
            other.matcher.headers.retain(|h| h.name != ":method");
            other.matcher.headers.extend(method_matcher(others));
            let mut a = action.clone();
            let read = plan.destinations()[0].read_timeout.millis;
            let policy = retry_policy(
                retry.attempts,
                &BTreeSet::from([RetryOn::ConnectFailure]),
                read,
            );
            set_retry(&mut a, policy, read);
            other.action = Action::Route(Box::new(a));
            out.push(other);
        }
    }
    main.action = Action::Route(Box::new(action));
    out.push(main);
    if let ProxyPlan::Split { policy, to } = plan {
        header_matches(ctx, policy, to, start, out);
    }
}

/// A `traffic-split`'s `header-match` entries, first wins: before the
/// route's entries (from `start` in `out`), a copy of each per match with
/// the header's exact, case-sensitive value required and that upstream
/// as its only cluster.
fn header_matches(
    ctx: &Ctx,
    policy: &gatefold_compiler::ir::PolicyId,
    to: &[Destination],
    start: usize,
    out: &mut Vec<Route>,
) {
    let Some(Policy::TrafficSplit(split)) = ctx.ir.policies.get(policy).map(|i| &i.policy) else {
        return;
    };
    let mut variants = Vec::new();
    for (n, hm) in split.header_match.iter().enumerate() {
        let Some(dest) = to.iter().find(|d| d.upstream == hm.upstream) else {
            continue;
        };
        for entry in &out[start..] {
            let Action::Route(a) = &entry.action else {
                continue;
            };
            let mut v = entry.clone();
            v.name = format!("{}:match-{n}", entry.name);
            v.matcher.headers.push(HeaderMatcher {
                name: hm.name.as_str().to_string(),
                string_match: Some(StringMatch::Exact(hm.value.clone())),
                present_match: None,
                invert_match: None,
            });
            let mut a = a.clone();
            a.weighted_clusters = None;
            a.cluster = Some(cluster_name(dest));
            let read = dest.read_timeout.millis;
            let policy = a.retry_policy.take().and_then(|p| {
                let on = dest.retry.as_ref().map(|r| &r.on)?;
                let conditions = if p.retry_on == "connect-failure" {
                    BTreeSet::from([RetryOn::ConnectFailure])
                } else {
                    on.clone()
                };
                retry_policy(p.num_retries, &conditions, read)
            });
            set_retry(&mut a, policy, read);
            v.action = Action::Route(a);
            variants.push(v);
        }
    }
    out.splice(start..start, variants);
}

/// Header transforms, per-filter config and Lua metadata of a route entry.
fn decorate(ctx: &Ctx, r: &IrRoute, route: &mut Route, preflight: bool) {
    let ir = ctx.ir;
    for (id, inst) in ir.chain(r) {
        match &inst.policy {
            Policy::RequestHeaders(t) if !preflight => {
                request_headers(t, route);
            }
            Policy::ResponseHeaders(t) if !preflight && !ctx.hoisted.contains(id) => {
                response_headers(t, route);
            }
            Policy::IpFilter(f) => {
                route.typed_per_filter_config.insert(
                    "envoy.filters.http.rbac".into(),
                    Any::RbacPerRoute { rbac: ip_rules(f) },
                );
            }
            Policy::Deprecation(d) if !preflight => {
                for (k, v) in deprecation_headers(d) {
                    route.response_headers_to_add.push(set_header(k, &v));
                }
            }
            _ => {}
        }
    }
    if r.lowered.max_body != ir.gateway.baseline.max_body {
        route.typed_per_filter_config.insert(
            "envoy.filters.http.buffer".into(),
            Any::BufferPerRoute {
                buffer: Buffer {
                    max_request_bytes: clamp_u32(r.lowered.max_body.0),
                },
            },
        );
    }
    if ctx.lua {
        match lua::route_metadata(ir, r, preflight, true) {
            Some(md) => {
                route.metadata = Some(Metadata {
                    filter_metadata: BTreeMap::from([(lua::FILTER.to_string(), md)]),
                })
            }
            // The policy filter acts only on what the metadata names.
            None => {
                route
                    .typed_per_filter_config
                    .insert(lua::FILTER.into(), Any::LuaDisabled { disabled: true });
            }
        }
    }
    crate::script::decorate(ir, r, route, preflight, ctx.scripts);
}

pub fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn request_headers(t: &HeaderTransform, route: &mut Route) {
    for (k, v) in &t.set {
        if k.as_str() == "host" {
            continue; // host_rewrite_literal, see proxy_action
        }
        route
            .request_headers_to_add
            .push(set_header(k.as_str(), v.as_str()));
    }
    for (k, v) in &t.add {
        route
            .request_headers_to_add
            .push(add_header(k.as_str(), v.as_str()));
    }
    route
        .request_headers_to_remove
        .extend(t.remove.iter().map(|h| h.as_str().to_string()));
}

fn response_headers(t: &HeaderTransform, route: &mut Route) {
    for (k, v) in &t.set {
        route
            .response_headers_to_add
            .push(set_header(k.as_str(), v.as_str()));
    }
    for (k, v) in &t.add {
        route
            .response_headers_to_add
            .push(add_header(k.as_str(), v.as_str()));
    }
    route
        .response_headers_to_remove
        .extend(t.remove.iter().map(|h| h.as_str().to_string()));
}

fn deprecation_headers(
    d: &gatefold_compiler::ir::policy::Deprecation,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let since = d.since.map_or(0, |s| s.days_since_epoch() * 86_400);
    out.push(("deprecation", format!("@{since}")));
    if let Some(s) = d.sunset {
        out.push(("sunset", s.http_date()));
    }
    if let Some(l) = &d.link {
        out.push(("link", format!("<{l}>; rel=\"deprecation\"")));
    }
    out
}

fn mock(m: &Mock, route: &mut Route) {
    let (body, content_type) = match &m.body {
        MockBody::Empty => (None, None),
        MockBody::Text(t) => (Some(t.clone()), Some("text/plain; charset=utf-8")),
        MockBody::Json(v) => (Some(v.to_string()), Some("application/json")),
    };
    route.action = Action::DirectResponse(DirectResponse {
        status: m.status,
        body: body.map(DataSource::InlineString),
    });
    let given: BTreeSet<&str> = m.headers.keys().map(|k| k.as_str()).collect();
    if let Some(ct) = content_type {
        if !given.contains("content-type") {
            route
                .response_headers_to_add
                .push(set_header("content-type", ct));
        }
    }
    for (k, v) in &m.headers {
        route
            .response_headers_to_add
            .push(set_header(k.as_str(), v.as_str()));
    }
}

/// Envoy's retry policy for `attempts` retries on `on`. A timeout is a
/// per-try timeout of the read timeout, retried through `reset` (which
/// takes a per-try timeout); the route's overall timeout is then off
/// ([`proxy_action`]), as every attempt has its own.
fn retry_policy(attempts: u32, on: &BTreeSet<RetryOn>, read_millis: u64) -> Option<RetryPolicy> {
    if attempts == 0 {
        return None;
    }
    let mut conditions = Vec::new();
    let mut codes = Vec::new();
    for o in on {
        match o {
            RetryOn::ConnectFailure => conditions.push("connect-failure"),
            // `reset` in Envoy also covers a per-try timeout; listed once.
            RetryOn::Reset | RetryOn::Timeout => {
                if !conditions.contains(&"reset") {
                    conditions.push("reset")
                }
            }
            RetryOn::Status500 => codes.push(500),
            RetryOn::Status502 => codes.push(502),
            RetryOn::Status503 => codes.push(503),
            RetryOn::Status504 => codes.push(504),
        }
    }
    if !codes.is_empty() {
        conditions.push("retriable-status-codes");
    }
    Some(RetryPolicy {
        retry_on: conditions.join(","),
        num_retries: attempts,
        per_try_timeout: on
            .contains(&RetryOn::Timeout)
            .then(|| duration(read_millis)),
        retriable_status_codes: codes,
        retry_host_predicate: vec![NamedConfig {
            name: "envoy.retry_host_predicates.previous_hosts".into(),
            typed_config: Any::PreviousHosts {},
        }],
        host_selection_retry_max_attempts: 5,
    })
}

/// The action's retry policy; with a per-try timeout the overall one is
/// off (`0s`), as each attempt has its own.
fn set_retry(a: &mut RouteAction, policy: Option<RetryPolicy>, read_millis: u64) {
    a.timeout = if policy.as_ref().is_some_and(|p| p.per_try_timeout.is_some()) {
        "0s".into()
    } else {
        duration(read_millis)
    };
    a.retry_policy = policy;
}

fn proxy_action(ctx: &Ctx, r: &IrRoute, plan: &ProxyPlan) -> RouteAction {
    let ir = ctx.ir;
    let dests = plan.destinations();
    let first: &Destination = &dests[0];
    let mut a = RouteAction {
        auto_host_rewrite: (!r.lowered.preserve_host).then_some(true),
        // The client's host as it came (port included): the front Lua
        // filter copied it to x-forwarded-host before taking the port off
        // `:authority` for routing.
        host_rewrite_header: r
            .lowered
            .preserve_host
            .then(|| "x-forwarded-host".to_string()),
        // Set by the front Lua filter, with the client's port.
        append_x_forwarded_host: false,
        timeout: duration(first.read_timeout.millis),
        ..RouteAction::default()
    };
    match plan {
        ProxyPlan::Single(d) => a.cluster = Some(cluster_name(d)),
        ProxyPlan::Split { policy, to } => {
            let split = match ir.policies.get(policy).map(|i| &i.policy) {
                Some(Policy::TrafficSplit(s)) => s,
                _ => unreachable!("a split plan names its traffic-split"),
            };
            let weights: Vec<ClusterWeight> = split
                .to
                .iter()
                .filter(|w| w.weight > 0)
                .filter_map(|w| {
                    let d = to.iter().find(|d| d.upstream == w.upstream)?;
                    Some(ClusterWeight {
                        name: cluster_name(d),
                        weight: w.weight,
                    })
                })
                .collect();
            a.weighted_clusters = Some(WeightedClusters { clusters: weights });
        }
    }
    if let Some(retry) = &first.retry {
        let read = first.read_timeout.millis;
        set_retry(&mut a, retry_policy(retry.attempts, &retry.on, read), read);
    }
    let balance = ir.upstreams.get(&first.upstream).map(|u| &u.balance);
    if let Some(gatefold_compiler::ir::Balance::HashHeader(h)) = balance {
        a.hash_policy.push(HashPolicy {
            header: HashHeader {
                header_name: h.as_str().to_string(),
            },
        });
    }
    if let Some(Policy::Mirror(m)) = ir.policy(r, gatefold_compiler::ir::PolicyKind::Mirror) {
        a.request_mirror_policies.push(MirrorPolicy {
            cluster: mirror_cluster_name(ir, m),
            runtime_fraction: RuntimeFraction {
                default_value: FractionalPercent {
                    numerator: u32::from(m.percent),
                    denominator: "HUNDRED",
                },
            },
            disable_shadow_host_suffix_append: true,
        });
    }
    if let Some(Policy::RequestHeaders(t)) =
        ir.policy(r, gatefold_compiler::ir::PolicyKind::RequestHeaders)
    {
        if let Some((_, host)) = t.set.iter().find(|(k, _)| k.as_str() == "host") {
            a.auto_host_rewrite = None;
            a.host_rewrite_header = None;
            a.host_rewrite_literal = Some(host.as_str().to_string());
        }
    }
    a
}

/// The upstream path: `regex_rewrite` on the path (the query is kept).
/// A prefix strip that empties the path becomes `/` (or the added prefix),
/// which takes an entry of its own for the bare prefix.
fn upstream_path(
    r: &IrRoute,
    group: &PathPattern,
    action: &mut RouteAction,
    main: &Route,
    out: &mut Vec<Route>,
) {
    match &r.lowered.upstream_path {
        UpstreamPath::Keep => {}
        UpstreamPath::Template(t) => {
            let params: Vec<&str> = r.matcher.path.params().collect();
            let mut sub = String::new();
            for s in &t.segments {
                sub.push('/');
                match s {
                    Segment::Literal(l) => sub.push_str(l),
                    Segment::Param(p) => {
                        let i = params.iter().position(|q| q == p).map_or(0, |i| i + 1);
                        sub.push_str(&format!("\\{i}"));
                    }
                }
            }
            if sub.is_empty() {
                sub.push('/');
            }
            action.regex_rewrite = Some(RegexRewrite {
                pattern: Regex {
                    regex: path_regex(&r.matcher.path),
                },
                substitution: sub,
            });
        }
        UpstreamPath::Prefix { strip, add } => {
            let add = add.clone().unwrap_or_default();
            match strip {
                None => {
                    action.regex_rewrite = Some(RegexRewrite {
                        pattern: Regex {
                            regex: "^(/.*)$".into(),
                        },
                        substitution: format!("{add}\\1"),
                    })
                }
                Some(strip) => {
                    let strip = strip.trim_end_matches('/');
                    action.regex_rewrite = Some(RegexRewrite {
                        pattern: Regex {
                            regex: format!("^{}(/.*)$", regex_escape(strip)),
                        },
                        substitution: format!("{add}\\1"),
                    });
                    let bare = if strip.is_empty() { "/" } else { strip };
                    if group.is_match(bare) {
                        let mut exact = main.clone();
                        exact.name = format!("{}:bare", main.name);
                        exact.matcher.path = Some(bare.to_string());
                        exact.matcher.prefix = None;
                        exact.matcher.path_separated_prefix = None;
                        exact.matcher.safe_regex = None;
                        let mut a = action.clone();
                        a.regex_rewrite = Some(RegexRewrite {
                            pattern: Regex {
                                regex: "^.*$".into(),
                            },
                            substitution: if add.is_empty() {
                                "/".into()
                            } else {
                                add.clone()
                            },
                        });
                        exact.action = Action::Route(Box::new(a));
                        out.push(exact);
                    }
                }
            }
        }
    }
}

/// RBAC for an `ip-filter`: one DENY policy taking the denied addresses
/// and, with an allow list, every address outside it.
fn ip_rules(f: &IpFilter) -> Rbac {
    let cidr = |n: &ipnet::IpNet| {
        Principal::DirectRemoteIp(CidrRange {
            address_prefix: n.network().to_string(),
            prefix_len: n.prefix_len(),
        })
    };
    let mut ids: Vec<Principal> = f.deny.iter().map(cidr).collect();
    if !f.allow.is_empty() {
        ids.push(Principal::NotId(Box::new(Principal::OrIds {
            ids: f.allow.iter().map(cidr).collect(),
        })));
    }
    Rbac {
        rules: Some(RbacRules {
            action: "DENY",
            policies: BTreeMap::from([(
                "ip-filter".to_string(),
                RbacPolicy {
                    permissions: vec![Permission::Any(true)],
                    principals: vec![Principal::OrIds { ids }],
                },
            )]),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathPattern {
        s.parse().unwrap()
    }

    #[test]
    fn path_regexes_match_what_the_patterns_match() {
        assert_eq!(path_regex(&p("/pets/{id}")), "^/pets/([^/]+)$");
        assert_eq!(path_regex(&p("/a.b/*")), "^/a\\.b(?:/.*)?$");
        assert_eq!(path_regex(&p("/")), "^/$");
        assert_eq!(path_regex(&p("/*")), "^/.*$");
    }

    #[test]
    fn http_dates_name_the_weekday() {
        // 2026-06-30 is a Tuesday.
        let d: gatefold_compiler::ir::Date = "2026-06-30".parse().unwrap();
        assert_eq!(d.http_date(), "Tue, 30 Jun 2026 00:00:00 GMT");
    }
}
