//! `rewrite`: the path sent upstream: a whole path template, or prefixes.

use super::*;

/// Decodes `rewrite` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::Rewrite;
    let what = format!("`{kind}`");
    let f = fields(
        cx,
        kind,
        node,
        &["path", "strip-prefix", "add-prefix"],
        "rewrite: { path: \"/v2/items/{id}\" }",
    )?;
    let prefix = |cx: &mut Cx<'_>, key: &str| -> Option<Option<String>> {
        let Some(n) = f.get(key) else {
            return Some(None);
        };
        let p: PathPattern = cx.path(n, &format!("`{key}`"), "/v1")?;
        if p.kind() != crate::ir::PathKind::Exact || p.segments.is_empty() {
            cx.error(
                "invalid-path",
                n.span,
                format!("`{key}` must be a literal path like `/v1`"),
                format!("{key}: /v1"),
            );
            return None;
        }
        Some(Some(p.to_string()))
    };
    Some(match f.get("path") {
        Some(n) => {
            if let Some(other) = f.get("strip-prefix").or(f.get("add-prefix")) {
                cx.error(
                    "conflicting-options",
                    other.span,
                    "`rewrite` takes `path`, or `strip-prefix`/`add-prefix`, not both",
                    "`path` gives the whole upstream path; drop the prefix options",
                );
                return None;
            }
            if let Value::Str(text) = &n.value {
                if text.len() > 1 && text.ends_with('/') {
                    cx.error(
                        "invalid-path",
                        n.span,
                        format!("rewrite `path` `{text}` ends in `/`; v1 cannot send a trailing slash upstream"),
                        format!("write `path: \"{}\"`", text.trim_end_matches('/')),
                    );
                    return None;
                }
            }
            let p: PathPattern = cx.path(n, "rewrite `path`", "/v2/items/{id}")?;
            if p.prefix {
                cx.error(
                    "invalid-path",
                    n.span,
                    "a rewrite `path` is a whole path and cannot end in `/*`",
                    "use `strip-prefix`/`add-prefix` to move a prefix",
                );
                return None;
            }
            Policy::Rewrite(Rewrite::Path(p))
        }
        None => {
            let strip = prefix(cx, "strip-prefix")?;
            let add = prefix(cx, "add-prefix")?;
            if strip.is_none() && add.is_none() {
                cx.missing(&f, "path", &what, "path: \"/v2/items/{id}\"");
                return None;
            }
            Policy::Rewrite(Rewrite::Prefix { strip, add })
        }
    })
}
