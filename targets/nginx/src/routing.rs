//! The route choice as ordered regexes over `"$host $method $uri"`.
//!
//! nginx tries a `map`'s regexes in the order written and takes the first
//! that matches: written in IR order, that is the spec's precedence (the
//! first route whose matcher takes host, path and method), whatever
//! nginx's own `location`/`server_name` rules would pick. `$uri` is nginx's
//! normalized path (percent-decoded, `//` merged, dot segments resolved),
//! so literal segments are matched decoded.

use crate::escape;
use gatefold_compiler::ir::{HostPattern, Ir, Matcher, Method, PathPattern, PolicyKind, Segment};
use std::collections::BTreeMap;

/// The maps' entries.
pub struct Dispatch {
    /// `(regex over "$host $method $uri", route index)`, in IR order.
    pub routes: Vec<(String, usize)>,
    /// Per method (in `allow` order): regexes over `"$host $uri"` of the routes with that method.
    pub allow: BTreeMap<Method, Vec<String>>,
    /// Over `"$host $acrm $uri"`: `pre_rN` for routes with cors, else none;
    /// cut after the last route with cors (the rest would answer none).
    pub preflight: Vec<(String, Option<String>)>,
    describe: Vec<String>,
}

impl Dispatch {
    /// The route's matcher in words, for a comment.
    pub fn describe(&self, i: usize) -> &str {
        &self.describe[i]
    }
}

pub fn dispatch(ir: &Ir) -> Dispatch {
    let mut d = Dispatch {
        routes: Vec::with_capacity(ir.routes.len()),
        allow: BTreeMap::new(),
        preflight: Vec::new(),
        describe: Vec::with_capacity(ir.routes.len()),
    };
    let mut last_cors = None;
    for (i, r) in ir.routes.iter().enumerate() {
        let m = &r.matcher;
        let host = host_regex(m);
        let path = path_regex(&m.path);
        let methods = method_regex(m);
        let full = format!("~(?s)^{host} {methods} {path}\\z");
        d.routes.push((full.clone(), i));
        if let Some(ms) = &m.methods {
            for method in ms {
                d.allow
                    .entry(*method)
                    .or_default()
                    .push(format!("~(?s)^{host} {path}\\z"));
            }
        }
        let cors = r.policy_id(PolicyKind::Cors).is_some();
        if cors {
            last_cors = Some(i);
        }
        d.preflight.push((full, cors.then(|| format!("pre_r{i}"))));
        d.describe.push(format!(
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
    d.preflight.truncate(last_cors.map_or(0, |i| i + 1));
    d
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

/// Percent-decodes a literal, as nginx decodes `$uri`.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn segments_regex(p: &PathPattern, capture: bool) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut names = Vec::new();
    for s in &p.segments {
        out.push('/');
        match s {
            Segment::Literal(l) => out.push_str(&escape::regex(&decode(l))),
            Segment::Param(name) if capture => {
                out.push_str(&format!("(?<gf_p{}>[^/]+)", names.len()));
                names.push(name.clone());
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

/// A regex over `$uri` binding each `{param}` to `gf_pN` (N: its position),
/// and the param names in order.
pub fn capture_regex(p: &PathPattern) -> (String, Vec<String>) {
    let (re, names) = segments_regex(p, true);
    (format!("~(?s)^{re}\\z"), names)
}
