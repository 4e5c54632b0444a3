//! `gatefold explain`: each route's matcher and effective chain, in phase
//! order, with where every policy came from.

use super::Format;
use gatefold_compiler::compile_path;
use gatefold_compiler::diag::Diagnostics;
use gatefold_compiler::ir::policy::{Policy, PolicyKind, RedirectLocation, RedirectPath};
use gatefold_compiler::ir::{Ir, Level, Loc, Route, RouteId, UpstreamPath};
use gatefold_compiler::source::{FileId, Sources};
use std::path::Path;
use std::process::ExitCode;

pub fn run(spec: &Path, only: Option<&str>, format: Format) -> ExitCode {
    let json = format == Format::Json;
    let compiled = compile_path(spec);
    let Some(ir) = &compiled.ir else {
        super::report(
            &compiled,
            &Diagnostics::new(),
            format,
            serde_json::json!({}),
        );
        return ExitCode::from(super::USER_ERROR);
    };
    let names: Vec<String> = ir.routes.iter().map(|r| r.id.to_string()).collect();
    let wanted: Option<RouteId> = match only.map(|o| (o, o.parse::<RouteId>())) {
        None => None,
        Some((_, Ok(id))) => Some(id),
        Some((given, Err(msg))) => {
            let help = match closest_route(given, &names) {
                Some(id) => format!("did you mean `--route {id}`?"),
                None => "write `--route API.ROUTE`".to_string(),
            };
            super::report_global(format, "invalid-route", msg, &help);
            return ExitCode::from(super::USER_ERROR);
        }
    };
    let routes: Vec<&Route> = ir
        .routes
        .iter()
        .filter(|r| wanted.as_ref().is_none_or(|w| &r.id == w))
        .map(|r| &**r)
        .collect();
    if let (Some(w), true) = (&wanted, routes.is_empty()) {
        let help = match closest_route(&w.to_string(), &names) {
            Some(id) => format!("did you mean `--route {id}`?"),
            None => "write `--route API.ROUTE` with one of them".to_string(),
        };
        super::report_global(
            format,
            "unknown-route",
            format!("no route `{w}`; routes are: {}", names.join(", ")),
            &help,
        );
        return ExitCode::from(super::USER_ERROR);
    }
    // Places are named as the spec path was given, like diagnostics.
    let places = Places(&compiled.sources);
    if json {
        let items: Vec<_> = routes
            .iter()
            .map(|r| {
                let mut v = route_json(ir, r, &places);
                if let Some(tls) = &ir.gateway.tls {
                    v["tls"] = super::explain_tls::json(tls, r);
                }
                v
            })
            .collect();
        crate::stdout::outln!("{}", serde_json::to_string_pretty(&items).expect("json"));
    } else {
        for (i, r) in routes.iter().enumerate() {
            if i > 0 {
                crate::stdout::outln!();
            }
            crate::stdout::out!("{}", route_text(ir, r, &places));
            if let Some(tls) = &ir.gateway.tls {
                crate::stdout::out!("{}", super::explain_tls::text(tls, r));
            }
        }
    }
    ExitCode::SUCCESS
}

/// The route id `given` most likely means: the one whose route name it is
/// (`get-book` for `v1.get-book`), else the closest spelling.
fn closest_route<'n>(given: &str, names: &'n [String]) -> Option<&'n str> {
    let by_route_name: Vec<&String> = names
        .iter()
        .filter(|n| n.split_once('.').is_some_and(|(_, r)| r == given))
        .collect();
    if let [only] = by_route_name[..] {
        return Some(only);
    }
    gatefold_compiler::front::decode::suggest(given, names.iter().map(String::as_str))
}

/// `file:line:col` of IR locations, with the file as the user named it.
struct Places<'s>(&'s Sources);

impl Places<'_> {
    fn describe(&self, loc: Loc) -> String {
        let file = self
            .0
            .iter()
            .find(|(id, _)| *id == FileId(loc.file))
            .map_or("?", |(_, f)| f.name.as_str());
        format!("{file}:{}:{}", loc.line, loc.col)
    }
}

