//! `acl`: allow or deny by consumer group.

use super::*;

/// Decodes `acl` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node, refs: &mut Refs) -> Option<Policy> {
    let kind = PolicyKind::Acl;
    let what = format!("`{kind}`");
    let f = fields(cx, kind, node, &["allow", "deny"], "acl: { allow: [gold] }")?;
    Some(match (f.get("allow"), f.get("deny")) {
        (Some(a), None) => Policy::Acl(Acl::Allow(group_refs(cx, a, refs))),
        (None, Some(d)) => Policy::Acl(Acl::Deny(group_refs(cx, d, refs))),
        (Some(_), Some(d)) => {
            cx.error(
                "conflicting-options",
                d.span,
                "`acl` takes `allow` or `deny`, not both",
                "split them into two routes, or keep one list",
            );
            return None;
        }
        (None, None) => {
            cx.missing(&f, "allow", &what, "allow: [gold]");
            return None;
        }
    })
}

fn group_refs(cx: &mut Cx<'_>, node: &Node, refs: &mut Refs) -> BTreeSet<Name> {
    let mut out = Vec::new();
    cx.non_empty(
        node,
        "the `acl` group list",
        "it names no group",
        "list groups, like `allow: [gold]`",
    );
    for item in cx.list(node, "groups", "[gold]").unwrap_or(&[]) {
        let Some(text) = cx.str(item, "a group", "gold") else {
            continue;
        };
        if let Some(name) = name_at(cx, text, item.span, "group") {
            refs.push((
                RefKind::Group,
                NameRef {
                    name: name.clone(),
                    span: item.span,
                },
            ));
            out.push((name, item));
        }
    }
    cx.set("the `acl` group list", out)
}
