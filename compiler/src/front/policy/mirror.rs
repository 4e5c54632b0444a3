//! `mirror` (language 1.1): the upstream a copy of the request goes to,
//! and the share of requests copied.

use super::*;

/// Decodes `mirror` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node, refs: &mut Refs) -> Option<Policy> {
    let kind = PolicyKind::Mirror;
    let what = format!("`{kind}`");
    let f = fields(
        cx,
        kind,
        node,
        &["upstream", "percent"],
        "mirror: { upstream: shadow, percent: 10 }",
    )?;
    let upstream = cx
        .required(&f, "upstream", &what, "upstream: shadow")
        .and_then(|n| {
            let text = cx.str(n, "`upstream`", "shadow")?;
            let name = name_at(cx, text, n.span, "upstream")?;
            refs.push((
                RefKind::Upstream,
                NameRef {
                    name: name.clone(),
                    span: n.span,
                },
            ));
            Some(name)
        });
    let percent = match f.get("percent") {
        // Every request, unless a share is given.
        None => Some(100),
        Some(n) => cx.int(n, "`percent`", 0, 100).map(|p| p as u8),
    };
    Some(Policy::Mirror(Mirror {
        upstream: upstream?,
        percent: percent?,
    }))
}
