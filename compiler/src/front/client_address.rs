//! `gateway.baseline.client-address`: where the client address comes from.

use super::decode::{did_you_mean, Cx};
use super::yaml::{Node, Value};
use crate::ir::request::{ClientAddress, ForwardedHeader};
use crate::ir::HeaderName;
use ipnet::IpNet;
use std::collections::BTreeSet;

const WHAT: &str = "baseline `client-address`";
const EXAMPLE: &str = "client-address: { trusted-proxies: [10.0.0.0/8] }";

/// `peer`, `{ trusted-proxies: [CIDR...], header: x-forwarded-for | forwarded }`
/// or `{ platform-header: NAME }`.
pub fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<ClientAddress> {
    if let Value::Str(s) = &node.value {
        if s == "peer" {
            return Some(ClientAddress::Peer);
        }
        cx.error(
            "invalid-client-address",
            node.span,
            format!("{WHAT} `{s}` is not a source"),
            format!("write `peer` (the TCP peer, the default), or `{EXAMPLE}` behind proxies, or `client-address: {{ platform-header: cf-connecting-ip }}`"),
        );
        return None;
    }
    let f = cx.fields(
        node,
        WHAT,
        &["trusted-proxies", "header", "platform-header"],
        EXAMPLE,
    )?;
    match (f.get("trusted-proxies"), f.get("platform-header")) {
        (Some(_), Some(p)) => {
            cx.error(
                "invalid-client-address",
                p.span,
                format!("{WHAT} takes `trusted-proxies` or `platform-header`, not both"),
                "keep `trusted-proxies` when proxies you run add `x-forwarded-for`; keep `platform-header` when a platform sets the address for every request",
            );
            None
        }
        (Some(list), None) => {
            let proxies = proxies(cx, list)?;
            let header = match f.get("header") {
                None => ForwardedHeader::default(),
                Some(h) => forwarded_header(cx, h)?,
            };
            Some(ClientAddress::TrustedProxies { proxies, header })
        }
        (None, Some(p)) => {
            if let Some(h) = f.get("header") {
                cx.error(
                    "invalid-client-address",
                    h.span,
                    "`header` goes with `trusted-proxies`; `platform-header` names its own header",
                    "remove `header`",
                );
            }
            let name: HeaderName = cx.parse(
                p,
                "`platform-header`",
                "invalid-header-name",
                "cf-connecting-ip",
            )?;
            if let Some(list) = [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded]
                .into_iter()
                .find(|h| h.name() == name.as_str())
            {
                cx.error(
                    "invalid-client-address",
                    p.span,
                    format!("`{}` is a list any client can start, not one address a platform sets", list.name()),
                    format!("write `client-address: {{ trusted-proxies: [10.0.0.0/8], header: {} }}` with the addresses of your proxies", list.name()),
                );
                return None;
            }
            Some(ClientAddress::PlatformHeader(name))
        }
        (None, None) => {
            cx.missing(&f, "trusted-proxies", WHAT, "trusted-proxies: [10.0.0.0/8]");
            None
        }
    }
}

fn forwarded_header(cx: &mut Cx<'_>, node: &Node) -> Option<ForwardedHeader> {
    let text = cx.str(node, "`header`", "x-forwarded-for")?;
    let all = [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded];
    match all
        .into_iter()
        .find(|h| h.name() == text.to_ascii_lowercase())
    {
        Some(h) => Some(h),
        None => {
            cx.error(
                "invalid-client-address",
                node.span,
                format!("`{text}` is not a header trusted proxies write"),
                did_you_mean(text, &all.map(ForwardedHeader::name)),
            );
            None
        }
    }
}

/// The trusted proxies: addresses and blocks (none with host bits set), a set.
fn proxies(cx: &mut Cx<'_>, node: &Node) -> Option<BTreeSet<IpNet>> {
    let what = "`trusted-proxies`";
    if !cx.non_empty(
        node,
        what,
        "no peer would be trusted",
        "list your proxies' addresses, like `[10.0.0.0/8]`, or write `client-address: peer`",
    ) {
        return None;
    }
    let items = cx.list(node, what, "[10.0.0.0/8]")?;
    let mut nets = Vec::new();
    let mut ok = true;
    for item in items {
        match super::values::cidr(cx, item, "a trusted proxy") {
            Some(n) => nets.push((n, item)),
            None => ok = false,
        }
    }
    let set = cx.set(what, nets);
    ok.then_some(set)
}
