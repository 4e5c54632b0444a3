//! `mock`: the status, headers and body of an answer without the upstream.

use super::*;

/// Decodes `mock` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::Mock;
    let f = fields(
        cx,
        kind,
        node,
        &["status", "headers", "body", "json"],
        "mock: { status: 200, json: { ok: true } }",
    )?;
    let status = f
        .get("status")
        .map_or(Some(200), |n| cx.int(n, "`status`", 100, 599))? as u16;
    let headers = f
        .get("headers")
        .map(|n| header_map(cx, n, "mock `headers`"))
        .unwrap_or_default();
    let body = match (f.get("body"), f.get("json")) {
        (Some(_), Some(j)) => {
            cx.error(
                "conflicting-options",
                j.span,
                "`mock` takes `body` or `json`, not both",
                "keep one of them",
            );
            return None;
        }
        (Some(b), None) => MockBody::Text(cx.str(b, "`body`", "gone")?.to_string()),
        (None, Some(j)) => MockBody::Json(to_json(j)),
        (None, None) => MockBody::Empty,
    };
    let body_node = f.get("body").or(f.get("json"));
    if let Some(b) = body_node.filter(|_| no_body_status(status)) {
        cx.diags.push(
            Diagnostic::error(
                "mock-body-not-allowed",
                b.span,
                format!("a {status} response has no body, so this one could not be sent"),
            )
            .with_related(
                f.get("status").map_or(f.span, |n| n.span),
                "status given here",
            )
            .with_help("remove the body, or use a status that carries one, like 200 or 410"),
        );
    }
    Some(Policy::Mock(Mock {
        status,
        headers,
        body,
    }))
}

/// Statuses whose responses never carry a body (RFC 9110).
fn no_body_status(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}
