//! `cors`: allowed origins, methods and headers; origins checked as browsers send them.

use super::*;

/// Decodes `cors` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::Cors;
    let what = format!("`{kind}`");
    let f = fields(
        cx,
        kind,
        node,
        &[
            "origins",
            "methods",
            "headers",
            "expose",
            "credentials",
            "max-age",
        ],
        "cors: { origins: [\"https://app.example.com\"] }",
    )?;
    let mut origins = BTreeSet::new();
    let mut listed = Vec::new();
    if let Some(n) = cx.required(
        &f,
        "origins",
        &what,
        "origins: [\"https://app.example.com\"]",
    ) {
        cx.non_empty(
            n,
            "`origins`",
            "no browser origin would be allowed",
            "list origins, like `origins: [\"https://app.example.com\"]`, or `[\"*\"]` for any",
        );
        let items = cx
            .list(n, "`origins`", "[\"https://app.example.com\"]")
            .unwrap_or(&[]);
        for item in items {
            let Some(o) = cx.str(item, "an origin", "https://app.example.com") else {
                continue;
            };
            match origin_problem(o).filter(|_| o != "*") {
                None if o == "*" => listed.push((CorsOrigin::Any, item)),
                None => listed.push((CorsOrigin::Origin(o.to_string()), item)),
                Some((msg, help)) => cx.error("invalid-origin", item.span, msg, help),
            }
        }
        origins = cx.set("`origins`", listed);
        let is_star = |i: &Node| i.value == Value::Str("*".into());
        if let Some(star) = items.iter().find(|i| is_star(i)) {
            if !items.iter().all(is_star) {
                cx.error(
                    "cors-wildcard-with-origins",
                    star.span,
                    "`*` allows every origin, so the other origins listed beside it mean nothing",
                    "keep `\"*\"` alone, or remove it and list only the origins to allow",
                );
            }
        }
    }
    let credentials = f
        .get("credentials")
        .and_then(|n| cx.bool(n, "`credentials`"))
        .unwrap_or(false);
    if credentials && origins.contains(&CorsOrigin::Any) {
        cx.error(
            "cors-credentials-wildcard",
            f.get("credentials").map_or(f.span, |n| n.span),
            "`credentials: true` cannot be combined with origin `*`: browsers refuse it",
            "list the allowed origins explicitly",
        );
    }
    let max_age = opt_duration(cx, &f, "max-age");
    if let Some(age) = max_age.filter(|a| a.millis % 1000 != 0) {
        cx.error(
            "invalid-duration",
            f.get("max-age").map_or(f.span, |n| n.span),
            format!("`max-age: {age}` is not whole seconds: browsers read `access-control-max-age` in seconds"),
            format!("write `max-age: {}s`", age.as_secs_ceil()),
        );
    }
    let methods = match f.get("methods") {
        Some(n) => cx.methods(n, "`methods`"),
        // The default: every method but TRACE, which browsers never send.
        None => Method::ALL
            .into_iter()
            .filter(|m| *m != Method::Trace)
            .collect(),
    };
    Some(Policy::Cors(Cors {
        origins,
        methods,
        headers: header_list(cx, &f, "headers"),
        expose: header_list(cx, &f, "expose"),
        credentials,
        max_age,
    }))
}

/// What is wrong with a cors origin other than `*`, as (message, help):
/// browsers send `scheme://host[:port]` in lowercase, without a default port.
fn origin_problem(o: &str) -> Option<(String, String)> {
    let lower = o.to_ascii_lowercase();
    if lower != o {
        return Some((
            format!("origin `{o}` has capitals; browsers send origins in lowercase"),
            format!("write `{lower}`"),
        ));
    }
    let example = "write `https://app.example.com` (scheme, host, optional port)";
    let (scheme, rest) = match o.split_once("://") {
        Some(("http", r)) => ("http", r),
        Some(("https", r)) => ("https", r),
        _ => {
            return Some((
                format!("origin `{o}` must start with `https://` or `http://`"),
                example.to_string(),
            ))
        }
    };
    if let Some(bare) = rest.strip_suffix('/').filter(|b| !b.contains('/')) {
        return Some((
            format!("origin `{o}` ends in `/`, but browsers send origins without a path"),
            format!("write `{scheme}://{bare}`"),
        ));
    }
    if rest.contains(['/', '?', '#', '@', ' ']) {
        return Some((
            format!("origin `{o}` holds more than scheme, host and port"),
            example.to_string(),
        ));
    }
    let host = crate::ir::matcher::host_without_port(rest);
    let port = rest[host.len()..].strip_prefix(':');
    if host.starts_with("*.") {
        return Some((
            format!("origin `{o}` has a wildcard; browsers send one exact origin, which is compared as written"),
            "list each origin, or allow any with `origins: [\"*\"]`".to_string(),
        ));
    }
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => matches!(
            host.parse::<crate::ir::HostPattern>(),
            Ok(crate::ir::HostPattern::Exact(_))
        ),
    };
    if !host_ok {
        return Some((
            format!("origin `{o}` has no valid host"),
            example.to_string(),
        ));
    }
    match port.map(|p| p.parse::<u16>()) {
        None => None,
        Some(Ok(p)) if (scheme, p) == ("https", 443) || (scheme, p) == ("http", 80) => Some((
            format!("origin `{o}` names its scheme's default port, which browsers leave out"),
            format!("write `{scheme}://{host}`"),
        )),
        Some(Ok(p)) if p > 0 => None,
        _ => Some((
            format!("origin `{o}` has an invalid port"),
            "write a port from 1 to 65535, like `http://localhost:3000`".to_string(),
        )),
    }
}
