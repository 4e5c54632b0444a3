//! The route choice as ordered regexes over `"$host $method $gf_path"`.
//!
//! nginx tries a `map`'s regexes in the order written and takes the first
//! that matches: written in IR order, that is the spec's precedence (the
//! first route whose matcher takes host, path and method), whatever
//! nginx's own `location`/`server_name` rules would pick. `$gf_path` is the
//! spec's normalized path (`lua/path.lua`: unreserved escapes decoded, `//`
//! merged, dot segments resolved, `%2F` and other escapes kept), so literal
//! segments are matched as written. nginx's own `$uri` decodes every escape
//! and is never matched.
//!
//! With language 1.1 `match` conditions, each distinct condition set gets a
//! flag (`1` when every condition holds) in `$gf_conds`, computed by Lua
//! before dispatch; every map's source then starts with `"$gf_conds "` and
//! a conditioned route's regexes require its flag, so a request failing
//! the conditions is routed (and counted for 405 and preflights) as if the
//! route did not exist.

use crate::escape;
use gatefold_compiler::ir::{
    Conditions, HostPattern, Ir, Matcher, Method, PathPattern, PolicyKind, Segment,
};
use std::collections::BTreeMap;

/// The route tables, one per first path segment.
pub struct Dispatch {
    /// Bucket 0 takes paths whose first segment no route names literally
    /// (and `/`); the others one literal first segment each.
    pub buckets: Vec<Bucket>,
    describe: Vec<String>,
    /// The distinct condition sets, in IR order of first use: flag `k` of
    /// `$gf_conds` is set `k`'s. Empty when no route has `match`.
    pub conditions: Vec<Conditions>,
}

/// The routes that can take a path whose first segment is `first`: those
/// naming it literally and those whose first segment is a parameter (or
/// `/`, `/*`), in IR order. A `map` over the first segment of `$gf_path`
/// (exact strings, a hash lookup) finds the bucket, and the bucket's map
/// tries only its routes.
pub struct Bucket {
    /// The first segment, in ASCII lower case; `None` for bucket 0.
    pub first: Option<String>,
    /// `(regex over "$host $method $gf_path", route index)`, in IR order.
    pub routes: Vec<(String, usize)>,
    /// Per method (in `allow` order): PCRE patterns over `"$host $gf_path"`
    /// of the routes with that method (for `miss.lua`'s `ngx.re`, so
    /// without a `map`'s `~`).
    pub allow: BTreeMap<Method, Vec<String>>,
    /// Over `"$host $acrm $gf_path"`: `pre_rN` for routes with cors, else
    /// none; cut after the last route with cors (the rest would answer none).
    pub preflight: Vec<(String, Option<String>)>,
}

impl Dispatch {
    /// The route's matcher in words, for a comment.
    pub fn describe(&self, i: usize) -> &str {
        &self.describe[i]
    }
}

