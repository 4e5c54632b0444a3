//! `script`: request and response script sources.

use super::*;

/// Decodes `script` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::Script;
    let what = format!("`{kind}`");
    let f = fields(
        cx,
        kind,
        node,
        &["request", "response"],
        "script: { request: \"req.setHeader('x-a', '1');\" }",
    )?;
    let request = opt_string(cx, &f, "request", "req.setHeader('x-a', '1');");
    let response = opt_string(cx, &f, "response", "res.setHeader('x-a', '1');");
    if request.is_none() && response.is_none() {
        cx.missing(
            &f,
            "request",
            &what,
            "request: |\n  req.setHeader(\"x-a\", \"1\");",
        );
        return None;
    }
    Some(Policy::Script(Script { request, response }))
}
