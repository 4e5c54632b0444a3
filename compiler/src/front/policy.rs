//! Decoding each policy kind's options into checked IR values.

use super::ast::{NameRef, PolicyAst, RefKind};
use super::decode::{did_you_mean, Cx, Fields};
use super::spec::{decode_retry, decode_timeouts, name_at};
use super::yaml::{Node, Value};
use crate::ir::policy::*;
use crate::ir::values::{check_header_value, Date, Duration, HeaderName, Method, Name, Secret};
use crate::ir::PathPattern;
use std::collections::{BTreeMap, BTreeSet};

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
    Some(PolicyAst {
        policy,
        kind_span: entry.key_span,
        refs,
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
                cx.error("invalid-header", e.key_span, msg, "for example `x-source`");
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
            cx.error(
                "invalid-header-value",
                e.value.span,
                msg,
                "keep header values on one line",
            );
            continue;
        }
        out.insert(name, value);
    }
    out
}

fn header_list(cx: &mut Cx<'_>, f: &Fields<'_>, key: &str) -> Vec<HeaderName> {
    f.get(key)
        .map(|n| cx.parse_list(n, &format!("`{key}`"), "invalid-header", "x-request-id"))
        .unwrap_or_default()
}

fn opt_duration(cx: &mut Cx<'_>, f: &Fields<'_>, key: &str) -> Option<Duration> {
    f.get(key)
        .and_then(|n| cx.parse(n, &format!("`{key}`"), "invalid-duration", "5s"))
}

fn opt_string(cx: &mut Cx<'_>, f: &Fields<'_>, key: &str, example: &str) -> Option<String> {
    f.get(key)
        .and_then(|n| cx.str(n, &format!("`{key}`"), example))
        .map(str::to_string)
}

