//! `request-headers`: request and response header transforms (`set`, `add`, `remove`),
//! shared by `request-headers` and `response-headers`.

use super::*;

/// Decodes `request-headers` or `response-headers` options (`kind`).
pub(super) fn decode(cx: &mut Cx<'_>, kind: PolicyKind, node: &Node) -> Option<Policy> {
    let what = format!("`{kind}`");
    let f = fields(
        cx,
        kind,
        node,
        &["set", "add", "remove"],
        "request-headers: { set: { x-source: gateway } }",
    )?;
    let t = HeaderTransform {
        set: f
            .get("set")
            .map(|n| header_map(cx, n, "`set`"))
            .unwrap_or_default(),
        add: f
            .get("add")
            .map(|n| header_map(cx, n, "`add`"))
            .unwrap_or_default(),
        remove: header_list(cx, &f, "remove").into_iter().collect(),
    };
    if f.entries.is_empty() {
        cx.missing(&f, "set", &what, "set: { x-source: gateway }");
        return None;
    }
    for e in f.entries {
        cx.non_empty(
            &e.value,
            &format!("`{}`", e.key),
            "it changes no header",
            &format!("list headers under `{}`, or remove it", e.key),
        );
    }
    check_header_targets(cx, kind, &f);
    Some(if kind == PolicyKind::RequestHeaders {
        Policy::RequestHeaders(t)
    } else {
        Policy::ResponseHeaders(t)
    })
}

/// Headers that belong to one connection, not to the message: each hop
/// sets them itself, so a policy that changed them would break framing.
const CONNECTION_HEADERS: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
];

/// Checks the headers a `request-headers`/`response-headers` policy names:
/// each in one of `set`/`add`/`remove` only, and none that belongs to the
/// connection. `host` may only be `set`, and only on the request.
fn check_header_targets(cx: &mut Cx<'_>, kind: PolicyKind, f: &Fields<'_>) {
    let mut seen: Vec<(HeaderName, &str, crate::source::Span)> = Vec::new();
    for section in ["set", "add", "remove"] {
        let Some(node) = f.get(section) else { continue };
        let named: Vec<(&str, crate::source::Span, Option<&str>)> = match &node.value {
            Value::Map(entries) => entries
                .iter()
                .map(|e| match &e.value.value {
                    Value::Str(v) => (e.key.as_str(), e.key_span, Some(v.as_str())),
                    _ => (e.key.as_str(), e.key_span, None),
                })
                .collect(),
            Value::Seq(items) => items
                .iter()
                .filter_map(|i| match &i.value {
                    Value::Str(t) => Some((t.as_str(), i.span, None)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for (text, span, value) in named {
            let Ok(name) = text.parse::<HeaderName>() else {
                continue;
            };
            if let Some((_, first, first_span)) = seen.iter().find(|(n, ..)| *n == name) {
                if *first == section && section == "remove" {
                    continue; // a repeat in a list: reported as a duplicate entry
                }
                let msg = if *first == section {
                    format!(
                        "header `{name}` is given twice in `{section}` (header names ignore case)"
                    )
                } else {
                    format!("header `{name}` is in both `{first}` and `{section}`")
                };
                cx.diags.push(
                    Diagnostic::error("header-conflict", span, msg)
                        .with_related(*first_span, format!("first in `{first}` here"))
                        .with_help("keep it in one place: `set` replaces a header, `add` appends a line, `remove` deletes it"),
                );
                continue;
            }
            check_connection_header(cx, kind, section, &name, span, value);
            seen.push((name, section, span));
        }
    }
}

/// Reports a connection-level header in a header transform.
fn check_connection_header(
    cx: &mut Cx<'_>,
    kind: PolicyKind,
    section: &str,
    name: &HeaderName,
    span: crate::source::Span,
    value: Option<&str>,
) {
    let n = name.as_str();
    if !CONNECTION_HEADERS.contains(&n) {
        return;
    }
    let (msg, help) = match n {
        "host" if kind == PolicyKind::RequestHeaders && section == "set" => return,
        "host" if kind == PolicyKind::RequestHeaders => (
            format!("`host` cannot be `{section}`: a request has exactly one host"),
            format!(
                "to choose the host the upstream sees, write `set: {{ host: {} }}`",
                value.unwrap_or("api.internal.example")
            ),
        ),
        "host" => (
            "`host` is a request header; responses do not carry it".to_string(),
            "remove it".to_string(),
        ),
        "content-length" => (
            "`content-length` cannot be changed: the gateway sets it from the body it sends".to_string(),
            "remove it".to_string(),
        ),
        _ => (
            format!("`{n}` is a connection-level header: each hop sets its own, so `{kind}` cannot change it"),
            "remove it; the gateway manages connection headers itself".to_string(),
        ),
    };
    cx.error("connection-header", span, msg, help);
}
