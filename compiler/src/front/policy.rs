//! Decoding each policy kind's options into checked IR values.

use super::ast::{NameRef, PolicyAst, RefKind};
use super::decode::{did_you_mean, Cx, Fields};
use super::spec::{decode_retry, decode_timeouts, name_at};
use super::yaml::{Node, Value};
use crate::diag::Diagnostic;
use crate::ir::policy::*;
use crate::ir::values::{check_header_value, Date, Duration, HeaderName, Method, Name, Secret};
use crate::ir::PathPattern;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

/// Headers that belong to one connection, not to the message: each hop
/// sets them itself, so a policy that changed them would break framing.
const CONNECTION_HEADERS: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
];

/// `{ env: NAME }`: the only way to write a secret.
pub fn decode_secret(cx: &mut Cx<'_>, node: &Node, what: &str) -> Option<Secret> {
    if let Value::Str(_) = node.value {
        cx.error(
            "literal-secret",
            node.span,
            format!("{what} is a secret and may not be written literally"),
            "reference it instead: `{ env: NAME }`, and set NAME where the gateway runs",
        );
        return None;
    }
    let f = cx.fields(node, what, &["env"], "{ env: NAME }")?;
    let n = cx.required(&f, "env", what, "env: NAME")?;
    let var = cx.str(n, "`env`", "NAME")?;
    let ok = var
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok {
        cx.error(
            "invalid-env-name",
            n.span,
            format!("`{var}` is not an environment variable name"),
            "use letters, digits and `_`, like `ACME_API_KEY`",
        );
        return None;
    }
    Some(Secret::Env(var.to_string()))
}

/// An object with exactly one key, a policy kind, whose value is its options.
pub fn decode_policy_object(cx: &mut Cx<'_>, node: &Node) -> Option<PolicyAst> {
    let kinds: Vec<&str> = PolicyKind::ALL.iter().map(|k| k.as_str()).collect();
    let entries = cx.map(node, "a policy", "rate-limit: { requests: 100, per: 1m }")?;
    let [entry] = entries else {
        cx.error(
            "policy-shape",
            node.span,
            format!(
                "a policy is an object with exactly one key (its kind), found {} keys",
                entries.len()
            ),
            "write each policy as its own list entry: `- cors: {...}` then `- rate-limit: {...}`",
        );
        return None;
    };
    let Some(kind) = PolicyKind::parse(&entry.key) else {
        cx.error(
            "unknown-policy-kind",
            entry.key_span,
            format!("`{}` is not a policy kind", entry.key),
            did_you_mean(&entry.key, &kinds),
        );
        return None;
    };
    let mut refs = Vec::new();
    let opts = &entry.value;
    let policy = decode_options(cx, kind, opts, &mut refs)?;
    let template_keys: &[&str] = match kind {
        PolicyKind::Rewrite => &["path", "strip-prefix"],
        PolicyKind::Redirect => &["to"],
        _ => &[],
    };
    let template = match &opts.value {
        Value::Map(entries) => entries
            .iter()
            .find(|e| template_keys.contains(&e.key.as_str()))
            .map(|e| Box::new(e.value.clone())),
        _ => None,
    };
    Some(PolicyAst {
        policy,
        kind_span: entry.key_span,
        refs,
        template,
    })
}

fn fields<'n>(
    cx: &mut Cx<'_>,
    kind: PolicyKind,
    node: &'n Node,
    allowed: &[&str],
    example: &str,
) -> Option<Fields<'n>> {
    // A bare `mock:` means "all defaults", like `mock: {}`.
    if node.value == Value::Null {
        return Some(Fields {
            span: node.span,
            entries: &[],
        });
    }
    cx.fields(node, &format!("`{kind}` options"), allowed, example)
}

fn header_map(cx: &mut Cx<'_>, node: &Node, what: &str) -> BTreeMap<HeaderName, String> {
    let mut out = BTreeMap::new();
    for e in cx.map(node, what, "{ x-source: gateway }").unwrap_or(&[]) {
        let name = match e.key.parse::<HeaderName>() {
            Ok(h) => h,
            Err(msg) => {
                cx.error("invalid-header", e.key_span, msg, header_name_help(&e.key));
                continue;
            }
        };
        let value = match &e.value.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                cx.error(
                    "wrong-type",
                    e.value.span,
                    format!(
                        "header `{name}` must have a text value, found {}",
                        e.value.value.describe()
                    ),
                    "x-source: gateway",
                );
                continue;
            }
        };
        if let Err(msg) = check_header_value(&value) {
            let help = if value.contains(['\n', '\r']) {
                "keep header values on one line"
            } else {
                "use printable ASCII only; percent-encode other characters"
            };
            cx.error("invalid-header-value", e.value.span, msg, help);
            continue;
        }
        out.insert(name, value);
    }
    out
}

