//! `gatefold explain`: each route's matcher and effective chain, in phase
//! order, with where every policy came from.

use gatefold_compiler::compile_path;
use gatefold_compiler::ir::{Level, Route, RouteId, RouteSources, SourceMap};
use std::path::Path;
use std::process::ExitCode;

pub fn run(spec: &Path, only: Option<&str>, json: bool) -> ExitCode {
    let compiled = compile_path(spec);
    let Some(ir) = &compiled.ir else {
        eprint!("{}", compiled.render());
        return ExitCode::from(super::USER_ERROR);
    };
    let wanted: Option<RouteId> = match only.map(str::parse) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(msg)) => {
            eprintln!("error: {msg}");
            return ExitCode::from(super::USER_ERROR);
        }
    };
    let routes: Vec<&Route> = ir
        .routes
        .iter()
        .filter(|r| wanted.as_ref().is_none_or(|w| &r.id == w))
        .collect();
    if let (Some(w), true) = (&wanted, routes.is_empty()) {
        let names: Vec<String> = ir.routes.iter().map(|r| r.id.to_string()).collect();
        eprintln!("error: no route `{w}`; routes are: {}", names.join(", "));
        return ExitCode::from(super::USER_ERROR);
    }
    if json {
        let items: Vec<_> = routes.iter().map(|r| route_json(r, &ir.sources)).collect();
        println!("{}", serde_json::to_string_pretty(&items).expect("json"));
    } else {
        for (i, r) in routes.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print!("{}", route_text(r, &ir.sources));
        }
    }
    ExitCode::SUCCESS
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

fn upstream(r: &Route) -> String {
    r.upstream.as_ref().map_or_else(
        || "(none: answered by the chain)".to_string(),
        |u| u.to_string(),
    )
}

fn route_text(r: &Route, sources: &SourceMap) -> String {
    let rs: Option<&RouteSources> = sources.routes.get(&r.id);
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
    if let Some(p) = &r.strip_prefix {
        out.push_str(&format!("  strips {p} before proxying\n"));
    }
    if let Some(rs) = rs {
        out.push_str(&format!("  defined at {}\n", sources.describe(rs.at)));
    }
    if r.chain.is_empty() {
        out.push_str("  chain: (baseline only)\n");
        return out;
    }
    out.push_str("  chain, in execution order:\n");
    for (i, p) in r.chain.iter().enumerate() {
        let kind = p.kind();
        let (from, at) = match rs.and_then(|s| s.chain.get(i)) {
            Some(s) => (origin(s.level, &s.via), sources.describe(s.at)),
            None => ("?".into(), String::new()),
        };
        out.push_str(&format!(
            "    {:>2}. {:<18} {:<20} {:<28} {}\n",
            i + 1,
            kind.phase().as_str(),
            kind.as_str(),
            from,
            at
        ));
    }
    out
}

fn route_json(r: &Route, sources: &SourceMap) -> serde_json::Value {
    let rs = sources.routes.get(&r.id);
    let chain: Vec<_> = r
        .chain
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let s = rs.and_then(|s| s.chain.get(i));
            serde_json::json!({
                "phase": p.kind().phase(),
                "kind": p.kind(),
                "level": s.map(|s| s.level),
                "via": s.map(|s| &s.via),
                "at": s.map(|s| sources.describe(s.at)),
                "policy": p,
            })
        })
        .collect();
    serde_json::json!({
        "route": r.id,
        "matcher": r.matcher,
        "upstream": r.upstream,
        "strip-prefix": r.strip_prefix,
        "at": rs.map(|s| sources.describe(s.at)),
        "chain": chain,
    })
}
