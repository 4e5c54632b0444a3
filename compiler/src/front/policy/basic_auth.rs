//! `basic-auth`: the realm of the `www-authenticate` challenge.

use super::*;

/// Decodes `basic-auth` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::BasicAuth;
    let f = fields(cx, kind, node, &["realm"], "basic-auth: { realm: pets }")?;
    let realm = opt_string(cx, &f, "realm", "pets").unwrap_or_else(|| "gatefold".into());
    if realm.contains(['"', '\\']) || check_header_value(&realm).is_err() {
        cx.error(
            "invalid-option",
            f.get("realm").map_or(f.span, |n| n.span),
            "a realm may not contain quotes, backslashes or control characters",
            "realm: pets",
        );
        return None;
    }
    Some(Policy::BasicAuth(BasicAuth { realm }))
}
