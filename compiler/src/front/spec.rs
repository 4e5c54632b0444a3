//! Decoding the sections of a spec file: `gatefold`, `gateway`, `upstreams`,
//! `consumers`, `policies`, `apis`.

use super::ast::*;
use super::decode::{suggest, Cx, Fields};
use super::policy::decode_policy_object;
use super::values::{decode_retry, decode_secret, decode_timeouts, duration, name_at};
use super::yaml::{Node, Value};
use crate::diag::Diagnostic;
use crate::ir::policy::PolicyKind;
use crate::ir::values::{Duration, HeaderName, Method, Name};
use crate::ir::{Balance, BasicCredential, HealthCheck, OriginServer, OriginUrl, Upstream};
use std::collections::BTreeSet;

const TOP: &[&str] = &[
    "gatefold",
    "gateway",
    "upstreams",
    "consumers",
    "policies",
    "apis",
];

/// Decodes one file into `spec`, reporting names defined twice across files.
pub fn decode_file(cx: &mut Cx<'_>, root: &Node, spec: &mut SpecAst) {
    if root.value == Value::Null {
        cx.error(
            "empty-spec",
            root.span,
            "this spec file is empty",
            "start it with `gatefold: 1`",
        );
        return;
    }
    let Some(f) = cx.fields(root, "the spec", TOP, "gatefold: 1") else {
        spec.decode_errors = true;
        return;
    };
    note_misspelt_sections(&f, spec);
    match f.get("gatefold") {
        None => cx.error(
            "missing-version",
            f.entries.first().map_or(root.span, |e| e.key_span),
            "a spec file must say which language version it is written in",
            "add `gatefold: 1` as its first line",
        ),
        Some(n) if n.value == Value::Int(1) => {}
        Some(n) => cx.error(
            "unsupported-version",
            n.span,
            "this gatefold understands language version 1 only",
            "write `gatefold: 1`",
        ),
    }
    if let Some(n) = f.get("gateway") {
        if let Some(gw) = decode_gateway(cx, n) {
            let at = f.key_span("gateway").unwrap_or(n.span);
            match &spec.gateway {
                Some(first) => cx.diags.push(
                    Diagnostic::error("duplicate-definition", at, "`gateway` is defined twice")
                        .with_related(first.span, "first defined here")
                        .with_help("keep one `gateway:` section in the spec"),
                ),
                None => spec.gateway = Some(GatewayAst { span: at, ..gw }),
            }
        }
    }
    if let Some(n) = f.get("upstreams") {
        let failed = named(
            cx,
            n,
            "upstreams",
            "upstream",
            &mut spec.upstreams,
            &mut spec.upstream_names,
            decode_upstream,
        );
        spec.undecoded_upstreams.extend(failed);
    }
    if let Some(n) = f.get("consumers") {
        let failed = named(
            cx,
            n,
            "consumers",
            "consumer",
            &mut spec.consumers,
            &mut spec.consumer_names,
            decode_consumer,
        );
        spec.undecoded_consumers |= !failed.is_empty();
    }
    if let Some(n) = f.get("policies") {
        let failed = named(
            cx,
            n,
            "policies",
            "policy",
            &mut spec.policies,
            &mut spec.policy_names,
            decode_policy_def,
        );
        spec.undecoded_policies.extend(failed);
    }
    if let Some(n) = f.get("apis") {
        named(
            cx,
            n,
            "apis",
            "api",
            &mut spec.apis,
            &mut spec.api_names,
            decode_api,
        );
    }
    spec.decode_errors |= cx.diags.has_errors();
}

