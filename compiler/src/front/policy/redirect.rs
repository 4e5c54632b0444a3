//! `redirect`: the `location` (a whole URL in `to`, or parts of the
//! request's own URL replaced) and the status.

use super::*;

/// The keys that replace one part of the request's URL (language 1.1).
const PART_KEYS: [&str; 5] = ["scheme", "host", "port", "path", "replace-prefix"];

/// Decodes `redirect` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::Redirect;
    let what = format!("`{kind}`");
    let f = fields(
        cx,
        kind,
        node,
        &[
            "to",
            "scheme",
            "host",
            "port",
            "path",
            "replace-prefix",
            "status",
        ],
        "redirect: { to: \"https://example.com/new\", status: 301 }",
    )?;
    let location = match f.get("to") {
        Some(to_node) => {
            // `to` names the whole URL: a part beside it would be ignored
            // or contradict it.
            for key in PART_KEYS {
                if let Some(span) = f.key_span(key) {
                    cx.error(
                        "redirect-to-and-parts",
                        span,
                        format!("`{key}` cannot be given beside `to`: `to` is the whole URL"),
                        format!("remove `{key}` and write it into `to`, or remove `to` and keep the request's other parts"),
                    );
                }
            }
            RedirectLocation::To(decode_to(cx, to_node).unwrap_or(RedirectTo {
                origin: None,
                path: "/".to_string(),
                query: None,
                fragment: None,
            }))
        }
        None => {
            if PART_KEYS.iter().all(|k| f.get(k).is_none()) {
                // A misspelt key is already reported as unknown, with the
                // right one suggested.
                let misspelt = f.entries.iter().any(|e| {
                    crate::front::decode::suggest(&e.key, ["to"].into_iter().chain(PART_KEYS))
                        .is_some()
                });
                if !misspelt {
                    cx.error(
                        "missing-key",
                        f.span,
                        format!("{what} needs `to`, or a part of the request's URL to replace"),
                        "add `to: https://example.com/new`, or a part like `scheme: https` or `replace-prefix: /v2`",
                    );
                }
            }
            // On an error (which stops compilation) the route still has its
            // redirect, so what it would lack without one is not reported.
            RedirectLocation::Parts(decode_parts(cx, &f).unwrap_or_default())
        }
    };
    let status = match f.get("status") {
        None => RedirectStatus::Found,
        Some(n) => match cx.int(n, "`status`", 100, 599).unwrap_or(302) {
            s if RedirectStatus::from_code(s as u16).is_some() => {
                RedirectStatus::from_code(s as u16).expect("checked")
            }
            s => {
                cx.error(
                    "invalid-option",
                    n.span,
                    format!("redirect `status: {s}` is not supported"),
                    "use 301 or 308 (permanent), 302 or 307 (temporary), 303 (see other: follow with GET)",
                );
                RedirectStatus::Found
            }
        },
    };
    Some(Policy::Redirect(Redirect { location, status }))
}

/// `to`: an absolute URL or a path.
fn decode_to(cx: &mut Cx<'_>, to_node: &Node) -> Option<RedirectTo> {
    let text = cx.str(to_node, "`to`", "https://example.com/new")?;
    Some(match text.parse::<RedirectTo>() {
        Ok(to) => to,
        Err(msg) => {
            let help = if text.starts_with("//") {
                "write an absolute URL with its scheme (`https://example.com/new`) or a path with one leading `/`"
            } else {
                "write an absolute URL (`https://example.com/new`) or a path (`/v2/items/{id}`)"
            };
            cx.error("invalid-url", to_node.span, msg, help);
            // The error stops compilation; the route still has its redirect,
            // so what it would lack without one is not reported as well.
            RedirectTo {
                origin: None,
                path: "/".to_string(),
                query: None,
                fragment: None,
            }
        }
    })
}

/// `scheme`, `host`, `port`, `path` / `replace-prefix`.
fn decode_parts(cx: &mut Cx<'_>, f: &Fields<'_>) -> Option<RedirectParts> {
    let mut ok = true;
    let scheme = match f.get("scheme") {
        None => None,
        Some(n) => match cx.str(n, "`scheme`", "https")? {
            "https" => Some(RedirectScheme::Https),
            "http" => Some(RedirectScheme::Http),
            other => {
                cx.error(
                    "invalid-option",
                    n.span,
                    format!("redirect `scheme: {other}` is not `http` or `https`"),
                    "write `scheme: https` or `scheme: http` (without `://`)",
                );
                ok = false;
                None
            }
        },
    };
    let host = match f.get("host") {
        None => None,
        Some(n) => {
            let text = cx.str(n, "`host`", "new.example.com")?.to_ascii_lowercase();
            match check_redirect_host(&text) {
                Ok(()) => Some(text),
                Err(msg) => {
                    let help = if text.contains("://") {
                        "write the host alone (`new.example.com`); the scheme goes in `scheme:`"
                    } else {
                        "write a host name or address without port or path, like `new.example.com`"
                    };
                    cx.error(
                        "invalid-option",
                        n.span,
                        format!("redirect `host`: {msg}"),
                        help,
                    );
                    ok = false;
                    None
                }
            }
        }
    };
    let port = match f.get("port") {
        None => None,
        Some(n) => Some(cx.int(n, "`port`", 1, 65535)? as u16),
    };
    let path = match (f.get("path"), f.get("replace-prefix")) {
        (Some(_), Some(_)) => {
            cx.error(
                "redirect-path-and-prefix",
                f.key_span("replace-prefix").unwrap_or(f.span),
                "`path` and `replace-prefix` cannot both be given: each sets the whole path",
                "keep `path` to set the whole path, or `replace-prefix` to swap only the part the prefix route matched",
            );
            return None;
        }
        (Some(n), None) => Some(RedirectPath::Template(path_text(
            cx,
            n,
            "`path`",
            "/items/{id}",
            true,
        )?)),
        (None, Some(n)) => Some(RedirectPath::ReplacePrefix(path_text(
            cx,
            n,
            "`replace-prefix`",
            "/v2",
            false,
        )?)),
        (None, None) => None,
    };
    ok.then_some(RedirectParts {
        scheme,
        host,
        port,
        path,
    })
}

/// A redirect path: starts with one `/`, no query, fragment, space or
/// control character; `{param}`s only in a template (`params`).
fn path_text(cx: &mut Cx<'_>, n: &Node, what: &str, example: &str, params: bool) -> Option<String> {
    let text = cx.str(n, what, example)?;
    let problem = if !text.starts_with('/') {
        Some(format!("{what} `{text}` must start with `/`"))
    } else if text.starts_with("//") || text.starts_with("/\\") {
        Some(format!(
            "{what} `{text}` starts with `{}`, which browsers read as another host",
            &text[..2]
        ))
    } else if text.contains(['?', '#']) {
        Some(format!(
            "{what} `{text}` holds a query or fragment; the request's query string is kept"
        ))
    } else if !params && text.contains(['{', '}']) {
        Some(format!(
            "{what} `{text}` holds a `{{param}}`; `replace-prefix` is a literal path"
        ))
    } else if check_header_value(text).is_err() || text.contains([' ', '\\']) {
        Some(format!(
            "{what} `{text}` holds spaces, `\\` or characters a `location` header cannot carry"
        ))
    } else {
        None
    };
    match problem {
        None => Some(text.to_string()),
        Some(msg) => {
            let help = if text.contains(['?', '#']) {
                "write the path alone, or use `to` for a URL with its own query".to_string()
            } else {
                format!("write a path with one leading `/`, like `{example}`")
            };
            cx.error("invalid-option", n.span, msg, help);
            None
        }
    }
}
