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
                None if o.contains("://*.") => {
                    listed.push((CorsOrigin::Pattern(o.to_string()), item))
                }
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
        // Allowed since 1.1 (the gateway answers with the request's own
        // origin, never `*`), but worth a word: every site may then make
        // credentialed requests and read the answers.
        cx.warning(
            "cors-credentials-any-origin",
            f.get("credentials").map_or(f.span, |n| n.span),
            "`credentials: true` with origin `*` lets every site send the user's cookies and read the answers (the gateway answers with the request's origin, never `*`)",
            "list the allowed origins, or a pattern like `https://*.example.com`, unless every site is meant to",
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
    // The default: every method but TRACE, which browsers never send.
    let default_methods = || {
        Method::ALL
            .into_iter()
            .filter(|m| *m != Method::Trace)
            .collect()
    };
    let any_method = star_list(cx, &f, "methods");
    let methods = match (f.get("methods"), any_method) {
        (Some(n), Some(false)) => cx.methods(n, "`methods`"),
        _ => default_methods(),
    };
    let any_header = star_list(cx, &f, "headers");
    let headers = match any_header {
        Some(false) => header_list(cx, &f, "headers"),
        _ => BTreeSet::new(),
    };
    Some(Policy::Cors(Cors {
        origins,
        methods,
        any_method: any_method == Some(true),
        headers,
        any_header: any_header == Some(true),
        expose: header_list(cx, &f, "expose"),
        credentials,
        max_age,
    }))
}

/// Whether list `key` is `["*"]` (anything): `Some(true)`; a list of
/// names (or none): `Some(false)`; `*` beside names, an error since the
/// names would mean nothing: `None`.
fn star_list(cx: &mut Cx<'_>, f: &Fields<'_>, key: &str) -> Option<bool> {
    let Some(Node {
        value: Value::Seq(items),
        ..
    }) = f.get(key)
    else {
        return Some(false);
    };
    let is_star = |i: &Node| i.value == Value::Str("*".into());
    match items.iter().position(is_star) {
        None => Some(false),
        Some(_) if items.len() == 1 => Some(true),
        Some(at) => {
            cx.error(
                "cors-wildcard-with-names",
                items[at].span,
                format!(
                    "`*` in `{key}` allows anything, so the names listed beside it mean nothing"
                ),
                format!("keep `{key}: [\"*\"]` alone, or remove `*` and list the names"),
            );
            None
        }
    }
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
    let stars = host.matches('*').count();
    let wild_ok = host
        .strip_prefix("*.")
        .is_some_and(|rest| !rest.contains('*') && rest.contains('.'));
    if stars > 0 && !wild_ok {
        return Some((
            format!("origin `{o}` has a wildcard that is not one whole leading label before a domain"),
            format!("write one `*` as the first label, like `{scheme}://*.example.com`, or list each origin"),
        ));
    }
    // `*.example.com` (a leading wildcard label, language 1.1) or an exact host.
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => host.parse::<crate::ir::HostPattern>().is_ok(),
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