/// A misspelt section (`upstream:` for `upstreams:`) is reported as an
/// unknown key; the names it defines are then unknown rather than missing,
/// so references to them are not reported a second time.
fn note_misspelt_sections(f: &Fields<'_>, spec: &mut SpecAst) {
    for e in f.entries {
        if TOP.contains(&e.key.as_str()) {
            continue;
        }
        let out = match suggest(&e.key, TOP.iter().copied()) {
            Some("upstreams") => &mut spec.undecoded_upstreams,
            Some("policies") => &mut spec.undecoded_policies,
            Some("consumers") => {
                spec.undecoded_consumers = true;
                continue;
            }
            _ => continue,
        };
        if let Value::Map(entries) = &e.value.value {
            out.extend(entries.iter().filter_map(|d| d.key.parse::<Name>().ok()));
        }
    }
}

/// A `NAME: definition` section, appended to `out`; a name already defined
/// (in this or another file) is an error naming both places. Returns the
/// names whose definitions could not be decoded.
fn named<T>(
    cx: &mut Cx<'_>,
    node: &Node,
    section: &str,
    what: &str,
    out: &mut Vec<Def<T>>,
    index: &mut NameIndex,
    decode: impl Fn(&mut Cx<'_>, &Node, &Name) -> Option<T>,
) -> Vec<Name> {
    let mut failed = Vec::new();
    let example = format!("{section}: {{ my-{what}: ... }}");
    let Some(entries) = cx.map(node, &format!("`{section}`"), &example) else {
        return failed;
    };
    let NameIndex { exact, folded } = index;
    // Exact, not doubling: 100,000 routes in one api are a large share of
    // the compiler's peak memory.
    out.reserve_exact(entries.len());
    for e in entries {
        let Some(name) = name_at(cx, &e.key, e.key_span, what) else {
            continue;
        };
        if let Some(first) = exact.get(name.as_str()).map(|&i| &out[i]) {
            cx.diags.push(
                Diagnostic::error(
                    "duplicate-definition",
                    e.key_span,
                    format!("{what} `{name}` is defined twice"),
                )
                .with_related(first.span, "first defined here")
                .with_help(format!("rename one of them or remove the second `{name}`")),
            );
            continue;
        }
        let lower = name.as_str().to_ascii_lowercase();
        if let Some(other) = folded.get(&lower).map(|&i| &out[i]) {
            cx.diags.push(
                Diagnostic::error(
                    "name-case-clash",
                    e.key_span,
                    format!(
                        "{what} `{name}` differs from {what} `{}` only in case",
                        other.name
                    ),
                )
                .with_related(other.span, format!("`{}` is defined here", other.name))
                .with_help(format!(
                    "some targets name generated objects without regard to case, so `{name}` and `{}` would collide; rename one of them",
                    other.name
                )),
            );
        }
        match decode(cx, &e.value, &name) {
            Some(value) => {
                exact.insert(name.as_str().to_string(), out.len());
                folded.entry(lower).or_insert(out.len());
                out.push(Def {
                    name,
                    span: e.key_span,
                    value,
                });
            }
            None => failed.push(name),
        }
    }
    failed
}

fn decode_gateway(cx: &mut Cx<'_>, node: &Node) -> Option<GatewayAst> {
    let f = cx.fields(
        node,
        "`gateway`",
        &["name", "listen", "baseline", "policies", "tls"],
        "gateway: { name: edge, listen: 8080 }",
    )?;
    let mut gw = GatewayAst {
        span: f.key_span("name").unwrap_or(node.span),
        name: f
            .get("name")
            .and_then(|n| cx.parse(n, "gateway `name`", "invalid-name", "edge")),
        listen: f
            .get("listen")
            .and_then(|n| cx.int(n, "gateway `listen`", 1, 65535))
            .map(|p| p as u16),
        request_id: None,
        max_body: None,
        connect_timeout: None,
        read_timeout: None,
        server_header: None,
        client_address: None,
        policies: f
            .get("policies")
            .map(|n| decode_policy_list(cx, n))
            .unwrap_or_default(),
        tls: None,
    };
    gw.span = node.span;
    gw.tls = f
        .get("tls")
        .and_then(|n| super::tls::decode(cx, n, gw.listen.unwrap_or(8080)));
    if let Some(b) = f.get("baseline") {
        if let Some(bf) = cx.fields(
            b,
            "`baseline`",
            &[
                "request-id",
                "max-body",
                "timeouts",
                "server-header",
                "client-address",
            ],
            "baseline: { request-id: true, max-body: 1MiB }",
        ) {
            gw.request_id = bf
                .get("request-id")
                .and_then(|n| cx.bool(n, "`request-id`"));
            gw.server_header = bf
                .get("server-header")
                .and_then(|n| cx.bool(n, "`server-header`"));
            gw.client_address = bf
                .get("client-address")
                .and_then(|n| super::client_address::decode(cx, n));
            gw.max_body = bf
                .get("max-body")
                .and_then(|n| cx.positive_size(n, "`max-body`", "1MiB"));
            if let Some(t) = bf.get("timeouts") {
                if let Some(tf) = cx.fields(
                    t,
                    "baseline `timeouts`",
                    &["connect", "read"],
                    "timeouts: { connect: 5s, read: 30s }",
                ) {
                    gw.connect_timeout = duration(cx, &tf, "connect", "timeout");
                    gw.read_timeout = duration(cx, &tf, "read", "timeout");
                }
            }
        }
    }
    Some(gw)
}

fn decode_upstream(cx: &mut Cx<'_>, node: &Node, name: &Name) -> Option<Upstream> {
    let what = format!("upstream `{name}`");
    let f = cx.fields(
        node,
        &what,
        &["targets", "balance", "health", "retries", "timeouts"],
        "{ targets: [{ url: \"http://127.0.0.1:9001\" }] }",
    )?;
    let mut targets = Vec::new();
    if let Some(t) = cx.required(
        &f,
        "targets",
        &what,
        "targets: [{ url: \"http://127.0.0.1:9001\" }]",
    ) {
        for item in cx
            .list(t, "`targets`", "[{ url: \"http://127.0.0.1:9001\" }]")
            .unwrap_or(&[])
        {
            let Some(tf) = cx.fields(
                item,
                "an upstream target",
                &["url", "weight"],
                "{ url: \"http://127.0.0.1:9001\", weight: 1 }",
            ) else {
                continue;
            };
            let url = cx
                .required(
                    &tf,
                    "url",
                    "an upstream target",
                    "url: \"http://127.0.0.1:9001\"",
                )
                .and_then(|n| origin_url(cx, n));
            let weight = match tf.get("weight") {
                Some(n) => cx.int(n, "`weight`", 1, 1000).map(|w| w as u32),
                None => Some(1),
            };
            if let (Some(url), Some(weight)) = (url, weight) {
                targets.push(OriginServer { url, weight });
            }
        }
        if targets.is_empty() && matches!(&t.value, Value::Seq(s) if s.is_empty()) {
            cx.error(
                "empty-list",
                t.span,
                format!("{what} has no targets"),
                "add `- url: \"http://127.0.0.1:9001\"`",
            );
        }
    }
    let balance = match f.get("balance") {
        None => Balance::RoundRobin,
        Some(n) => {
            let text = cx.str(n, "`balance`", "round-robin")?;
            match text {
                "round-robin" => Balance::RoundRobin,
                "least-request" => Balance::LeastRequest,
                _ => match text
                    .strip_prefix("hash-header:")
                    .map(str::parse::<HeaderName>)
                {
                    Some(Ok(h)) => Balance::HashHeader(h),
                    _ => {
                        cx.error(
                            "invalid-balance",
                            n.span,
                            format!("`{text}` is not a balancing method"),
                            "use `round-robin`, `least-request` or `hash-header:x-user`",
                        );
                        return None;
                    }
                },
            }
        }
    };
    let health = f.get("health").and_then(|n| {
        let hf = cx.fields(
            n,
            "`health`",
            &[
                "path",
                "interval",
                "timeout",
                "unhealthy-after",
                "healthy-after",
            ],
            "health: { path: /healthz, interval: 10s }",
        )?;
        let path = cx.required(&hf, "path", "`health`", "path: /healthz")?;
        let path = cx.str(path, "health `path`", "/healthz").and_then(|p| {
            if p.starts_with('/') && !p.contains(char::is_whitespace) {
                Some(p.to_string())
            } else {
                cx.error(
                    "invalid-path",
                    path.span,
                    format!("health `path` `{p}` must start with `/` and hold no spaces"),
                    "path: /healthz",
                );
                None
            }
        })?;
        let count = |cx: &mut Cx<'_>, key: &str, default: u32| match hf.get(key) {
            Some(n) => cx.int(n, &format!("`{key}`"), 1, 100).map(|v| v as u32),
            None => Some(default),
        };
        Some(HealthCheck {
            path,
            interval: duration(cx, &hf, "interval", "health").unwrap_or(Duration::from_secs(10)),
            timeout: duration(cx, &hf, "timeout", "health").unwrap_or(Duration::from_secs(2)),
            unhealthy_after: count(cx, "unhealthy-after", 3)?,
            healthy_after: count(cx, "healthy-after", 2)?,
        })
    });
    let retries = f
        .get("retries")
        .and_then(|n| decode_retry(cx, n, "`retries`"));
    let timeouts = f
        .get("timeouts")
        .and_then(|n| decode_timeouts(cx, n, "upstream `timeouts`"));
    if targets.is_empty() {
        return None;
    }
    Some(Upstream {
        targets,
        balance,
        health,
        retries,
        timeouts,
    })
}