/// A list of header names: a set, so order and repeats do not matter.
fn header_list(cx: &mut Cx<'_>, f: &Fields<'_>, key: &str) -> BTreeSet<HeaderName> {
    let Some(n) = f.get(key) else {
        return BTreeSet::new();
    };
    let items = cx
        .list(n, &format!("`{key}`"), "[x-request-id]")
        .unwrap_or(&[]);
    let mut out = Vec::new();
    for item in items {
        let Some(text) = cx.str(item, "a header name", "x-request-id") else {
            continue;
        };
        match text.parse::<HeaderName>() {
            Ok(h) => out.push((h, item)),
            Err(msg) => cx.error("invalid-header", item.span, msg, header_name_help(text)),
        }
    }
    cx.set(&format!("`{key}`"), out)
}

/// What to write instead of an invalid header name.
fn header_name_help(text: &str) -> String {
    let fixed: String = text.trim().trim_end_matches(':').trim().replace(' ', "-");
    if !fixed.is_empty() && fixed != text && fixed.parse::<HeaderName>().is_ok() {
        return format!("write `{fixed}`");
    }
    "use letters, digits and `-`, like `x-request-id`".to_string()
}

fn opt_duration(cx: &mut Cx<'_>, f: &Fields<'_>, key: &str) -> Option<Duration> {
    f.get(key)
        .and_then(|n| cx.duration(n, &format!("`{key}`"), "5s"))
}

fn opt_string(cx: &mut Cx<'_>, f: &Fields<'_>, key: &str, example: &str) -> Option<String> {
    f.get(key)
        .and_then(|n| cx.str(n, &format!("`{key}`"), example))
        .map(str::to_string)
}

/// An `ip-filter` list: addresses and blocks, none with host bits set; a
/// set, so order and repeats do not matter.
fn cidrs(cx: &mut Cx<'_>, node: &Node, key: &str) -> BTreeSet<ipnet::IpNet> {
    let why = if key == "allow" {
        "leave `allow` out to let every address through, or list the addresses that may pass"
    } else {
        "leave `deny` out, or list the addresses to refuse"
    };
    if !cx.non_empty(node, &format!("`{key}`"), "it would match no address", why) {
        return BTreeSet::new();
    }
    let items = cx
        .list(node, &format!("`{key}`"), "[10.0.0.0/8]")
        .unwrap_or(&[]);
    let nets: Vec<_> = items
        .iter()
        .filter_map(|item| Some((cidr(cx, item)?, item)))
        .collect();
    cx.set(&format!("`{key}`"), nets)
}

fn cidr(cx: &mut Cx<'_>, item: &Node) -> Option<ipnet::IpNet> {
    let text = cx.str(item, "an address", "10.0.0.0/8")?;
    let net = text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    });
    let Some(net) = net else {
        cx.error(
            "invalid-cidr",
            item.span,
            format!("`{text}` is not an IP address or CIDR block"),
            "write `10.0.0.0/8`, `192.0.2.7` or `2001:db8::/32`",
        );
        return None;
    };
    if net != net.trunc() {
        // Silently truncating would hide a typo that widens or moves the block.
        cx.error(
            "invalid-cidr",
            item.span,
            format!(
                "`{text}` has bits set below its /{} prefix, so it is not the start of a block",
                net.prefix_len()
            ),
            format!(
                "write the block as `{}`, or the single address as `{}`",
                net.trunc(),
                net.addr()
            ),
        );
        return None;
    }
    Some(net)
}

