//! What every [`super::ValidIr`] holds, checked again when an IR file is
//! loaded: the hash only proves the content was sealed by someone, not that
//! it came out of validation. Back ends rely on each of these.

use super::policy::{Acl, Policy, RateScope};
use super::source_map::{Level, Loc};
use super::{Ir, Name, RouteId};
use std::collections::{BTreeSet, HashSet};

/// The first broken promise of `ir`, in words.
pub(super) fn check(ir: &Ir) -> Result<(), String> {
    let groups: BTreeSet<&Name> = ir.consumers.values().flat_map(|c| &c.groups).collect();
    let upstream = |route: &RouteId, name: &Name, what: &str| {
        if ir.upstreams.contains_key(name) {
            Ok(())
        } else {
            Err(format!(
                "route `{route}` {what} upstream `{name}`, which is not defined"
            ))
        }
    };
    let mut ids = HashSet::new();
    for r in &ir.routes {
        let id = &r.id;
        if !ids.insert(id) {
            return Err(format!("route `{id}` is listed twice"));
        }
        if let Some(u) = &r.upstream {
            upstream(id, u, "sends requests to")?;
        }
        for pair in r.chain.windows(2) {
            if pair[0].kind() >= pair[1].kind() {
                return Err(format!(
                    "the chain of route `{id}` is not in phase order with each kind once (`{}` before `{}`)",
                    pair[0].kind(),
                    pair[1].kind()
                ));
            }
        }
        let answers = r.chain.iter().any(|p| {
            matches!(
                p,
                Policy::Mock(_) | Policy::Redirect(_) | Policy::TrafficSplit(_)
            )
        });
        if r.upstream.is_none() && !answers {
            return Err(format!("route `{id}` has nowhere to send requests"));
        }
        let Some(sources) = ir.sources.routes.get(id) else {
            return Err(format!("the source map has no entry for route `{id}`"));
        };
        if sources.chain.len() != r.chain.len() {
            return Err(format!(
                "the source map gives route `{id}` {} chain steps, but its chain has {}",
                sources.chain.len(),
                r.chain.len()
            ));
        }
        for (p, source) in r.chain.iter().zip(&sources.chain) {
            match p {
                Policy::TrafficSplit(split) => {
                    for u in split.to.iter().map(|t| &t.upstream) {
                        upstream(id, u, "splits traffic to")?;
                    }
                    for u in split.header_match.iter().map(|m| &m.upstream) {
                        upstream(id, u, "matches a header to")?;
                    }
                }
                Policy::Acl(Acl::Allow(names) | Acl::Deny(names)) => {
                    if let Some(g) = names.iter().find(|g| !groups.contains(g)) {
                        return Err(format!(
                            "route `{id}` checks group `{g}`, which no consumer is in"
                        ));
                    }
                }
                Policy::RateLimit(limit) => {
                    let fits = match (&limit.scope, source.level) {
                        (RateScope::Gateway, Level::Gateway) => true,
                        (RateScope::Api(api), Level::Api) => *api == id.api,
                        (RateScope::Route(route), Level::Route) => route == id,
                        _ => false,
                    };
                    if !fits {
                        return Err(format!(
                            "the rate limit of route `{id}` counts for {:?}, but it is attached at {:?} level",
                            limit.scope, source.level
                        ));
                    }
                }
                _ => {}
            }
            check_loc(ir, source.at, || format!("a chain step of route `{id}`"))?;
        }
        check_loc(ir, sources.at, || format!("route `{id}`"))?;
    }
    if ir.sources.routes.len() != ir.routes.len() {
        return Err("the source map names routes the IR does not have".to_string());
    }
    for (what, names, locs) in [
        (
            "upstream",
            &ir.upstreams.keys().collect::<Vec<_>>(),
            &ir.sources.upstreams,
        ),
        (
            "consumer",
            &ir.consumers.keys().collect(),
            &ir.sources.consumers,
        ),
    ] {
        if names.len() != locs.len() || names.iter().any(|n| !locs.contains_key(*n)) {
            return Err(format!("the source map's {what}s are not the IR's {what}s"));
        }
        for (name, loc) in locs {
            check_loc(ir, *loc, || format!("{what} `{name}`"))?;
        }
    }
    Ok(())
}

fn check_loc(ir: &Ir, loc: Loc, what: impl Fn() -> String) -> Result<(), String> {
    if (loc.file as usize) < ir.sources.files.len() {
        Ok(())
    } else {
        Err(format!(
            "the source map places {} in file {}, but it lists {} file(s)",
            what(),
            loc.file,
            ir.sources.files.len()
        ))
    }
}