/// An upstream target's `url`: scheme, host and port only.
fn origin_url(cx: &mut Cx<'_>, node: &Node) -> Option<OriginUrl> {
    let text = cx.str(node, "target `url`", "http://127.0.0.1:9001")?;
    let Some((scheme, authority)) = text.split_once("://") else {
        cx.error(
            "invalid-url",
            node.span,
            format!("target `url` `{text}` has no scheme"),
            format!("write `url: http://{text}` (or `https://`)"),
        );
        return None;
    };
    if let Some((host, path)) = authority.split_once('/') {
        let (msg, help) = if path.is_empty() {
            (
                format!(
                    "target `url` `{text}` ends in `/`: a target is scheme, host and port only"
                ),
                format!("write `url: {scheme}://{host}`"),
            )
        } else {
            (
                format!("target `url` `{text}` has a path: a target is scheme, host and port only"),
                format!("write `url: {scheme}://{host}`, and add `/{path}` to the path sent upstream with `rewrite: {{ add-prefix: /{path} }}`"),
            )
        };
        cx.error("invalid-url", node.span, msg, help);
        return None;
    }
    // The example follows the kind of host written: an IPv6 address gets
    // an IPv6 example, its port after the `]`.
    let example = match authority.split_once(']') {
        Some((addr, _)) if addr.starts_with('[') => format!("{scheme}://{addr}]:9001"),
        _ => "http://127.0.0.1:9001".to_string(),
    };
    cx.parse::<OriginUrl>(node, "target `url`", "invalid-url", &example)
}

