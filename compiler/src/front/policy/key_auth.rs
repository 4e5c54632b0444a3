//! `key-auth`: where the key is read (header or query parameter) and its name.

use super::*;

/// Decodes `key-auth` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::KeyAuth;
    let f = fields(
        cx,
        kind,
        node,
        &["in", "name"],
        "key-auth: { in: header, name: x-api-key }",
    )?;
    let location = match f.get("in") {
        None => KeyLocation::Header,
        Some(n) => match cx.str(n, "`in`", "header")? {
            "header" => KeyLocation::Header,
            "query" => KeyLocation::Query,
            other => {
                cx.error(
                    "invalid-option",
                    n.span,
                    format!("`in: {other}` is not a key location"),
                    "use `in: header` or `in: query`",
                );
                return None;
            }
        },
    };
    let name = match f.get("name") {
        Some(n) => {
            let text = cx.str(n, "`name`", "x-api-key")?;
            let valid = match location {
                KeyLocation::Header => text.parse::<HeaderName>().is_ok(),
                KeyLocation::Query => {
                    !text.is_empty()
                        && text
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
                }
            };
            if !valid {
                cx.error(
                    "invalid-option",
                    n.span,
                    format!(
                        "`{text}` is not a valid {} name",
                        if location == KeyLocation::Header {
                            "header"
                        } else {
                            "query parameter"
                        }
                    ),
                    "use letters, digits, `-` and `_`, like `x-api-key`",
                );
                return None;
            }
            if location == KeyLocation::Header {
                text.to_ascii_lowercase()
            } else {
                text.to_string()
            }
        }
        None if location == KeyLocation::Header => "x-api-key".into(),
        None => "api_key".into(),
    };
    Some(Policy::KeyAuth(KeyAuth { location, name }))
}
