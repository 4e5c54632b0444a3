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
        .filter_map(|item| Some((cidr(cx, item)?, item)))
        .collect();
    cx.set(&format!("`{key}`"), nets)
}

fn cidr(cx: &mut Cx<'_>, item: &Node) -> Option<ipnet::IpNet> {
    let text = cx.str(item, "an address", "10.0.0.0/8")?;
    let net = text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    });
    let Some(net) = net else {
        cx.error(
            "invalid-cidr",
            item.span,
            format!("`{text}` is not an IP address or CIDR block"),
            "write `10.0.0.0/8`, `192.0.2.7` or `2001:db8::/32`",
        );
        return None;
    };
    if net != net.trunc() {
        // Silently truncating would hide a typo that widens or moves the block.
        cx.error(
            "invalid-cidr",
            item.span,
            format!(
                "`{text}` has bits set below its /{} prefix, so it is not the start of a block",
                net.prefix_len()
            ),
            format!(
                "write the block as `{}`, or the single address as `{}`",
                net.trunc(),
                net.addr()
            ),
        );
        return None;
    }
    Some(net)
}