fn decode_consumer(cx: &mut Cx<'_>, node: &Node, name: &Name) -> Option<ConsumerAst> {
    let what = format!("consumer `{name}`");
    let f = cx.fields(
        node,
        &what,
        &["groups", "credentials"],
        "{ groups: [gold], credentials: { key: { env: ACME_KEY } } }",
    )?;
    let listed: Vec<(NameRef, &Node)> = f
        .get("groups")
        .and_then(|n| cx.list(n, "consumer `groups`", "groups: [gold]"))
        .unwrap_or(&[])
        .iter()
        .filter_map(|n| Some((name_ref(cx, n, "group")?, n)))
        .collect();
    let groups = cx.set(
        "consumer `groups`",
        listed.iter().map(|(r, n)| (r.name.clone(), *n)),
    );
    let mut consumer = ConsumerAst {
        groups,
        group_refs: listed.into_iter().map(|(r, _)| r).collect(),
        keys: BTreeSet::new(),
        basic: None,
        basic_user_span: None,
    };
    if let Some(c) = f.get("credentials") {
        let cf = cx.fields(
            c,
            "`credentials`",
            &["key", "keys", "basic"],
            "credentials: { key: { env: ACME_KEY } }",
        )?;
        if let (Some(_), Some(keys)) = (cf.get("key"), cf.get("keys")) {
            cx.error(
                "conflicting-keys",
                keys.span,
                "give `key` or `keys`, not both",
                "use `keys: [...]` while rotating, `key:` otherwise",
            );
        }
        if let Some(k) = cf.get("key") {
            consumer.keys.extend(decode_secret(cx, k, "`key`"));
        }
        if let Some(ks) = cf.get("keys") {
            cx.non_empty(
                ks,
                "`keys`",
                "this consumer would have no key",
                "list at least one key: `keys: [{ env: ACME_API_KEY }]`",
            );
            let listed: Vec<_> = cx
                .list(ks, "`keys`", "keys: [{ env: KEY_OLD }, { env: KEY_NEW }]")
                .unwrap_or(&[])
                .iter()
                .filter_map(|k| Some((decode_secret(cx, k, "a key")?, k)))
                .collect();
            consumer.keys.extend(cx.set("`keys`", listed));
        }
        if let Some(b) = cf.get("basic") {
            let bf = cx.fields(
                b,
                "`basic`",
                &["user", "password"],
                "basic: { user: acme, password: { env: ACME_PASS } }",
            )?;
            let user_node = cx.required(&bf, "user", "`basic`", "user: acme");
            let user = user_node
                .and_then(|n| cx.str(n, "`user`", "acme"))
                .map(str::to_string);
            let password = cx
                .required(&bf, "password", "`basic`", "password: { env: ACME_PASS }")
                .and_then(|n| decode_secret(cx, n, "`password`"));
            if let (Some(user), Some(password), Some(at)) = (user, password, user_node) {
                if user.is_empty() || user.contains(':') || user.contains(char::is_control) {
                    cx.error(
                        "invalid-user",
                        at.span,
                        format!("basic-auth user `{user}` may not be empty or contain `:` or control characters"),
                        "user: acme",
                    );
                }
                consumer.basic = Some(BasicCredential { user, password });
                consumer.basic_user_span = Some(at.span);
            }
        }
    }
    Some(consumer)
}

