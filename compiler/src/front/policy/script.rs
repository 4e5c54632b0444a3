//! `script`: request and response scripts, compiled to the script IR.

use super::*;
use crate::front::script;
use crate::ir::script::Side;
use crate::source::Span;

/// Decodes `script` options; `sites` receives the spec place of each
/// run-time failure site (the request script's first).
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node, sites: &mut Vec<Span>) -> Option<Policy> {
    let kind = PolicyKind::Script;
    let what = format!("`{kind}`");
    let f = fields(
        cx,
        kind,
        node,
        &["request", "response"],
        "script: { request: \"req.setHeader('x-a', '1');\" }",
    )?;
    let mut failed = false;
    let mut side = |cx: &mut Cx<'_>, key: &str, side: Side, example: &str| {
        let node = f.get(key)?;
        let Some(source) = cx.str(node, &format!("`{key}`"), example) else {
            failed = true;
            return None;
        };
        // The response script's sites are numbered after the request's.
        let compiled = script::compile(cx, node, source, side, sites.len() as u32);
        match compiled {
            Some(c) => {
                sites.extend(c.sites);
                Some(c.program)
            }
            None => {
                failed = true;
                None
            }
        }
    };
    let request = side(cx, "request", Side::Request, "req.setHeader('x-a', '1');");
    let response = side(cx, "response", Side::Response, "res.setHeader('x-a', '1');");
    if failed {
        return None;
    }
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
