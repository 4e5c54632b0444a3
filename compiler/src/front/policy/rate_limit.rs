//! `rate-limit`: requests per window, and what is counted.

use super::*;

/// Decodes `rate-limit` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::RateLimit;
    let what = format!("`{kind}`");
    let f = fields(
        cx,
        kind,
        node,
        &["requests", "per", "key"],
        "rate-limit: { requests: 100, per: 1m }",
    )?;
    let requests = cx
        .required(&f, "requests", &what, "requests: 100")
        .and_then(|n| cx.int(n, "`requests`", 1, 1_000_000_000));
    let per = cx
        .required(&f, "per", &what, "per: 1m")
        .and_then(|n| cx.duration(n, "`per`", "1m"));
    let key = match f.get("key") {
        None => RateKey::Ip,
        Some(n) => {
            let text = cx.str(n, "`key`", "consumer")?;
            match text {
                "ip" => RateKey::Ip,
                "consumer" => RateKey::Consumer,
                "global" => RateKey::Global,
                _ => match text.strip_prefix("header:").map(str::parse::<HeaderName>) {
                    Some(Ok(h)) => RateKey::Header(h),
                    _ => {
                        cx.error(
                            "invalid-option",
                            n.span,
                            format!("`{text}` is not a rate-limit key"),
                            "use `ip`, `consumer`, `global` or `header:x-tenant`",
                        );
                        return None;
                    }
                },
            }
        }
    };
    let per = per?;
    let per_span = f.get("per").map_or(f.span, |n| n.span);
    if per.millis < 1000 {
        cx.error(
            "invalid-option",
            per_span,
            format!("`per: {per}` is shorter than one second, the smallest rate-limit window"),
            "write `per: 1s` (and adjust `requests`)",
        );
    } else if per.millis % 1000 != 0 {
        // Windows align to whole seconds since the epoch on every target.
        cx.error(
            "invalid-option",
            per_span,
            format!("`per: {per}` is not a whole number of seconds"),
            format!(
                "write `per: {}s` (and adjust `requests`)",
                per.as_secs_ceil()
            ),
        );
    }
    Some(Policy::RateLimit(RateLimit {
        requests: requests? as u64,
        per,
        key,
        // Resolution sets where it is attached.
    }))
}
