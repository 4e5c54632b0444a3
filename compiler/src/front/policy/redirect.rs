//! `redirect`: the `location` and the status.

use super::*;

/// Decodes `redirect` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::Redirect;
    let what = format!("`{kind}`");
    let f = fields(
        cx,
        kind,
        node,
        &["to", "status"],
        "redirect: { to: \"https://example.com/new\", status: 301 }",
    )?;
    let to_node = cx.required(&f, "to", &what, "to: https://example.com/new")?;
    let to = cx
        .str(to_node, "`to`", "https://example.com/new")?
        .to_string();
    if to.starts_with("//") {
        // A scheme-relative `//host` would send clients to another site.
        cx.error(
            "invalid-url",
            to_node.span,
            format!("`{to}` starts with `//`, which browsers read as another host"),
            "write an absolute URL with its scheme (`https://example.com/new`) or a path with one leading `/`",
        );
    } else if !(to.starts_with("https://") || to.starts_with("http://") || to.starts_with('/'))
        || check_header_value(&to).is_err()
        || to.contains(' ')
    {
        cx.error(
            "invalid-url",
            to_node.span,
            format!("`{to}` is not a redirect target"),
            "write an absolute URL (`https://example.com/new`) or a path (`/v2/items/{id}`)",
        );
    }
    let status = match f.get("status") {
        None => RedirectStatus::Found,
        Some(n) => match cx.int(n, "`status`", 100, 599)? {
            s if RedirectStatus::from_code(s as u16).is_some() => {
                RedirectStatus::from_code(s as u16).expect("checked")
            }
            s => {
                cx.error(
                    "invalid-option",
                    n.span,
                    format!("redirect `status: {s}` is not supported"),
                    "use 301 or 308 (permanent), 302 or 307 (temporary)",
                );
                return None;
            }
        },
    };
    Some(Policy::Redirect(Redirect { to, status }))
}