fn group_refs(cx: &mut Cx<'_>, node: &Node, refs: &mut Vec<(RefKind, NameRef)>) -> BTreeSet<Name> {
    let mut out = BTreeSet::new();
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
            out.insert(name);
        }
    }
    out
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
            let mut nets = |key: &str| -> Vec<ipnet::IpNet> {
                f.get(key)
                    .map(|n| {
                        let items = cx
                            .list(n, &format!("`{key}`"), "[10.0.0.0/8]")
                            .unwrap_or(&[]);
                        items
                            .iter()
                            .filter_map(|item| {
                                let text = cx.str(item, "an address", "10.0.0.0/8")?;
                                let net = text.parse::<ipnet::IpNet>().ok().or_else(|| {
                                    text.parse::<std::net::IpAddr>()
                                        .ok()
                                        .map(ipnet::IpNet::from)
                                });
                                if net.is_none() {
                                    cx.error(
                                        "invalid-cidr",
                                        item.span,
                                        format!("`{text}` is not an IP address or CIDR range"),
                                        "write `10.0.0.0/8`, `192.0.2.7` or `2001:db8::/32`",
                                    );
                                }
                                net.map(|n| n.trunc())
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let allow = nets("allow");
            let deny = nets("deny");
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
            let mut origins = Vec::new();
            if let Some(n) = cx.required(
                &f,
                "origins",
                &what,
                "origins: [\"https://app.example.com\"]",
            ) {
                for item in cx
                    .list(n, "`origins`", "[\"https://app.example.com\"]")
                    .unwrap_or(&[])
                {
                    let Some(o) = cx.str(item, "an origin", "https://app.example.com") else {
                        continue;
                    };
                    if o == "*" || is_origin(o) {
                        origins.push(o.to_string());
                    } else {
                        cx.error("invalid-origin", item.span, format!("`{o}` is not an origin"), "write `*` or `https://app.example.com` (scheme, host, optional port; no path)");
                    }
                }
            }
            let credentials = f
                .get("credentials")
                .and_then(|n| cx.bool(n, "`credentials`"))
                .unwrap_or(false);
            if credentials && origins.iter().any(|o| o == "*") {
                cx.error(
                    "cors-credentials-wildcard",
                    f.get("credentials").map_or(f.span, |n| n.span),
                    "`credentials: true` cannot be combined with origin `*`: browsers refuse it",
                    "list the allowed origins explicitly",
                );
            }
            Policy::Cors(Cors {
                origins,
                methods: f
                    .get("methods")
                    .map(|n| cx.parse_list::<Method>(n, "`methods`", "invalid-method", "GET"))
                    .unwrap_or_default(),
                headers: header_list(cx, &f, "headers"),
                expose: header_list(cx, &f, "expose"),
                credentials,
                max_age: opt_duration(cx, &f, "max-age"),
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
                max: cx.parse(n, "`max`", "invalid-size", "1MiB")?,
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
                .and_then(|n| cx.parse::<Duration>(n, "`per`", "invalid-duration", "1m"));
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
            if per.millis < 1000 {
                cx.error(
                    "invalid-option",
                    f.get("per").map_or(f.span, |n| n.span),
                    "a rate-limit window is at least one second",
                    "per: 1s",
                );
                return None;
            }
            Policy::RateLimit(RateLimit {
                requests: requests? as u64,
                per,
                key,
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
                if !(l.starts_with("https://") || l.starts_with("http://"))
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
            Policy::Deprecation(Deprecation {
                since: date(cx, "since"),
                sunset: date(cx, "sunset"),
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
            let absolute = to.starts_with("https://") || to.starts_with("http://");
            if !(absolute || to.starts_with('/'))
                || check_header_value(&to).is_err()
                || to.contains(' ')
            {
                cx.error("invalid-url", to_node.span, format!("`{to}` is not a redirect target"), "write an absolute URL (`https://example.com/new`) or a path (`/v2/items/{id}`)");
                return None;
            }
            let status = match f.get("status") {
                None => 302,
                Some(n) => match cx.int(n, "`status`", 300, 399)? {
                    s @ (301 | 302 | 307 | 308) => s as u16,
                    s => {
                        cx.error(
                            "invalid-option",
                            n.span,
                            format!("redirect status {s} is not supported"),
                            "use 301, 302, 307 or 308",
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
                let p: PathPattern = cx.parse(n, &format!("`{key}`"), "invalid-path", "/v1")?;
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
                    let p: PathPattern =
                        cx.parse(n, "rewrite `path`", "invalid-path", "/v2/items/{id}")?;
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
                .and_then(|n| cx.parse(n, "`ttl`", "invalid-duration", "30s"))?;
            let methods: BTreeSet<Method> = match f.get("methods") {
                None => [Method::Get, Method::Head].into_iter().collect(),
                Some(n) => {
                    let ms: Vec<Method> = cx.parse_list(n, "`methods`", "invalid-method", "GET");
                    if let Some(m) = ms.iter().find(|m| !matches!(m, Method::Get | Method::Head)) {
                        cx.error(
                            "invalid-option",
                            n.span,
                            format!("`{}` responses are not cacheable", m.as_str()),
                            "cache `methods` may hold GET and HEAD",
                        );
                        return None;
                    }
                    ms.into_iter().collect()
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
                    cx.error(
                        "invalid-option",
                        list.span,
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
                if let Some(t) = TargetKind::parse(&e.key) {
                    per_target.insert(t, to_json(&e.value));
                }
            }
            if per_target.is_empty() {
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
    let mut algorithms = BTreeSet::new();
    for item in cx.list(alg_node, "`algorithms`", "[RS256]").unwrap_or(&[]) {
        match cx.str(item, "an algorithm", "RS256")? {
            "HS256" => algorithms.insert(JwtAlgorithm::HS256),
            "RS256" => algorithms.insert(JwtAlgorithm::RS256),
            "ES256" => algorithms.insert(JwtAlgorithm::ES256),
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
    let key = match (f.get("secret"), f.get("public-key")) {
        (Some(s), None) => {
            if algorithms.len() > 1 || !hmac {
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
                    let rel = cx.str(file, "`file`", "keys/jwt.pub")?;
                    let path = cx.base_dir.join(rel);
                    match std::fs::read_to_string(&path) {
                        Ok(pem) if pem.contains("-----BEGIN PUBLIC KEY-----") => {
                            JwtKey::PublicKeyPem(pem)
                        }
                        Ok(_) => {
                            cx.error("invalid-public-key", file.span, format!("`{rel}` holds no PEM public key (`-----BEGIN PUBLIC KEY-----`)"), "export it with `openssl rsa -pubout` or `openssl ec -pubout`");
                            return None;
                        }
                        Err(e) => {
                            cx.error(
                                "unreadable-file",
                                file.span,
                                format!("cannot read `{rel}`: {e}"),
                                "the path is relative to this spec file",
                            );
                            return None;
                        }
                    }
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
            cx.missing(
                &f,
                "secret",
                "`jwt`",
                "secret: { env: JWT_SECRET } (HS256) or public-key: { file: keys/jwt.pub }",
            );
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
                items
                    .iter()
                    .filter_map(|i| cx.str(i, "an audience", "pets-api").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        algorithms,
        key,
        consumer_claim: opt_string(cx, &f, "consumer-claim", "sub").unwrap_or_else(|| "sub".into()),
        claims_to_headers,
        leeway: opt_duration(cx, &f, "leeway").unwrap_or(Duration { millis: 0 }),
    }))
}

/// `scheme://host[:port]`, no path.
fn is_origin(o: &str) -> bool {
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = crate::ir::matcher::host_without_port(r);
        !host.is_empty()
            && !r.contains(['/', '?', '#', '@', ' '])
            && host.parse::<crate::ir::HostPattern>().is_ok()
    })
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
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), to_json(&e.value)))
                .collect(),
        ),
    }
}
