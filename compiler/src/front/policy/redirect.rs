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
    let text = cx.str(to_node, "`to`", "https://example.com/new")?;
    let to = match text.parse::<RedirectTo>() {
        Ok(to) => to,
        Err(msg) => {
            let help = if text.starts_with("//") {
                "write an absolute URL with its scheme (`https://example.com/new`) or a path with one leading `/`"
            } else {
                "write an absolute URL (`https://example.com/new`) or a path (`/v2/items/{id}`)"
            };
            cx.error("invalid-url", to_node.span, msg, help);
            // The error stops compilation; the route still has its redirect,
            // so what it would lack without one is not reported as well.
            RedirectTo {
                origin: None,
                path: "/".to_string(),
                query: None,
                fragment: None,
            }
        }
    };
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