/// A `policies:` list: names and inline one-key objects.
pub fn decode_policy_list(cx: &mut Cx<'_>, node: &Node) -> Vec<PolicyRef> {
    let Some(items) = cx.list(
        node,
        "`policies`",
        "policies: [require-key, { cors: { origins: [\"*\"] } }]",
    ) else {
        return Vec::new();
    };
    let mut refs: Vec<PolicyRef> = items
        .iter()
        .filter_map(|item| decode_policy_ref(cx, item))
        .collect();
    // One list per api and route: no spare capacity (at 100,000 routes the
    // doubling's slack was 12 MB of the peak).
    refs.shrink_to_fit();
    refs
}

fn decode_policy_ref(cx: &mut Cx<'_>, node: &Node) -> Option<PolicyRef> {
    match &node.value {
        Value::Str(s) => {
            let name = name_at(cx, s, node.span, "policy")?;
            Some(PolicyRef::Named(NameRef {
                name,
                span: node.span,
            }))
        }
        Value::Map(_) => decode_policy_object(cx, node).map(|p| PolicyRef::Inline(Box::new(p))),
        _ => {
            cx.error(
                "wrong-type",
                node.span,
                format!(
                    "a policy entry must be a policy name or a one-key object, found {}",
                    node.value.describe()
                ),
                "write `- require-key` or `- rate-limit: { requests: 100, per: 1m }`",
            );
            None
        }
    }
}