fn group_refs(cx: &mut Cx<'_>, node: &Node, refs: &mut Vec<(RefKind, NameRef)>) -> BTreeSet<Name> {
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

fn decode_options(
    cx: &mut Cx<'_>,
    kind: PolicyKind,
    node: &Node,
    refs: &mut Vec<(RefKind, NameRef)>,
) -> Option<Policy> {
    let what = format!("`{kind}`");
    Some(match kind {
        PolicyKind::IpFilter => {
            let f = fields(
                cx,
                kind,
                node,
                &["allow", "deny"],
                "ip-filter: { allow: [10.0.0.0/8] }",
            )?;
            let allow = f
                .get("allow")
                .map(|n| cidrs(cx, n, "allow"))
                .unwrap_or_default();
            let deny = f
                .get("deny")
                .map(|n| cidrs(cx, n, "deny"))
                .unwrap_or_default();
            if f.get("allow").is_none() && f.get("deny").is_none() {
                cx.missing(&f, "allow", &what, "allow: [10.0.0.0/8]");
                return None;
            }
            Policy::IpFilter(IpFilter { allow, deny })
        }
        PolicyKind::Cors => {
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
            Policy::Cors(Cors {
                origins,
                methods,
                headers: header_list(cx, &f, "headers"),
                expose: header_list(cx, &f, "expose"),
                credentials,
                max_age,
            })
        }
        PolicyKind::RequestSizeLimit => {
            let f = fields(
                cx,
                kind,
                node,
                &["max"],
                "request-size-limit: { max: 1MiB }",
            )?;
            let n = cx.required(&f, "max", &what, "max: 1MiB")?;
            Policy::RequestSizeLimit(RequestSizeLimit {
                max: cx.positive_size(n, "`max`", "1MiB")?,
            })
        }
        PolicyKind::KeyAuth => {
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
            Policy::KeyAuth(KeyAuth { location, name })
        }
        PolicyKind::BasicAuth => {
            let f = fields(cx, kind, node, &["realm"], "basic-auth: { realm: pets }")?;
            let realm = opt_string(cx, &f, "realm", "pets").unwrap_or_else(|| "gatefold".into());
            if realm.contains(['"', '\\']) || check_header_value(&realm).is_err() {
                cx.error(
                    "invalid-option",
                    f.get("realm").map_or(f.span, |n| n.span),
                    "a realm may not contain quotes, backslashes or control characters",
                    "realm: pets",
                );
                return None;
            }
            Policy::BasicAuth(BasicAuth { realm })
        }
        PolicyKind::Jwt => decode_jwt(cx, node)?,
        PolicyKind::Acl => {
            let f = fields(cx, kind, node, &["allow", "deny"], "acl: { allow: [gold] }")?;
            match (f.get("allow"), f.get("deny")) {
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
            }
        }
        PolicyKind::RateLimit => {
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
                    format!(
                        "`per: {per}` is shorter than one second, the smallest rate-limit window"
                    ),
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
            Policy::RateLimit(RateLimit {
                requests: requests? as u64,
                per,
                key,
                // Resolution sets where it is attached.
            })
        }
        PolicyKind::Deprecation => {
            let f = fields(
                cx,
                kind,
                node,
                &["since", "sunset", "link"],
                "deprecation: { sunset: 2026-12-31 }",
            )?;
            let date = |cx: &mut Cx<'_>, key: &str| {
                f.get(key).and_then(|n| {
                    cx.parse::<Date>(n, &format!("`{key}`"), "invalid-date", "2026-12-31")
                })
            };
            let link = opt_string(cx, &f, "link", "https://example.com/migrate");
            if let Some(l) = &link {
                let host = l
                    .strip_prefix("https://")
                    .or_else(|| l.strip_prefix("http://"))
                    .and_then(|r| r.split(['/', '?', '#']).next())
                    .unwrap_or("");
                if host.is_empty()
                    || check_header_value(l).is_err()
                    || l.contains(['<', '>', ' ', '"'])
                {
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
            Policy::Deprecation(Deprecation {
                since,
                sunset,
                link,
            })
        }
        PolicyKind::Script => {
            let f = fields(
                cx,
                kind,
                node,
                &["request", "response"],
                "script: { request: \"req.setHeader('x-a', '1');\" }",
            )?;
            let request = opt_string(cx, &f, "request", "req.setHeader('x-a', '1');");
            let response = opt_string(cx, &f, "response", "res.setHeader('x-a', '1');");
            if request.is_none() && response.is_none() {
                cx.missing(
                    &f,
                    "request",
                    &what,
                    "request: |\n  req.setHeader(\"x-a\", \"1\");",
                );
                return None;
            }
            Policy::Script(Script { request, response })
        }
        PolicyKind::Mock => {
            let f = fields(
                cx,
                kind,
                node,
                &["status", "headers", "body", "json"],
                "mock: { status: 200, json: { ok: true } }",
            )?;
            let status =
                f.get("status")
                    .map_or(Some(200), |n| cx.int(n, "`status`", 100, 599))? as u16;
            let headers = f
                .get("headers")
                .map(|n| header_map(cx, n, "mock `headers`"))
                .unwrap_or_default();
            let body = match (f.get("body"), f.get("json")) {
                (Some(_), Some(j)) => {
                    cx.error(
                        "conflicting-options",
                        j.span,
                        "`mock` takes `body` or `json`, not both",
                        "keep one of them",
                    );
                    return None;
                }
                (Some(b), None) => MockBody::Text(cx.str(b, "`body`", "gone")?.to_string()),
                (None, Some(j)) => MockBody::Json(to_json(j)),
                (None, None) => MockBody::Empty,
            };
            let body_node = f.get("body").or(f.get("json"));
            if let Some(b) = body_node.filter(|_| no_body_status(status)) {
                cx.diags.push(
                    Diagnostic::error(
                        "mock-body-not-allowed",
                        b.span,
                        format!("a {status} response has no body, so this one could not be sent"),
                    )
                    .with_related(
                        f.get("status").map_or(f.span, |n| n.span),
                        "status given here",
                    )
                    .with_help(
                        "remove the body, or use a status that carries one, like 200 or 410",
                    ),
                );
            }
            Policy::Mock(Mock {
                status,
                headers,
                body,
            })
        }
        PolicyKind::Redirect => {
            let f = fields(
                cx,
                kind,
                node,
                &["to", "status"],
                "redirect: { to: \"https://example.com/new\", status: 301 }",
            )?;
            let to_node = cx.required(&f, "to", &what, "to: https://example.com/new")?;
            let to = cx
                .str(to_node, "`to`", "https://example.com/new")?
                .to_string();
            if to.starts_with("//") {
                // A scheme-relative `//host` would send clients to another site.
                cx.error(
                    "invalid-url",
                    to_node.span,
                    format!("`{to}` starts with `//`, which browsers read as another host"),
                    "write an absolute URL with its scheme (`https://example.com/new`) or a path with one leading `/`",
                );
            } else if !(to.starts_with("https://")
                || to.starts_with("http://")
                || to.starts_with('/'))
                || check_header_value(&to).is_err()
                || to.contains(' ')
            {
                cx.error("invalid-url", to_node.span, format!("`{to}` is not a redirect target"), "write an absolute URL (`https://example.com/new`) or a path (`/v2/items/{id}`)");
            }
            let status = match f.get("status") {
                None => RedirectStatus::Found,
                Some(n) => match cx.int(n, "`status`", 100, 599)? {
                    s if RedirectStatus::from_code(s as u16).is_some() => {
                        RedirectStatus::from_code(s as u16).expect("checked")
                    }
                    s => {
                        cx.error(
                            "invalid-option",
                            n.span,
                            format!("redirect `status: {s}` is not supported"),
                            "use 301 or 308 (permanent), 302 or 307 (temporary)",
                        );
                        return None;
                    }
                },
            };
            Policy::Redirect(Redirect { to, status })
        }
        PolicyKind::RequestHeaders | PolicyKind::ResponseHeaders => {
            let f = fields(
                cx,
                kind,
                node,
                &["set", "add", "remove"],
                "request-headers: { set: { x-source: gateway } }",
            )?;
            let t = HeaderTransform {
                set: f
                    .get("set")
                    .map(|n| header_map(cx, n, "`set`"))
                    .unwrap_or_default(),
                add: f
                    .get("add")
                    .map(|n| header_map(cx, n, "`add`"))
                    .unwrap_or_default(),
                remove: header_list(cx, &f, "remove").into_iter().collect(),
            };
            if f.entries.is_empty() {
                cx.missing(&f, "set", &what, "set: { x-source: gateway }");
                return None;
            }
            for e in f.entries {
                cx.non_empty(
                    &e.value,
                    &format!("`{}`", e.key),
                    "it changes no header",
                    &format!("list headers under `{}`, or remove it", e.key),
                );
            }
            check_header_targets(cx, kind, &f);
            if kind == PolicyKind::RequestHeaders {
                Policy::RequestHeaders(t)
            } else {
                Policy::ResponseHeaders(t)
            }
        }
        PolicyKind::Rewrite => {
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
            match f.get("path") {
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
            }
        }
        PolicyKind::Cache => {
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
            Policy::Cache(Cache {
                ttl,
                methods,
                vary: header_list(cx, &f, "vary"),
            })
        }
        PolicyKind::Timeout => Policy::Timeout(decode_timeouts(cx, node, "`timeout` options")?),
        PolicyKind::Retry => Policy::Retry(decode_retry(cx, node, "`retry` options")?),
        PolicyKind::TrafficSplit => {
            let f = fields(cx, kind, node, &["to", "header-match"], "traffic-split: { to: [{ upstream: v1, weight: 90 }, { upstream: v2, weight: 10 }] }")?;
            let mut to = Vec::new();
            let upstream_ref =
                |cx: &mut Cx<'_>, n: &Node, refs: &mut Vec<(RefKind, NameRef)>| -> Option<Name> {
                    let text = cx.str(n, "`upstream`", "pets-v2")?;
                    let name = name_at(cx, text, n.span, "upstream")?;
                    refs.push((
                        RefKind::Upstream,
                        NameRef {
                            name: name.clone(),
                            span: n.span,
                        },
                    ));
                    Some(name)
                };
            if let Some(list) =
                cx.required(&f, "to", &what, "to: [{ upstream: pets, weight: 100 }]")
            {
                cx.non_empty(
                    list,
                    "`to`",
                    "no request could be sent anywhere",
                    "add a destination: `to: [{ upstream: pets, weight: 100 }]`",
                );
                for item in cx
                    .list(list, "`to`", "[{ upstream: pets, weight: 100 }]")
                    .unwrap_or(&[])
                {
                    let Some(tf) = cx.fields(
                        item,
                        "a split destination",
                        &["upstream", "weight"],
                        "{ upstream: pets, weight: 90 }",
                    ) else {
                        continue;
                    };
                    let up = cx
                        .required(&tf, "upstream", "a split destination", "upstream: pets")
                        .and_then(|n| upstream_ref(cx, n, refs));
                    let weight = cx
                        .required(&tf, "weight", "a split destination", "weight: 90")
                        .and_then(|n| cx.int(n, "`weight`", 0, 1000));
                    if let (Some(upstream), Some(weight)) = (up, weight) {
                        to.push(WeightedUpstream {
                            upstream,
                            weight: weight as u32,
                        });
                    }
                }
                if !to.is_empty() && to.iter().all(|w| w.weight == 0) {
                    // At the key: a block list's span runs on past its end.
                    cx.error(
                        "invalid-option",
                        f.key_span("to").unwrap_or(list.span),
                        "every weight of this split is 0, so no request could be sent",
                        "give at least one destination a weight above 0",
                    );
                }
            }
            let mut header_match = Vec::new();
            if let Some(list) = f.get("header-match") {
                for item in cx
                    .list(
                        list,
                        "`header-match`",
                        "[{ name: x-canary, value: \"1\", upstream: pets-v2 }]",
                    )
                    .unwrap_or(&[])
                {
                    let Some(hf) = cx.fields(
                        item,
                        "a header match",
                        &["name", "value", "upstream"],
                        "{ name: x-canary, value: \"1\", upstream: pets-v2 }",
                    ) else {
                        continue;
                    };
                    let name = cx
                        .required(&hf, "name", "a header match", "name: x-canary")
                        .and_then(|n| {
                            cx.parse::<HeaderName>(n, "`name`", "invalid-header", "x-canary")
                        });
                    let value = cx
                        .required(&hf, "value", "a header match", "value: \"1\"")
                        .and_then(|n| match &n.value {
                            Value::Str(s) => Some(s.clone()),
                            Value::Int(i) => Some(i.to_string()),
                            Value::Bool(b) => Some(b.to_string()),
                            _ => cx.str(n, "`value`", "\"1\"").map(str::to_string),
                        });
                    let up = cx
                        .required(&hf, "upstream", "a header match", "upstream: pets-v2")
                        .and_then(|n| upstream_ref(cx, n, refs));
                    if let (Some(name), Some(value), Some(upstream)) = (name, value, up) {
                        header_match.push(HeaderMatch {
                            name,
                            value,
                            upstream,
                        });
                    }
                }
            }
            Policy::TrafficSplit(TrafficSplit { to, header_match })
        }
        PolicyKind::Native => {
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
            Policy::Native(Native { per_target })
        }
    })
}

fn decode_jwt(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::Jwt;
    let f = fields(
        cx,
        kind,
        node,
        &[
            "issuer",
            "audiences",
            "algorithms",
            "secret",
            "public-key",
            "consumer-claim",
            "claims-to-headers",
            "leeway",
        ],
        "jwt: { algorithms: [HS256], secret: { env: JWT_SECRET } }",
    )?;
    let alg_node = cx.required(&f, "algorithms", "`jwt`", "algorithms: [RS256]")?;
    let mut listed = Vec::new();
    for item in cx.list(alg_node, "`algorithms`", "[RS256]").unwrap_or(&[]) {
        match cx.str(item, "an algorithm", "RS256")? {
            "HS256" => listed.push((JwtAlgorithm::HS256, item)),
            "RS256" => listed.push((JwtAlgorithm::RS256, item)),
            "ES256" => listed.push((JwtAlgorithm::ES256, item)),
            other => {
                cx.error(
                    "invalid-option",
                    item.span,
                    format!("`{other}` is not a supported JWT algorithm"),
                    "use HS256, RS256 or ES256",
                );
                return None;
            }
        };
    }
    let algorithms = cx.set("`algorithms`", listed);
    if algorithms.is_empty() {
        cx.error(
            "empty-list",
            alg_node.span,
            "`algorithms` is empty",
            "algorithms: [RS256]",
        );
        return None;
    }
    let hmac = algorithms.contains(&JwtAlgorithm::HS256);
    if algorithms.len() > 1 {
        let help = if f.get("secret").is_some() {
            "a `secret` is for HS256 only: `algorithms: [HS256]`"
        } else {
            "keep the one that fits the key: `algorithms: [RS256]` for an RSA key, `[ES256]` for a P-256 key"
        };
        cx.error(
            "jwt-key-mismatch",
            alg_node.span,
            format!(
                "`algorithms` lists {} algorithms, but one key verifies one algorithm",
                algorithms.len()
            ),
            help,
        );
    }
    let key = match (f.get("secret"), f.get("public-key")) {
        (Some(s), None) => {
            if !hmac {
                cx.error(
                    "jwt-key-mismatch",
                    s.span,
                    "a shared `secret` verifies HS256 only",
                    "with RS256/ES256 give `public-key: { file: keys/jwt.pub }`",
                );
                return None;
            }
            JwtKey::Secret(decode_secret(cx, s, "`secret`")?)
        }
        (None, Some(p)) => {
            if hmac {
                cx.error(
                    "jwt-key-mismatch",
                    p.span,
                    "a `public-key` cannot verify HS256",
                    "use `secret: { env: JWT_SECRET }` for HS256, in its own jwt policy",
                );
                return None;
            }
            let pf = cx.fields(
                p,
                "`public-key`",
                &["file", "env"],
                "public-key: { file: keys/jwt.pub }",
            )?;
            match (pf.get("file"), pf.get("env")) {
                (Some(file), None) => {
                    let alg = *algorithms.first().expect("checked non-empty");
                    JwtKey::PublicKeyPem(public_key_file(cx, file, alg)?)
                }
                (None, Some(_)) => match decode_secret(cx, p, "`public-key`")? {
                    Secret::Env(v) => JwtKey::PublicKeyEnv(v),
                },
                _ => {
                    cx.error(
                        "invalid-option",
                        p.span,
                        "`public-key` takes `file` or `env`, exactly one",
                        "public-key: { file: keys/jwt.pub }",
                    );
                    return None;
                }
            }
        }
        (Some(_), Some(p)) => {
            cx.error(
                "conflicting-options",
                p.span,
                "`jwt` takes `secret` or `public-key`, not both",
                "HS256 uses `secret`; RS256/ES256 use `public-key`",
            );
            return None;
        }
        (None, None) => {
            // A misspelt key is already reported as unknown, with the key suggested.
            let misspelt = f
                .entries
                .iter()
                .any(|e| super::decode::suggest(&e.key, ["secret", "public-key"]).is_some());
            if !misspelt {
                cx.error(
                    "missing-key",
                    f.span,
                    "`jwt` needs a key to verify signatures with: `secret` or `public-key`",
                    "add `secret: { env: JWT_SECRET }` for HS256, or `public-key: { file: keys/jwt.pub }` for RS256/ES256",
                );
            }
            return None;
        }
    };
    let mut claims_to_headers = BTreeMap::new();
    if let Some(n) = f.get("claims-to-headers") {
        for e in cx
            .map(n, "`claims-to-headers`", "{ sub: x-user }")
            .unwrap_or(&[])
        {
            if let Some(h) =
                cx.parse::<HeaderName>(&e.value, "a header", "invalid-header", "x-user")
            {
                claims_to_headers.insert(e.key.clone(), h);
            }
        }
    }
    Some(Policy::Jwt(Jwt {
        issuer: opt_string(cx, &f, "issuer", "https://issuer.example.com"),
        audiences: f
            .get("audiences")
            .map(|n| {
                let items = cx.list(n, "`audiences`", "[pets-api]").unwrap_or(&[]);
                let listed: Vec<_> = items
                    .iter()
                    .filter_map(|i| Some((cx.str(i, "an audience", "pets-api")?.to_string(), i)))
                    .collect();
                cx.set("`audiences`", listed)
            })
            .unwrap_or_default(),
        algorithms,
        key,
        consumer_claim: opt_string(cx, &f, "consumer-claim", "sub").unwrap_or_else(|| "sub".into()),
        claims_to_headers,
        leeway: opt_duration(cx, &f, "leeway").unwrap_or(Duration { millis: 0 }),
    }))
}

/// Reads a `public-key: { file }` and checks that it is a PEM public key
/// that fits `alg`: RSA for RS256, P-256 for ES256.
fn public_key_file(cx: &mut Cx<'_>, file: &Node, alg: JwtAlgorithm) -> Option<String> {
    let rel = cx.str(file, "`file`", "keys/jwt.pub")?;
    let Some(path) = inside_folder(cx.base_dir, rel) else {
        // One text whatever is there: a spec sent to a running gateway must
        // not learn whether some file outside its folder exists.
        cx.error(
            "file-outside-spec",
            file.span,
            format!("`{rel}` is not inside the spec's folder"),
            "put the key file in the folder of this spec file (or a folder below it) and name it relative to it, like `keys/jwt.pub`",
        );
        return None;
    };
    let pem = match std::fs::read_to_string(path) {
        Ok(pem) => pem,
        Err(e) => {
            cx.error(
                "unreadable-file",
                file.span,
                format!("cannot read `{rel}`: {e}"),
                "the path is relative to the folder of this spec file",
            );
            return None;
        }
    };
    let problem = match pem_key_type(&pem) {
        Ok(found) if found == alg => return Some(pem),
        Ok(found) => {
            let (kind, fits) = match found {
                JwtAlgorithm::ES256 => ("a P-256 (EC)", "ES256"),
                _ => ("an RSA", "RS256"),
            };
            (
                format!("`{rel}` holds {kind} public key, which cannot verify {alg:?}"),
                format!("write `algorithms: [{fits}]`, or point at the issuer's {alg:?} key"),
            )
        }
        Err((msg, help)) => (format!("`{rel}` {msg}"), help),
    };
    cx.error("invalid-public-key", file.span, problem.0, problem.1);
    None
}

/// `rel` joined to `folder`, if it names a place inside `folder`: not an
/// absolute path, no `..` that climbs out of it, and (when it exists) not
/// a symbolic link that leads out of it.
pub(super) fn inside_folder(folder: &Path, rel: &str) -> Option<PathBuf> {
    let mut depth = 0usize;
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => depth = depth.checked_sub(1)?,
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    let path = folder.join(rel);
    // The deepest part of the path that exists, links followed, must be
    // inside the folder: `link/x` with `link -> /etc` is outside whether or
    // not `/etc/x` exists.
    let existing = path.ancestors().find_map(|a| a.canonicalize().ok());
    match (existing, folder.canonicalize()) {
        (Some(real), Ok(root)) if !real.starts_with(&root) => None,
        // A link that leads nowhere is refused alike, so that whether its
        // target exists is not told either.
        _ if path.symlink_metadata().is_ok() && path.canonicalize().is_err() => None,
        _ => Some(path),
    }
}

/// The algorithm a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) serves, read from
/// its algorithm identifier; or what is wrong with the text, as (message, help).
fn pem_key_type(pem: &str) -> Result<JwtAlgorithm, (String, String)> {
    const RSA: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    const EC: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let export = "export the public half: `openssl pkey -in key.pem -pubout -out key.pub`";
    if pem.contains("PRIVATE KEY-----") {
        return Err((
            "holds a private key; the gateway needs only the public key, and the private one must not be shared".into(),
            export.into(),
        ));
    }
    if pem.contains("-----BEGIN RSA PUBLIC KEY-----") {
        return Err((
            "holds a PKCS#1 `RSA PUBLIC KEY`; a `PUBLIC KEY` (SubjectPublicKeyInfo) is needed"
                .into(),
            "convert it: `openssl rsa -RSAPublicKey_in -in key.pem -pubout -out key.pub`".into(),
        ));
    }
    let body = pem
        .split_once("-----BEGIN PUBLIC KEY-----")
        .and_then(|(_, rest)| rest.split_once("-----END PUBLIC KEY-----"))
        .map(|(body, _)| body);
    let der = body.and_then(base64_decode).ok_or_else(|| {
        (
            "holds no PEM public key (`-----BEGIN PUBLIC KEY-----`)".to_string(),
            export.to_string(),
        )
    })?;
    let has = |oid: &[u8]| der.windows(oid.len()).any(|w| w == oid);
    if has(RSA) {
        Ok(JwtAlgorithm::RS256)
    } else if has(EC) && has(P256) {
        Ok(JwtAlgorithm::ES256)
    } else if has(EC) {
        Err((
            "holds an EC key on a curve other than P-256, which ES256 requires".into(),
            "use a P-256 (prime256v1) key".into(),
        ))
    } else {
        Err((
            "holds a public key that is neither RSA nor EC P-256".into(),
            "use an RSA key (RS256) or a P-256 key (ES256)".into(),
        ))
    }
}

/// Standard base64 with padding, whitespace ignored; `None` if malformed.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let chars: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let data = chars
        .strip_suffix(b"==")
        .or_else(|| chars.strip_suffix(b"="))
        .unwrap_or(&chars);
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in data {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    (!out.is_empty()).then_some(out)
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

/// Statuses whose responses never carry a body (RFC 9110).
fn no_body_status(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// Checks the headers a `request-headers`/`response-headers` policy names:
/// each in one of `set`/`add`/`remove` only, and none that belongs to the
/// connection. `host` may only be `set`, and only on the request.
fn check_header_targets(cx: &mut Cx<'_>, kind: PolicyKind, f: &Fields<'_>) {
    let mut seen: Vec<(HeaderName, &str, crate::source::Span)> = Vec::new();
    for section in ["set", "add", "remove"] {
        let Some(node) = f.get(section) else { continue };
        let named: Vec<(&str, crate::source::Span, Option<&str>)> = match &node.value {
            Value::Map(entries) => entries
                .iter()
                .map(|e| match &e.value.value {
                    Value::Str(v) => (e.key.as_str(), e.key_span, Some(v.as_str())),
                    _ => (e.key.as_str(), e.key_span, None),
                })
                .collect(),
            Value::Seq(items) => items
                .iter()
                .filter_map(|i| match &i.value {
                    Value::Str(t) => Some((t.as_str(), i.span, None)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for (text, span, value) in named {
            let Ok(name) = text.parse::<HeaderName>() else {
                continue;
            };
            if let Some((_, first, first_span)) = seen.iter().find(|(n, ..)| *n == name) {
                if *first == section && section == "remove" {
                    continue; // a repeat in a list: reported as a duplicate entry
                }
                let msg = if *first == section {
                    format!(
                        "header `{name}` is given twice in `{section}` (header names ignore case)"
                    )
                } else {
                    format!("header `{name}` is in both `{first}` and `{section}`")
                };
                cx.diags.push(
                    Diagnostic::error("header-conflict", span, msg)
                        .with_related(*first_span, format!("first in `{first}` here"))
                        .with_help("keep it in one place: `set` replaces a header, `add` appends a line, `remove` deletes it"),
                );
                continue;
            }
            check_connection_header(cx, kind, section, &name, span, value);
            seen.push((name, section, span));
        }
    }
}

/// Reports a connection-level header in a header transform.
fn check_connection_header(
    cx: &mut Cx<'_>,
    kind: PolicyKind,
    section: &str,
    name: &HeaderName,
    span: crate::source::Span,
    value: Option<&str>,
) {
    let n = name.as_str();
    if !CONNECTION_HEADERS.contains(&n) {
        return;
    }
    let (msg, help) = match n {
        "host" if kind == PolicyKind::RequestHeaders && section == "set" => return,
        "host" if kind == PolicyKind::RequestHeaders => (
            format!("`host` cannot be `{section}`: a request has exactly one host"),
            format!(
                "to choose the host the upstream sees, write `set: {{ host: {} }}`",
                value.unwrap_or("api.internal.example")
            ),
        ),
        "host" => (
            "`host` is a request header; responses do not carry it".to_string(),
            "remove it".to_string(),
        ),
        "content-length" => (
            "`content-length` cannot be changed: the gateway sets it from the body it sends".to_string(),
            "remove it".to_string(),
        ),
        _ => (
            format!("`{n}` is a connection-level header: each hop sets its own, so `{kind}` cannot change it"),
            "remove it; the gateway manages connection headers itself".to_string(),
        ),
    };
    cx.error("connection-header", span, msg, help);
}

/// A YAML node as JSON (mock bodies, native pass-through).
fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Str(s) => J::String(s.clone()),
        Value::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        // Keys sorted, whatever order they were written in and whichever
        // map serde_json is built with: key order means nothing in JSON, so
        // it must not reach the IR or its hash.
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), to_json(&e.value)))
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect(),
        ),
    }
}
