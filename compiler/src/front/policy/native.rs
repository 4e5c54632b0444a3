//! `native`: verbatim configuration per target.

use super::*;

/// Decodes `native` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::Native;
    let what = format!("`{kind}`");
    let targets: Vec<&str> = TargetKind::ALL.iter().map(|t| t.as_str()).collect();
    let f = fields(
        cx,
        kind,
        node,
        &targets,
        "native: { kong: { plugins: [] } }",
    )?;
    let mut per_target = BTreeMap::new();
    for e in f.entries {
        let Some(t) = TargetKind::parse(&e.key) else {
            continue;
        };
        let example = format!("{}: {{ ... }}", e.key);
        if cx
            .map(&e.value, &format!("`native` `{}`", e.key), &example)
            .is_some()
        {
            per_target.insert(t, to_json(&e.value));
        }
    }
    if f.entries.is_empty() {
        cx.missing(
            &f,
            "kong",
            &what,
            "kong: { ... } (or nginx, envoy, cloudflare, reference)",
        );
        return None;
    }
    Some(Policy::Native(Native { per_target }))
}
