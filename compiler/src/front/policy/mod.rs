//! Decoding each policy kind's options into checked IR values: one module
//! per kind (`request-headers` and `response-headers` share one), and here
//! the entry point and the helpers several kinds use.
//!
//! To add a kind, see `docs/contributing.md`.

mod acl;
mod basic_auth;
mod cache;
mod cors;
mod deprecation;
mod headers;
mod ip_filter;
mod jwt;
mod key_auth;
mod mirror;
mod mock;
mod native;
mod rate_limit;
mod redirect;
mod request_size_limit;
mod rewrite;
mod script;
mod traffic_split;

use super::ast::{NameRef, PolicyAst, RefKind};
use super::decode::{did_you_mean, Cx, Fields};
use super::values::{decode_retry, decode_secret, decode_timeouts, inside_folder, name_at};
use super::yaml::{Node, Value};
use crate::diag::Diagnostic;
use crate::ir::policy::*;
use crate::ir::values::{
    check_header_value, Date, Duration, HeaderMap, HeaderName, HeaderValue, Method, Name, Secret,
};
use crate::ir::PathPattern;
use std::collections::{BTreeMap, BTreeSet};

/// The names a policy's options refer to (acl groups, split upstreams),
/// with where each is written, for resolution to check.
type Refs = Vec<(RefKind, NameRef)>;

/// Decodes the options of one `kind`, recording the names they refer to.
fn decode_options(
    cx: &mut Cx<'_>,
    kind: PolicyKind,
    node: &Node,
    refs: &mut Refs,
    sites: &mut Vec<crate::source::Span>,
) -> Option<Policy> {
    match kind {
        PolicyKind::IpFilter => ip_filter::decode(cx, node),
        PolicyKind::Cors => cors::decode(cx, node),
        PolicyKind::RequestSizeLimit => request_size_limit::decode(cx, node),
        PolicyKind::KeyAuth => key_auth::decode(cx, node),
        PolicyKind::BasicAuth => basic_auth::decode(cx, node),
        PolicyKind::Jwt => jwt::decode(cx, node),
        PolicyKind::Acl => acl::decode(cx, node, refs),
        PolicyKind::RateLimit => rate_limit::decode(cx, node),
        PolicyKind::Deprecation => deprecation::decode(cx, node),
        PolicyKind::Script => script::decode(cx, node, sites),
        PolicyKind::Mock => mock::decode(cx, node),
        PolicyKind::Redirect => redirect::decode(cx, node),
        PolicyKind::RequestHeaders | PolicyKind::ResponseHeaders => headers::decode(cx, kind, node),
        PolicyKind::Rewrite => rewrite::decode(cx, node),
        PolicyKind::Cache => cache::decode(cx, node),
        PolicyKind::Timeout => Some(Policy::Timeout(decode_timeouts(
            cx,
            node,
            "`timeout` options",
        )?)),
        PolicyKind::Retry => Some(Policy::Retry(decode_retry(cx, node, "`retry` options")?)),
        PolicyKind::TrafficSplit => traffic_split::decode(cx, node, refs),
        PolicyKind::Mirror => mirror::decode(cx, node, refs),
        PolicyKind::Native => native::decode(cx, node),
    }
}

/// An object with exactly one key, a policy kind, whose value is its options.
pub fn decode_policy_object(cx: &mut Cx<'_>, node: &Node) -> Option<PolicyAst> {
    let kinds: Vec<&str> = PolicyKind::ALL.iter().map(|k| k.as_str()).collect();
    let entries = cx.map(node, "a policy", "rate-limit: { requests: 100, per: 1m }")?;
    let [entry] = entries else {
        cx.error(
            "policy-shape",
            node.span,
            format!(
                "a policy is an object with exactly one key (its kind), found {} keys",
                entries.len()
            ),
            "write each policy as its own list entry: `- cors: {...}` then `- rate-limit: {...}`",
        );
        return None;
    };
    let Some(kind) = PolicyKind::parse(&entry.key) else {
        cx.error(
            "unknown-policy-kind",
            entry.key_span,
            format!("`{}` is not a policy kind", entry.key),
            did_you_mean(&entry.key, &kinds),
        );
        return None;
    };
    let mut refs = Vec::new();
    let mut sites = Vec::new();
    let opts = &entry.value;
    let policy = decode_options(cx, kind, opts, &mut refs, &mut sites)?;
    let template_keys: &[&str] = match kind {
        PolicyKind::Rewrite => &["path", "strip-prefix"],
        PolicyKind::Redirect => &["to", "path", "replace-prefix"],
        _ => &[],
    };
    let template = match &opts.value {
        Value::Map(entries) => entries
            .iter()
            .find(|e| template_keys.contains(&e.key.as_str()))
            .map(|e| Box::new(e.value.clone())),
        _ => None,
    };
    Some(PolicyAst {
        policy,
        kind_span: entry.key_span,
        refs,
        template,
        sites,
    })
}