fn decode_policy_def(cx: &mut Cx<'_>, node: &Node, _name: &Name) -> Option<PolicyDef> {
    match &node.value {
        Value::Seq(_) => Some(PolicyDef::Bundle(decode_policy_list(cx, node))),
        _ => decode_policy_object(cx, node).map(PolicyDef::Single),
    }
}

fn decode_disable(cx: &mut Cx<'_>, node: &Node) -> Disable {
    let kinds: Vec<&str> = PolicyKind::ALL.iter().map(|k| k.as_str()).collect();
    let Some(items) = cx.list(node, "`disable`", "disable: [rate-limit]") else {
        return Vec::new();
    };
    let mut listed = Vec::new();
    for item in items {
        let Some(text) = cx.str(item, "a `disable` entry", "rate-limit") else {
            continue;
        };
        match PolicyKind::parse(text) {
            Some(k) => listed.push((k, item)),
            None => cx.error(
                "unknown-policy-kind",
                item.span,
                format!("`{text}` is not a policy kind"),
                super::decode::did_you_mean(text, &kinds),
            ),
        }
    }
    // A set, but each entry keeps its place for later diagnostics.
    let kinds = cx.set("`disable`", listed.iter().map(|(k, n)| (*k, *n)));
    let mut out: Disable = Vec::with_capacity(kinds.len());
    for (k, n) in listed {
        if !out.iter().any(|(seen, _)| *seen == k) {
            out.push((k, n.span));
        }
    }
    out
}

fn name_ref(cx: &mut Cx<'_>, node: &Node, what: &str) -> Option<NameRef> {
    let text = cx.str(node, what, "pets")?;
    let name = name_at(cx, text, node.span, what)?;
    Some(NameRef {
        name,
        span: node.span,
    })
}

fn decode_api(cx: &mut Cx<'_>, node: &Node, name: &Name) -> Option<ApiAst> {
    let what = format!("api `{name}`");
    let f = cx.fields(
        node,
        &what,
        &[
            "hosts",
            "base-path",
            "strip-base-path",
            "upstream",
            "policies",
            "disable",
            "routes",
            "preserve-host",
        ],
        "{ base-path: /pets, upstream: pets, routes: { list: { path: / } } }",
    )?;
    let hosts = f.get("hosts").map(|n| hosts(cx, n)).unwrap_or_default();
    let base_path = match f.get("base-path") {
        None => "/".parse().expect("root path"),
        Some(n) => {
            let p = cx.path(n, "`base-path`", "/pets")?;
            if p.kind() != crate::ir::PathKind::Exact {
                cx.error(
                    "invalid-path",
                    n.span,
                    "`base-path` must be a literal path, without `{params}` or `/*`",
                    "base-path: /pets",
                );
                return None;
            }
            p
        }
    };
    let strip_base_path = f
        .get("strip-base-path")
        .and_then(|n| cx.bool(n, "`strip-base-path`"))
        .unwrap_or(false);
    let upstream = f
        .get("upstream")
        .and_then(|n| name_ref(cx, n, "`upstream`"));
    let policies = f
        .get("policies")
        .map(|n| decode_policy_list(cx, n))
        .unwrap_or_default();
    let disable = f
        .get("disable")
        .map(|n| decode_disable(cx, n))
        .unwrap_or_default();
    let mut routes = Vec::new();
    match cx.required(
        &f,
        "routes",
        &what,
        "routes: { list: { path: /, methods: [GET] } }",
    ) {
        Some(r) => {
            let why = "the api would answer no request";
            if !cx.non_empty(
                r,
                "`routes`",
                why,
                "add a route: `routes: { list: { path: / } }`",
            ) {
                return None;
            }
            named(
                cx,
                r,
                "routes",
                "route",
                &mut routes,
                &mut NameIndex::default(),
                decode_route,
            );
        }
        None => return None,
    }
    Some(ApiAst {
        hosts,
        base_path,
        strip_base_path,
        strip_base_path_span: f.get("strip-base-path").map(|n| n.span),
        upstream,
        policies,
        disable,
        routes,
        preserve_host: f
            .get("preserve-host")
            .and_then(|n| cx.bool(n, "`preserve-host`")),
    })
}

