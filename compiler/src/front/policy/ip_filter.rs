//! `ip-filter`: allow and deny lists of addresses and CIDR blocks.

use super::*;

/// Decodes `ip-filter` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::IpFilter;
    let what = format!("`{kind}`");
    let f = fields(
        cx,
        kind,
        node,
        &["allow", "deny"],
        "ip-filter: { allow: [10.0.0.0/8] }",
    )?;
    let allow = f
        .get("allow")
        .map(|n| cidrs(cx, n, "allow"))
        .unwrap_or_default();
    let deny = f
        .get("deny")
        .map(|n| cidrs(cx, n, "deny"))
        .unwrap_or_default();
    if f.get("allow").is_none() && f.get("deny").is_none() {
        cx.missing(&f, "allow", &what, "allow: [10.0.0.0/8]");
        return None;
    }
    Some(Policy::IpFilter(IpFilter { allow, deny }))
}

/// An `ip-filter` list: addresses and blocks, none with host bits set; a
/// set, so order and repeats do not matter.
fn cidrs(cx: &mut Cx<'_>, node: &Node, key: &str) -> BTreeSet<ipnet::IpNet> {
    let why = if key == "allow" {
        "leave `allow` out to let every address through, or list the addresses that may pass"
    } else {
        "leave `deny` out, or list the addresses to refuse"
    };
    if !cx.non_empty(node, &format!("`{key}`"), "it would match no address", why) {
        return BTreeSet::new();
    }
    let items = cx
        .list(node, &format!("`{key}`"), "[10.0.0.0/8]")
        .unwrap_or(&[]);
    let nets: Vec<_> = items
        .iter()
        .filter_map(|item| Some((crate::front::values::cidr(cx, item, "an address")?, item)))
        .collect();
    cx.set(&format!("`{key}`"), nets)
}