fn fields<'n>(
    cx: &mut Cx<'_>,
    kind: PolicyKind,
    node: &'n Node,
    allowed: &[&str],
    example: &str,
) -> Option<Fields<'n>> {
    // A bare `mock:` means "all defaults", like `mock: {}`.
    if node.value == Value::Null {
        return Some(Fields {
            span: node.span,
            entries: &[],
        });
    }
    cx.fields(node, &format!("`{kind}` options"), allowed, example)
}

fn header_map(cx: &mut Cx<'_>, node: &Node, what: &str) -> HeaderMap {
    let mut out = HeaderMap::new();
    for e in cx.map(node, what, "{ x-source: gateway }").unwrap_or(&[]) {
        let name = match e.key.parse::<HeaderName>() {
            Ok(h) => h,
            Err(msg) => {
                cx.error("invalid-header", e.key_span, msg, header_name_help(&e.key));
                continue;
            }
        };
        let value = match &e.value.value {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                cx.error(
                    "wrong-type",
                    e.value.span,
                    format!(
                        "header `{name}` must have a text value, found {}",
                        e.value.value.describe()
                    ),
                    "x-source: gateway",
                );
                continue;
            }
        };
        match value.parse::<HeaderValue>() {
            Ok(value) => {
                out.insert(name, value);
            }
            Err(msg) => {
                let help = if value.contains(['\n', '\r']) {
                    "keep header values on one line"
                } else {
                    "use printable ASCII only; percent-encode other characters"
                };
                cx.error("invalid-header-value", e.value.span, msg, help);
            }
        }
    }
    out
}

/// A list of header names: a set, so order and repeats do not matter.
fn header_list(cx: &mut Cx<'_>, f: &Fields<'_>, key: &str) -> BTreeSet<HeaderName> {
    let Some(n) = f.get(key) else {
        return BTreeSet::new();
    };
    let items = cx
        .list(n, &format!("`{key}`"), "[x-request-id]")
        .unwrap_or(&[]);
    let mut out = Vec::new();
    for item in items {
        let Some(text) = cx.str(item, "a header name", "x-request-id") else {
            continue;
        };
        match text.parse::<HeaderName>() {
            Ok(h) => out.push((h, item)),
            Err(msg) => cx.error("invalid-header", item.span, msg, header_name_help(text)),
        }
    }
    cx.set(&format!("`{key}`"), out)
}

/// What to write instead of an invalid header name.
fn header_name_help(text: &str) -> String {
    let fixed: String = text.trim().trim_end_matches(':').trim().replace(' ', "-");
    if !fixed.is_empty() && fixed != text && fixed.parse::<HeaderName>().is_ok() {
        return format!("write `{fixed}`");
    }
    "use letters, digits and `-`, like `x-request-id`".to_string()
}

fn opt_duration(cx: &mut Cx<'_>, f: &Fields<'_>, key: &str) -> Option<Duration> {
    f.get(key)
        .and_then(|n| cx.duration(n, &format!("`{key}`"), "5s"))
}

fn opt_string(cx: &mut Cx<'_>, f: &Fields<'_>, key: &str, example: &str) -> Option<String> {
    f.get(key)
        .and_then(|n| cx.str(n, &format!("`{key}`"), example))
        .map(str::to_string)
}

/// A YAML node as JSON (mock bodies, native pass-through).
fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Str(s) => J::String(s.to_string()),
        Value::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        // Keys sorted, whatever order they were written in and whichever
        // map serde_json is built with: key order means nothing in JSON, so
        // it must not reach the IR or its hash.
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|e| (e.key.to_string(), to_json(&e.value)))
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect(),
        ),
    }
}
