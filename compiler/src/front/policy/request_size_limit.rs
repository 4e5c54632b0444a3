//! `request-size-limit`: the largest request body.

use super::*;

/// Decodes `request-size-limit` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::RequestSizeLimit;
    let what = format!("`{kind}`");
    let f = fields(
        cx,
        kind,
        node,
        &["max"],
        "request-size-limit: { max: 1MiB }",
    )?;
    let n = cx.required(&f, "max", &what, "max: 1MiB")?;
    Some(Policy::RequestSizeLimit(RequestSizeLimit {
        max: cx.positive_size(n, "`max`", "1MiB")?,
    }))
}
