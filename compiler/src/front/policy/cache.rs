//! `cache`: time to live, cacheable methods, `vary` headers.

use super::*;

/// Decodes `cache` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::Cache;
    let what = format!("`{kind}`");
    let f = fields(
        cx,
        kind,
        node,
        &["ttl", "methods", "vary"],
        "cache: { ttl: 30s }",
    )?;
    let ttl = cx
        .required(&f, "ttl", &what, "ttl: 30s")
        .and_then(|n| cx.positive_duration(n, "`ttl`", "30s"))?;
    let methods: BTreeSet<Method> = match f.get("methods") {
        None => [Method::Get, Method::Head].into_iter().collect(),
        Some(n) => {
            let ms: BTreeSet<Method> = cx.methods(n, "`methods`");
            if let Some(m) = ms.iter().find(|m| !matches!(m, Method::Get | Method::Head)) {
                cx.error(
                    "invalid-option",
                    n.span,
                    format!("`{}` responses are not cacheable", m.as_str()),
                    "cache `methods` may hold GET and HEAD",
                );
                return None;
            }
            ms
        }
    };
    Some(Policy::Cache(Cache {
        ttl,
        methods,
        vary: header_list(cx, &f, "vary"),
    }))
}