/// The phases a policy runs in: `script` in the request phase, the
/// response phase or both (as it has code for them); `native` in none of
/// the portable ones.
fn phases(p: &Policy) -> Vec<&'static str> {
    match p {
        Policy::Script(s) => {
            let mut out = Vec::new();
            if s.request.is_some() {
                out.push(gatefold_compiler::ir::Phase::RequestScript.as_str());
            }
            if s.response.is_some() {
                out.push(gatefold_compiler::ir::Phase::Response.as_str());
            }
            out
        }
        Policy::Native(_) => Vec::new(),
        _ => vec![p.kind().phase().as_str()],
    }
}

/// Each side's phase and cost bound: `request-script: at most 14 steps; response: at most 9 steps`.
fn script_costs(s: &gatefold_compiler::ir::Script) -> String {
    let sides = [
        (gatefold_compiler::ir::Phase::RequestScript, &s.request),
        (gatefold_compiler::ir::Phase::Response, &s.response),
    ];
    let parts: Vec<String> = sides
        .iter()
        .filter_map(|(phase, p)| {
            p.as_ref()
                .map(|p| format!("{}: at most {} steps", phase.as_str(), p.cost))
        })
        .collect();
    format!("script cost bound: {}", parts.join("; "))
}

fn phases_text(p: &Policy) -> String {
    let list = phases(p);
    if list.is_empty() {
        "no phase (target-specific)".to_string()
    } else {
        list.join(" + ")
    }
}

fn origin(level: Level, via: &[gatefold_compiler::ir::Name]) -> String {
    let level = match level {
        Level::Gateway => "gateway",
        Level::Api => "api",
        Level::Route => "route",
    };
    if via.is_empty() {
        format!("{level} (inline)")
    } else {
        let path: Vec<&str> = via.iter().map(|n| n.as_str()).collect();
        format!("{level} via {}", path.join(" > "))
    }
}

fn methods(r: &Route) -> String {
    match &r.matcher.methods {
        None => "*".into(),
        Some(ms) => ms.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","),
    }
}