pub fn dispatch(ir: &Ir) -> Dispatch {
    let mut conditions: Vec<Conditions> = Vec::new();
    for r in &ir.routes {
        let c = &r.matcher.conditions;
        if !c.is_empty() && !conditions.contains(c) {
            conditions.push(c.clone());
        }
    }
    // The flags' prefix of each regex: any flags, or flag k set.
    let flags = |c: &Conditions| -> String {
        if conditions.is_empty() {
            return String::new();
        }
        match conditions.iter().position(|x| x == c) {
            Some(k) if !c.is_empty() => format!("[01]{{{k}}}1[01]* "),
            _ => "[01]* ".to_string(),
        }
    };
    let mut firsts: Vec<String> = Vec::new();
    for r in &ir.routes {
        if let Some(l) = bucket_key(&r.matcher.path) {
            if !firsts.contains(&l) {
                firsts.push(l);
            }
        }
    }
    firsts.sort();
    let mut buckets: Vec<Bucket> = std::iter::once(None)
        .chain(firsts.into_iter().map(Some))
        .map(|first| Bucket {
            first,
            routes: Vec::new(),
            allow: BTreeMap::new(),
            preflight: Vec::new(),
        })
        .collect();
    let index: BTreeMap<String, usize> = buckets
        .iter()
        .enumerate()
        .filter_map(|(k, b)| Some((b.first.clone()?, k)))
        .collect();
    let mut last_cors = vec![None; buckets.len()];
    let mut describe = Vec::with_capacity(ir.routes.len());
    for (i, r) in ir.routes.iter().enumerate() {
        let m = &r.matcher;
        let host = host_regex(m);
        let path = path_regex(&m.path);
        let methods = method_regex(m);
        let flag = flags(&m.conditions);
        let full = format!("~(?s)^{flag}{host} {methods} {path}\\z");
        let cors = r.policy_id(PolicyKind::Cors).is_some();
        let targets: Vec<usize> = match bucket_key(&m.path) {
            Some(l) => vec![index[&l]],
            None => (0..buckets.len()).collect(),
        };
        for k in targets {
            let b = &mut buckets[k];
            b.routes.push((full.clone(), i));
            if let Some(ms) = &m.methods {
                for method in ms {
                    b.allow
                        .entry(*method)
                        .or_default()
                        .push(format!("(?s)^{flag}{host} {path}\\z"));
                }
            }
            if cors {
                last_cors[k] = Some(b.preflight.len());
            }
            b.preflight
                .push((full.clone(), cors.then(|| format!("pre_r{i}"))));
        }
        describe.push(format!(
            "{} {}{}",
            m.methods.as_ref().map_or("*".to_string(), |ms| ms
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(",")),
            if m.hosts.is_empty() {
                String::new()
            } else {
                format!(
                    "{} ",
                    m.hosts
                        .iter()
                        .map(|h| h.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            },
            m.path
        ));
    }
    for (b, last) in buckets.iter_mut().zip(last_cors) {
        b.preflight.truncate(last.map_or(0, |n| n + 1));
    }
    Dispatch {
        buckets,
        describe,
        conditions,
    }
}

/// The first segment of every path a route takes, in ASCII lower case;
/// `None` when it varies (a parameter first, `/`, `/*`). nginx's `map`
/// compares strings ignoring case, so `/items` and `/Items` share a bucket
/// (two keys would be a conflict `nginx -t` refuses); the bucket's regexes
/// still tell them apart.
fn bucket_key(p: &PathPattern) -> Option<String> {
    match p.segments.first() {
        Some(Segment::Literal(l)) => {
            let first = l.split('/').next().unwrap_or("").to_ascii_lowercase();
            (!first.is_empty()).then_some(first)
        }
        _ => None,
    }
}

fn host_regex(m: &Matcher) -> String {
    if m.hosts.is_empty() {
        return "[^ ]*".to_string();
    }
    let alts: Vec<String> = m
        .hosts
        .iter()
        .map(|h| match h {
            HostPattern::Exact(h) => escape::regex(h),
            // One or more labels before the suffix.
            HostPattern::Wildcard(suffix) => format!("[^ ]+{}", escape::regex(suffix)),
        })
        .collect();
    format!("(?:{})", alts.join("|"))
}

fn method_regex(m: &Matcher) -> String {
    match &m.methods {
        None => "[^ ]+".to_string(),
        Some(ms) => format!(
            "(?:{})",
            ms.iter().map(|m| m.as_str()).collect::<Vec<_>>().join("|")
        ),
    }
}

fn segments_regex(p: &PathPattern, capture: bool) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut names = Vec::new();
    for s in &p.segments {
        out.push('/');
        match s {
            Segment::Literal(l) => out.push_str(&escape::regex(l)),
            Segment::Param(name) if capture => {
                out.push_str(&format!("(?<gf_p{}>[^/]+)", names.len()));
                names.push(name.to_string());
            }
            Segment::Param(_) => out.push_str("[^/]+"),
        }
    }
    if p.prefix {
        // `/a/*` takes `/a`, `/a/` and everything below; `/*` every path.
        if out.is_empty() {
            out.push_str("/.*");
        } else {
            out.push_str("(?:/.*)?");
        }
    } else if out.is_empty() {
        out.push('/');
    }
    (out, names)
}

/// The path part of a route's regex.
pub fn path_regex(p: &PathPattern) -> String {
    segments_regex(p, false).0
}

/// A regex over `$gf_path` binding each `{param}` to `gf_pN` (N: its position),
/// and the param names in order.
pub fn capture_regex(p: &PathPattern) -> (String, Vec<String>) {
    let (re, names) = segments_regex(p, true);
    (format!("~(?s)^{re}\\z"), names)
}
