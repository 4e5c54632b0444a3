//! What every [`super::ValidIr`] holds, checked again when an IR file is
//! loaded: the hash only proves the content was sealed by someone, not that
//! it came out of validation. Back ends rely on each of these.

use super::lowered::{LowerInput, UpstreamPath};
use super::policy::{Acl, Policy, PolicyKind};
use super::source_map::Loc;
use super::{Ir, Name, PolicyIndex, RouteId};
use rustc_hash::FxHashSet;
use std::collections::BTreeSet;

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
    for (pid, inst) in &ir.policies {
        if inst.attachment != pid.attachment || inst.kind() != pid.kind {
            return Err(format!(
                "policy instance `{pid}` holds a `{}` attached at `{}`",
                inst.kind(),
                inst.attachment
            ));
        }
        match &inst.policy {
            Policy::Acl(Acl::Allow(names) | Acl::Deny(names)) => {
                if let Some(g) = names.iter().find(|g| !groups.contains(g)) {
                    return Err(format!(
                        "policy `{pid}` checks group `{g}`, which no consumer is in"
                    ));
                }
            }
            Policy::TrafficSplit(split) => {
                let named = split.to.iter().map(|t| &t.upstream);
                let matched = split.header_match.iter().map(|m| &m.upstream);
                if let Some(u) = named
                    .chain(matched)
                    .find(|u| !ir.upstreams.contains_key(*u))
                {
                    return Err(format!(
                        "policy `{pid}` splits traffic to upstream `{u}`, which is not defined"
                    ));
                }
            }
            Policy::Mirror(m) if !ir.upstreams.contains_key(&m.upstream) => {
                return Err(format!(
                    "policy `{pid}` mirrors to upstream `{}`, which is not defined",
                    m.upstream
                ));
            }
            _ => {}
        }
        let Some(at) = ir.sources.policies.get(pid) else {
            return Err(format!("the source map has no entry for policy `{pid}`"));
        };
        check_loc(ir, *at, || format!("policy `{pid}`"))?;
    }
    if ir.sources.policies.len() != ir.policies.len() {
        return Err("the source map names policies the IR does not have".to_string());
    }
    let index = PolicyIndex::of(ir);
    let lower = LowerInput {
        gateway: &ir.gateway,
        upstreams: &ir.upstreams,
        policies: &index,
    };
    // FxHash: the keys are the IR's own ids, and a large IR has them by
    // the ten thousand. The instances used are counted by where their ids
    // sit in `ir.policies` (found by the lookup each needs anyway): a
    // pointer hashes in a step, an id's strings do not.
    let mut used: FxHashSet<*const super::PolicyId> =
        FxHashSet::with_capacity_and_hasher(ir.policies.len(), Default::default());
    let mut ids = FxHashSet::with_capacity_and_hasher(ir.routes.len(), Default::default());
    for r in &ir.routes {
        let id = &r.id;
        if !ids.insert(id) {
            return Err(format!("route `{id}` is listed twice"));
        }
        if let Some(u) = &r.upstream {
            upstream(id, u, "sends requests to")?;
        }
        for pair in r.chain.windows(2) {
            if pair[0].kind >= pair[1].kind {
                return Err(format!(
                    "the chain of route `{id}` is not in phase order with each kind once (`{}` before `{}`)",
                    pair[0], pair[1]
                ));
            }
        }
        for pid in &r.chain {
            let Some((defined, _)) = index.get_key_value(pid) else {
                return Err(format!(
                    "route `{id}` runs policy `{pid}`, which the IR does not define"
                ));
            };
            if !pid.attachment.covers(id) {
                return Err(format!(
                    "route `{id}` runs policy `{pid}`, which is attached elsewhere"
                ));
            }
            used.insert(defined);
        }
        let answers = r.chain.iter().any(|p| {
            matches!(
                p.kind,
                PolicyKind::Mock | PolicyKind::Redirect | PolicyKind::TrafficSplit
            )
        });
        if r.upstream.is_none() && !answers {
            return Err(format!("route `{id}` has nowhere to send requests"));
        }
        // The lowered meaning must follow from the rest; only what
        // `strip-base-path` removes and `preserve-host` are not written
        // elsewhere.
        let strip_base = match (&r.lowered.upstream_path, r.policy_id(PolicyKind::Rewrite)) {
            (
                UpstreamPath::Prefix {
                    strip: Some(s),
                    add: None,
                },
                None,
            ) => Some(s.as_str()),
            _ => None,
        };
        if let Some(base) = strip_base {
            let lit = r.matcher.path.literal_prefix();
            if !(lit == base || lit.starts_with(&format!("{base}/"))) {
                return Err(format!(
                    "route `{id}` strips `{base}`, which does not begin its path"
                ));
            }
        }
        let mut expected = lower.lower(&r.chain, r.upstream.as_ref(), strip_base);
        // `preserve-host` is a route and api key, not written elsewhere.
        expected.preserve_host = r.lowered.preserve_host;
        if expected != *r.lowered {
            return Err(format!(
                "the lowered meaning of route `{id}` does not follow from its chain and upstreams"
            ));
        }
    }
    if let Some(pid) = ir
        .policies
        .keys()
        .find(|p| !used.contains(&(*p as *const super::PolicyId)))
    {
        return Err(format!("policy `{pid}` is in no route's chain"));
    }
    // A place for every route: as many entries as routes (whose ids are
    // unique), each naming one. Hash lookups: a tree search per route was
    // a tenth of the check.
    if ir.sources.routes.len() != ir.routes.len()
        || ir.sources.routes.keys().any(|id| !ids.contains(id))
    {
        return Err(
            match ir
                .routes
                .iter()
                .find(|r| !ir.sources.routes.contains_key(&r.id))
            {
                Some(r) => format!("the source map has no entry for route `{}`", r.id),
                None => "the source map names routes the IR does not have".to_string(),
            },
        );
    }
    for (id, at) in &ir.sources.routes {
        check_loc(ir, *at, || format!("route `{id}`"))?;
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
