//! `deprecation`: the `since`/`sunset` dates and the migration link.

use super::*;

/// Decodes `deprecation` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::Deprecation;
    let f = fields(
        cx,
        kind,
        node,
        &["since", "sunset", "link"],
        "deprecation: { sunset: 2026-12-31 }",
    )?;
    let date = |cx: &mut Cx<'_>, key: &str| {
        f.get(key)
            .and_then(|n| cx.parse::<Date>(n, &format!("`{key}`"), "invalid-date", "2026-12-31"))
    };
    let link = opt_string(cx, &f, "link", "https://example.com/migrate");
    if let Some(l) = &link {
        let host = l
            .strip_prefix("https://")
            .or_else(|| l.strip_prefix("http://"))
            .and_then(|r| r.split(['/', '?', '#']).next())
            .unwrap_or("");
        if host.is_empty() || check_header_value(l).is_err() || l.contains(['<', '>', ' ', '"']) {
            cx.error(
                "invalid-url",
                f.get("link").map_or(f.span, |n| n.span),
                format!("`{l}` is not an absolute http(s) URL"),
                "link: https://example.com/migrate",
            );
            return None;
        }
    }
    let since = date(cx, "since");
    let sunset = date(cx, "sunset");
    if let (Some(since), Some(sunset)) = (since, sunset) {
        if sunset < since {
            cx.diags.push(
                Diagnostic::error(
                    "deprecation-order",
                    f.get("sunset").map_or(f.span, |n| n.span),
                    format!("`sunset: {sunset}` is before `since: {since}`: an api is deprecated before it goes away"),
                )
                .with_related(f.get("since").map_or(f.span, |n| n.span), "deprecated from here")
                .with_help("check both dates; `sunset` is the day the route stops working"),
            );
        }
    }
    Some(Policy::Deprecation(Deprecation {
        since,
        sunset,
        link,
    }))
}
