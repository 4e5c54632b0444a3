//! A route's `match`: the header and query conditions it requires.

use super::decode::Cx;
use super::yaml::{Node, Value};
use crate::diag::Diagnostic;
use crate::ir::values::{HeaderName, HeaderValue};
use crate::ir::{Conditions, QueryText};
use std::collections::BTreeMap;

const EXAMPLE: &str = "match: { headers: { x-version: \"2\" }, query: { format: json } }";

/// Headers a condition may not name, with why and what to write instead.
fn refused_header(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "host" => (
            "the host is matched by the api's `hosts`",
            "list the host in the api's `hosts` instead",
        ),
        "connection" | "keep-alive" | "proxy-connection" | "te" | "transfer-encoding"
        | "upgrade" => (
            "it describes the connection, not the request, and differs between HTTP/1.1 and HTTP/2",
            "match on a header of the request itself",
        ),
        _ => return None,
    })
}

/// Decodes `match:`; `None` when it could not be read (reported).
pub fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Conditions> {
    let f = cx.fields(node, "`match`", &["headers", "query"], EXAMPLE)?;
    if f.entries.is_empty() {
        cx.error(
            "empty-match",
            node.span,
            "`match` is empty: a route with no condition matches without `match`",
            format!("give conditions, like `{EXAMPLE}`, or remove `match`"),
        );
        return None;
    }
    let mut ok = true;
    let mut out = Conditions::default();
    if let Some(h) = f.get("headers") {
        match entries(cx, h, "headers", "x-version: \"2\"") {
            Some(list) => {
                let mut seen = BTreeMap::new();
                for (key, key_span, value) in list {
                    ok &= header(cx, key, key_span, value, &mut out.headers, &mut seen);
                }
            }
            None => ok = false,
        }
    }
    if let Some(q) = f.get("query") {
        match entries(cx, q, "query", "format: json") {
            Some(list) => {
                for (key, key_span, value) in list {
                    ok &= param(cx, key, key_span, value, &mut out.query);
                }
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

type Listed<'n> = Vec<(&'n str, crate::source::Span, &'n Node)>;

/// The entries of `match.headers` or `match.query`: a non-empty mapping.
fn entries<'n>(cx: &mut Cx<'_>, node: &'n Node, key: &str, example: &str) -> Option<Listed<'n>> {
    let what = format!("`match.{key}`");
    let list = cx.map(node, &what, &format!("{key}: {{ {example} }}"))?;
    if list.is_empty() {
        cx.error(
            "empty-match",
            node.span,
            format!("{what} is empty, so it adds no condition"),
            format!("add one, like `{key}: {{ {example} }}`, or remove `{key}`"),
        );
        return None;
    }
    Some(
        list.iter()
            .map(|e| (e.key.as_str(), e.key_span, &e.value))
            .collect(),
    )
}

/// A condition's value: a string, exactly as the request must carry it.
/// Numbers and booleans are refused, not converted: YAML reads `2.0` as
/// `2` and `010` as `10`, so the text compared would not be the text
/// written.
fn value_text<'n>(cx: &mut Cx<'_>, node: &'n Node, what: &str) -> Option<&'n str> {
    match &node.value {
        Value::Str(s) => Some(s),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
            let written = cx_written(node);
            cx.error(
                "wrong-type",
                node.span,
                format!(
                    "{what} must be a string, found {}: the request is compared as text",
                    node.value.describe()
                ),
                format!("quote it: `\"{written}\"`"),
            );
            None
        }
        _ => cx.str(node, what, "\"2\""),
    }
}

/// The scalar as the spec wrote it, for a "quote it" help.
fn cx_written(node: &Node) -> String {
    match &node.value {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f:?}"),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn header(
    cx: &mut Cx<'_>,
    key: &str,
    key_span: crate::source::Span,
    node: &Node,
    out: &mut BTreeMap<HeaderName, HeaderValue>,
    seen: &mut BTreeMap<HeaderName, (String, crate::source::Span)>,
) -> bool {
    let name = match key.parse::<HeaderName>() {
        Ok(n) => n,
        Err(msg) => {
            cx.error(
                "invalid-header",
                key_span,
                format!("`match.headers`: {msg}"),
                "for example `x-version`",
            );
            return false;
        }
    };
    if let Some((why, help)) = refused_header(name.as_str()) {
        cx.error(
            "invalid-header",
            key_span,
            format!("`match.headers` may not name `{name}`: {why}"),
            help,
        );
        return false;
    }
    let what = format!("the value of header `{name}`");
    let Some(text) = value_text(cx, node, &what) else {
        return false;
    };
    if text != text.trim_matches([' ', '\t']) {
        cx.error(
            "invalid-header-value",
            node.span,
            format!(
                "{what} starts or ends with a blank, which no request can carry (HTTP drops them)"
            ),
            format!("write `\"{}\"`", text.trim_matches([' ', '\t'])),
        );
        return false;
    }
    let value = match text.parse::<HeaderValue>() {
        Ok(v) => v,
        Err(msg) => {
            cx.error(
                "invalid-header-value",
                node.span,
                format!("{what}: {msg}"),
                "for example `\"2\"`",
            );
            return false;
        }
    };
    if let Some((first, first_span)) = seen.get(&name) {
        // Two spellings of one name (`X-Version`, `x-version`): names ignore case.
        cx.diags.push(
            Diagnostic::error(
                "duplicate-condition",
                key_span,
                format!("`{key}` and `{first}` are one header in `match.headers`: header names ignore case"),
            )
            .with_related(*first_span, format!("`{first}` is given here"))
            .with_help("keep one condition per header"),
        );
        return false;
    }
    seen.insert(name.clone(), (key.to_string(), key_span));
    out.insert(name, value);
    true
}

fn param(
    cx: &mut Cx<'_>,
    key: &str,
    key_span: crate::source::Span,
    node: &Node,
    out: &mut BTreeMap<QueryText, QueryText>,
) -> bool {
    let name = match QueryText::name(key) {
        Ok(n) => n,
        Err(msg) => {
            cx.error(
                "invalid-query-param",
                key_span,
                format!("`match.query`: {msg}"),
                "for example `format`",
            );
            return false;
        }
    };
    let what = format!("the value of query parameter `{name}`");
    let Some(text) = value_text(cx, node, &what) else {
        return false;
    };
    match text.parse::<QueryText>() {
        Ok(v) => {
            out.insert(name, v);
            true
        }
        Err(msg) => {
            cx.error(
                "invalid-query-param",
                node.span,
                format!("{what}: {msg}"),
                "for example `json`",
            );
            false
        }
    }
}