fn hosts(r: &Route) -> String {
    if r.matcher.hosts.is_empty() {
        "any host".into()
    } else {
        r.matcher
            .hosts
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The policy that answers the route itself (`mock`, `redirect`), if any:
/// such a route never sends a request upstream, whatever it inherits.
fn answered_by(r: &Route) -> Option<PolicyKind> {
    [PolicyKind::Mock, PolicyKind::Redirect]
        .into_iter()
        .find(|k| r.policy_id(*k).is_some())
}

fn upstream(r: &Route) -> String {
    if let Some(kind) = answered_by(r) {
        return format!("(none: answered by `{kind}`)");
    }
    // A traffic-split decides the upstream, whatever the route names.
    if r.policy_id(PolicyKind::TrafficSplit).is_some() {
        return "(chosen by `traffic-split`)".to_string();
    }
    match &r.upstream {
        Some(u) => u.to_string(),
        None => "(none)".to_string(),
    }
}

/// The `location` a route's redirect answers with, as a template: parts
/// taken from the request in `<...>`, like
/// `https://<host><path>[?<query>]` for `redirect: { scheme: https }`.
fn redirect_location(ir: &Ir, r: &Route) -> Option<String> {
    let id = r.policy_id(PolicyKind::Redirect)?;
    let Some(Policy::Redirect(rd)) = ir.policies.get(id).map(|i| &i.policy) else {
        return None;
    };
    let query = "[?<query>]";
    Some(match &rd.location {
        RedirectLocation::To(to) => format!("{to}{query}"),
        RedirectLocation::Parts(p) => {
            let scheme = p.scheme.map_or("<scheme>", |s| s.as_str());
            let host = p.host.as_deref().unwrap_or("<host>");
            let port = match (p.port, p.scheme) {
                (Some(port), Some(s)) if port == s.default_port() => String::new(),
                (Some(port), _) => format!(":{port}"),
                (None, None) => "[:<port>]".to_string(),
                (None, Some(_)) => String::new(),
            };
            let path = match &p.path {
                None => "<path>".to_string(),
                Some(RedirectPath::Template(t)) => t.clone(),
                Some(RedirectPath::ReplacePrefix(prefix)) => format!(
                    "{}<rest after {}>",
                    prefix.trim_end_matches('/'),
                    r.matcher.path.to_string().trim_end_matches("/*")
                ),
            };
            format!("{scheme}://{host}{port}{path}{query}")
        }
    })
}

/// The route's `match` conditions in one line: `header x-version: "2",
/// query format: "json"`; `None` without conditions.
fn conditions(r: &Route) -> Option<String> {
    let c = &r.matcher.conditions;
    let headers = c
        .headers
        .iter()
        .map(|(k, v)| format!("header {k}: {:?}", v.as_str()));
    let query = c
        .query
        .iter()
        .map(|(k, v)| format!("query {k}: {:?}", v.as_str()));
    let all: Vec<String> = headers.chain(query).collect();
    (!all.is_empty()).then(|| all.join(", "))
}

fn route_text(ir: &Ir, r: &Route, places: &Places<'_>) -> String {
    let mut out = format!(
        "{}  {} {}  [{}, {} path]\n  upstream: {}\n",
        r.id,
        methods(r),
        r.matcher.path,
        hosts(r),
        match r.matcher.path.kind() {
            gatefold_compiler::ir::PathKind::Exact => "exact",
            gatefold_compiler::ir::PathKind::Template => "templated",
            gatefold_compiler::ir::PathKind::Prefix => "prefix",
        },
        upstream(r)
    );
    if let Some(when) = conditions(r) {
        out.push_str(&format!("  only when: {when} (else as if absent)\n"));
    }
    if r.lowered.preserve_host {
        out.push_str("  sends the client's host upstream (preserve-host)\n");
    }
    match &r.lowered.upstream_path {
        UpstreamPath::Keep => {}
        UpstreamPath::Prefix { strip, add } => {
            if let Some(p) = strip {
                out.push_str(&format!("  strips {p} before proxying\n"));
            }
            if let Some(p) = add {
                out.push_str(&format!("  adds {p} before proxying\n"));
            }
        }
        UpstreamPath::Template(t) => out.push_str(&format!("  sends {t} upstream\n")),
    }
    if let Some(location) = redirect_location(ir, r) {
        out.push_str(&format!("  redirects to {location}\n"));
    }
    if let Some(at) = ir.sources.routes.get(&r.id) {
        out.push_str(&format!("  defined at {}\n", places.describe(*at)));
    }
    if r.chain.is_empty() {
        out.push_str("  chain: (baseline only)\n");
        return out;
    }
    out.push_str("  chain, in execution order:\n");
    for (i, (id, inst)) in ir.chain(r).enumerate() {
        let at = ir
            .sources
            .policies
            .get(id)
            .map_or(String::new(), |l| places.describe(*l));
        out.push_str(&format!(
            "    {:>2}. {:<26} {:<18} {:<28} {}\n",
            i + 1,
            phases_text(&inst.policy),
            id.kind.as_str(),
            origin(id.attachment.level(), &inst.origin.via),
            at
        ));
        if let Policy::Script(s) = &inst.policy {
            out.push_str(&format!("        {}\n", script_costs(s)));
        }
    }
    out
}

fn route_json(ir: &Ir, r: &Route, places: &Places<'_>) -> serde_json::Value {
    let chain: Vec<_> = ir
        .chain(r)
        .map(|(id, inst)| {
            serde_json::json!({
                "id": id,
                "phase": id.kind.phase(),
                "phases": phases(&inst.policy),
                "kind": id.kind,
                "level": id.attachment.level(),
                "via": inst.origin.via,
                "at": ir.sources.policies.get(id).map(|l| places.describe(*l)),
                "policy": inst.policy,
            })
        })
        .collect();
    serde_json::json!({
        "route": r.id,
        "matcher": r.matcher,
        "upstream": if answered_by(r).is_some() { None } else { r.upstream.as_ref() },
        "answered-by": answered_by(r),
        "redirects-to": redirect_location(ir, r),
        "lowered": r.lowered,
        "at": ir.sources.routes.get(&r.id).map(|l| places.describe(*l)),
        "chain": chain,
    })
}