/// An api's `hosts`: at least one, each a lowercase host name.
/// A set: order and repeats do not matter.
fn hosts(cx: &mut Cx<'_>, node: &Node) -> BTreeSet<crate::ir::HostPattern> {
    if !cx.non_empty(
        node,
        "`hosts`",
        "an api answers the hosts listed, or any host when `hosts` is left out",
        "list hosts, like `hosts: [api.example.com]`, or remove `hosts` to answer any host",
    ) {
        return BTreeSet::new();
    }
    let items = cx.list(node, "`hosts`", "[api.example.com]").unwrap_or(&[]);
    let mut out = Vec::new();
    for item in items {
        let Some(text) = cx.str(item, "a host", "api.example.com") else {
            continue;
        };
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            // Hosts match case-insensitively; one spelling keeps generated configs stable.
            cx.error(
                "invalid-host",
                item.span,
                format!("host `{text}` has capitals; hosts are written in lowercase"),
                format!("write `{}`", text.to_ascii_lowercase()),
            );
            continue;
        }
        if let Some(host) = cx.parse(item, "a host", "invalid-host", "api.example.com") {
            out.push((host, item));
        }
    }
    cx.set("`hosts`", out)
}

const ROUTE_KEYS: &[&str] = &[
    "path",
    "methods",
    "match",
    "upstream",
    "policies",
    "disable",
    "preserve-host",
];

fn decode_route(cx: &mut Cx<'_>, node: &Node, name: &Name) -> Option<RouteAst> {
    let what = format!("route `{name}`");
    // `methods: [GET]` one level too far left reads as a route named
    // `methods`: say what was probably meant, not "must be a mapping".
    if ROUTE_KEYS.contains(&name.as_str()) && !matches!(node.value, Value::Map(_)) {
        cx.error(
            "misplaced-key",
            node.span,
            format!("`{name}` is read as the name of a route, because it is indented at the level of the routes"),
            format!("it probably belongs to the route above it: indent `{name}:` under that route's name, beside its `path`"),
        );
        return None;
    }
    let f = cx.fields(
        node,
        &what,
        ROUTE_KEYS,
        "{ path: \"/{id}\", methods: [GET] }",
    )?;
    let path_node = cx.required(&f, "path", &what, "path: /")?;
    let path = cx.path(path_node, "route `path`", "/items/{id}")?;
    let methods = match f.get("methods") {
        None => None,
        Some(n) => {
            let set: BTreeSet<Method> = cx.methods(n, "`methods`");
            if set.is_empty() && !matches!(&n.value, Value::Seq(items) if items.is_empty()) {
                return None; // not a list, or no method in it could be read: reported
            }
            if set.is_empty() {
                cx.error(
                    "empty-list",
                    n.span,
                    "`methods` is empty, so the route would match nothing",
                    "list methods, or remove `methods` to take them all",
                );
                return None;
            }
            Some(set)
        }
    };
    let conditions = match f.get("match") {
        Some(n) => super::conditions::decode(cx, n)?,
        None => crate::ir::Conditions::default(),
    };
    Some(RouteAst {
        path,
        path_span: path_node.span,
        methods,
        conditions,
        preserve_host: f
            .get("preserve-host")
            .and_then(|n| cx.bool(n, "`preserve-host`")),
        upstream: f
            .get("upstream")
            .and_then(|n| name_ref(cx, n, "`upstream`")),
        policies: f
            .get("policies")
            .map(|n| decode_policy_list(cx, n))
            .unwrap_or_default(),
        disable: f
            .get("disable")
            .map(|n| decode_disable(cx, n))
            .unwrap_or_default(),
    })
}
