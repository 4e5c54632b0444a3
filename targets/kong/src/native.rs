//! `native: { kong: { plugins: [ { name, config } ] } }`: bundled Kong
//! plugins passed through, checked against Kong 3.15's published schema of
//! each (embedded from `schemas/`), scoped like the policy instance (one
//! global plugin when it covers every route, else one per route).
//!
//! Only plugins that observe (logs, metrics, traces) or tag a request
//! (`correlation-id`) are accepted. Every other bundled plugin would
//! decide who passes, answer the request itself, or change it where the
//! spec's phases do not expect it: a key-auth, an ip-restriction or a
//! request-termination beside gatefold's own policies would bypass or
//! contradict them, and pre-function / post-function hold gatefold's own
//! phase-order Lua (Kong runs one plugin of a name per route). Those are
//! refused, each with the reason, as are Enterprise plugins and unknown
//! names.

use crate::model::{Plugin, PluginConfig};
use crate::routing::route_name;
use gatefold_compiler::diag::{Diagnostic, Diagnostics};
use gatefold_compiler::ir::policy::Policy;
use gatefold_compiler::ir::{PolicyKind, TargetKind, ValidIr};
use gatefold_compiler::target::span_of;
use serde_json::Value;

/// The plugins accepted, with their schemas (Kong/developer.konghq.com,
/// `app/_schemas/gateway/plugins/3.15/`, commit bc1cd742).
const ACCEPTED: &[(&str, &str)] = &[
    (
        "correlation-id",
        include_str!("../schemas/CorrelationId.json"),
    ),
    ("datadog", include_str!("../schemas/Datadog.json")),
    ("file-log", include_str!("../schemas/FileLog.json")),
    ("http-log", include_str!("../schemas/HttpLog.json")),
    ("loggly", include_str!("../schemas/Loggly.json")),
    (
        "opentelemetry",
        include_str!("../schemas/Opentelemetry.json"),
    ),
    ("prometheus", include_str!("../schemas/Prometheus.json")),
    ("statsd", include_str!("../schemas/Statsd.json")),
    ("syslog", include_str!("../schemas/Syslog.json")),
    ("tcp-log", include_str!("../schemas/TcpLog.json")),
    ("udp-log", include_str!("../schemas/UdpLog.json")),
    ("zipkin", include_str!("../schemas/Zipkin.json")),
];

/// Kong's other bundled open-source plugins (Kong 3.x), and why each is
/// refused.
const REFUSED: &[(&str, &str)] = &[
    ("key-auth", AUTH),
    ("basic-auth", AUTH),
    ("hmac-auth", AUTH),
    ("jwt", AUTH),
    ("ldap-auth", AUTH),
    ("oauth2", AUTH),
    ("session", AUTH),
    ("acl", AUTH),
    ("ip-restriction", "it refuses clients by address, beside and in another phase than gatefold's `ip-filter`: use `ip-filter`"),
    ("bot-detection", "it refuses clients, which only gatefold's own security policies may do, in the spec's phase order: use `ip-filter`, an authentication or a `script`"),
    ("rate-limiting", LIMIT),
    ("response-ratelimiting", LIMIT),
    ("request-size-limiting", LIMIT),
    ("request-termination", ANSWERS),
    ("redirect", ANSWERS),
    ("proxy-cache", ANSWERS),
    ("aws-lambda", ANSWERS),
    ("azure-functions", ANSWERS),
    ("acme", ANSWERS),
    ("ai-proxy", ANSWERS),
    ("pre-function", "it runs arbitrary Lua, and gatefold's own phase-order Lua is the route's pre-function and post-function (Kong runs one plugin of a name per route): use a `script`"),
    ("post-function", "it runs arbitrary Lua, and gatefold's own phase-order Lua is the route's pre-function and post-function (Kong runs one plugin of a name per route): use a `script`"),
    ("cors", "gatefold's `cors` policy emits it: use `cors`"),
    ("request-transformer", "gatefold's `request-headers` policy emits it: use `request-headers`"),
    ("response-transformer", "gatefold's `response-headers` policy emits it: use `response-headers`"),
    ("standard-webhooks", "it refuses requests by signature, which only gatefold's own security policies may do, in the spec's phase order: use a `script` or an authentication"),
    ("grpc-gateway", CHANGES),
    ("grpc-web", CHANGES),
    ("ai-prompt-decorator", CHANGES),
    ("ai-prompt-guard", CHANGES),
    ("ai-prompt-template", CHANGES),
    ("ai-request-transformer", CHANGES),
    ("ai-response-transformer", CHANGES),
];

const AUTH: &str = "it decides who may pass, which gatefold's `key-auth`, `basic-auth`, `jwt` and `acl` do in the spec's phase order: a second authentication would bypass or contradict them";
const LIMIT: &str = "it limits requests beside gatefold's `rate-limit` / `request-size-limit`, counted and answered its own way: use those policies";
const ANSWERS: &str = "it answers requests itself in Kong's access phase, before gatefold's post-function (rate-limit, scripts, the body check) runs, so a request could get past them: use `mock`, `redirect` or the upstream";
const CHANGES: &str = "it rewrites requests or responses outside the spec's phases, so gatefold's checks and transforms would see another request than the spec says";

/// The file names of the plugin-schemas-3.15 set that are not open source
/// (Kong Enterprise or Konnect), so their names are refused as such.
fn enterprise(name: &str) -> bool {
    const EE: &[&str] = &[
        "ace",
        "ai-a2a-proxy",
        "ai-aws-guardrails",
        "ai-azure-content-safety",
        "ai-custom-guardrail",
        "ai-gcp-model-armor",
        "ai-lakera-guard",
        "ai-llm-as-judge",
        "ai-mcp-oauth2",
        "ai-mcp-proxy",
        "ai-prompt-compressor",
        "ai-proxy-advanced",
        "ai-rag-injector",
        "ai-rate-limiting-advanced",
        "ai-sanitizer",
        "ai-semantic-cache",
        "ai-semantic-prompt-guard",
        "ai-semantic-response-guard",
        "app-dynamics",
        "canary",
        "confluent",
        "confluent-consume",
        "datakit",
        "degraphql",
        "exit-transformer",
        "forward-proxy",
        "graphql-proxy-cache-advanced",
        "graphql-rate-limiting-advanced",
        "header-cert-auth",
        "injection-protection",
        "jq",
        "json-threat-protection",
        "jwe-decrypt",
        "jwt-signer",
        "kafka-consume",
        "kafka-log",
        "kafka-upstream",
        "key-auth-enc",
        "konnect-application-auth",
        "ldap-auth-advanced",
        "metering-and-billing",
        "mocking",
        "mtls-auth",
        "oas-validation",
        "oauth2-introspection",
        "opa",
        "openid-connect",
        "proxy-cache-advanced",
        "rate-limiting-advanced",
        "request-callout",
        "request-transformer-advanced",
        "request-validator",
        "response-transformer-advanced",
        "route-by-header",
        "route-transformer-advanced",
        "saml",
        "service-protection",
        "solace-consume",
        "solace-log",
        "solace-upstream",
        "statsd-advanced",
        "tls-handshake-modifier",
        "tls-metadata-headers",
        "upstream-oauth",
        "upstream-timeout",
        "vault-auth",
        "websocket-size-limit",
        "websocket-validator",
        "xml-threat-protection",
    ];
    EE.contains(&name)
}

/// The `config` schema of an accepted plugin.
pub fn schema(name: &str) -> Option<Value> {
    let (_, text) = ACCEPTED.iter().find(|(n, _)| *n == name)?;
    let doc: Value = serde_json::from_str(text).expect("an embedded schema is JSON");
    Some(doc["properties"]["config"].clone())
}

/// The names of the accepted plugins.
pub fn accepted() -> impl Iterator<Item = &'static str> {
    ACCEPTED.iter().map(|(n, _)| *n)
}

/// One checked plugin of a `native.kong` entry.
#[derive(Clone, Debug)]
pub struct NativePlugin {
    pub name: &'static str,
    pub config: Value,
}

/// What is wrong with one entry, and what to write instead.
struct Refusal {
    message: String,
    help: String,
}

fn refusal(message: impl Into<String>, help: impl Into<String>) -> Refusal {
    Refusal {
        message: message.into(),
        help: help.into(),
    }
}

/// The checked plugins of a `kong` value, or why it is refused.
fn parse(kong: &Value) -> Result<Vec<NativePlugin>, Refusal> {
    const SHAPE: &str = "write `kong: { plugins: [ { name: correlation-id, config: { header_name: x-request-id } } ] }`";
    let obj = kong
        .as_object()
        .filter(|o| o.keys().all(|k| k == "plugins"))
        .ok_or_else(|| refusal("`native.kong` takes only `plugins`", SHAPE))?;
    let list = obj
        .get("plugins")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| refusal("`native.kong.plugins` must be a non-empty list", SHAPE))?;
    let mut out: Vec<NativePlugin> = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let at = format!("`native.kong.plugins[{i}]`");
        let e = entry
            .as_object()
            .filter(|o| o.keys().all(|k| k == "name" || k == "config"))
            .ok_or_else(|| {
                refusal(
                    format!("{at} takes only `name` and `config` (gatefold scopes the plugin like the policy)"),
                    SHAPE,
                )
            })?;
        let name = e
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| refusal(format!("{at} needs a `name`"), SHAPE))?;
        let Some(accepted) = accepted().find(|n| *n == name) else {
            let accepted_list = accepted().collect::<Vec<_>>().join(", ");
            let help = format!("plugins passed through to Kong: {accepted_list}");
            return Err(match REFUSED.iter().find(|(n, _)| *n == name) {
                Some((_, why)) => refusal(format!("{at}: Kong plugin `{name}` is refused: {why}"), help),
                None if enterprise(name) => refusal(
                    format!("{at}: `{name}` is a Kong Enterprise plugin; gatefold emits open-source Kong only"),
                    help,
                ),
                None => refusal(format!("{at}: `{name}` is not a bundled Kong plugin"), help),
            });
        };
        if out.iter().any(|p| p.name == accepted) {
            return Err(refusal(
                format!(
                    "{at}: `{name}` is listed twice (Kong runs one plugin of a name per route)"
                ),
                "merge the two entries",
            ));
        }
        let config = e
            .get("config")
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        let schema = schema(accepted).expect("an accepted plugin has a schema");
        let mut errors = Vec::new();
        check(&schema, &config, "config", &mut errors);
        if let Some(first) = errors.first() {
            return Err(refusal(
                format!("{at}: plugin `{name}`: {first}"),
                format!("see Kong's `{name}` plugin reference (Kong 3.15) for its config"),
            ));
        }
        out.push(NativePlugin {
            name: accepted,
            config,
        });
    }
    Ok(out)
}

/// `value` against a plugin schema: the keywords those schemas use (type,
/// enum, minimum, maximum, minLength, properties, additionalProperties,
/// items, required), only declared keys, no Lua (`*_by_lua`), no entity
/// references (`x-foreign`), and encrypted fields (`x-encrypted`) as vault
/// references.
fn check(schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    if schema.get("x-foreign").is_some() {
        out.push(format!(
            "`{at}` names another Kong entity, which gatefold does not emit"
        ));
        return;
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        };
        if !ok {
            out.push(format!("`{at}` must be of type {t}"));
            return;
        }
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
        if !choices.contains(value) {
            let list: Vec<String> = choices.iter().map(Value::to_string).collect();
            out.push(format!("`{at}` must be one of {}", list.join(", ")));
        }
    }
    if let (Some(n), Some(min)) = (
        value.as_f64(),
        schema.get("minimum").and_then(Value::as_f64),
    ) {
        if n < min {
            out.push(format!("`{at}` must be at least {min}"));
        }
    }
    if let (Some(n), Some(max)) = (
        value.as_f64(),
        schema.get("maximum").and_then(Value::as_f64),
    ) {
        if n > max {
            out.push(format!("`{at}` must be at most {max}"));
        }
    }
    if let (Some(s), Some(min)) = (
        value.as_str(),
        schema.get("minLength").and_then(Value::as_u64),
    ) {
        if (s.chars().count() as u64) < min {
            out.push(format!("`{at}` must be at least {min} characters"));
        }
    }
    // Kong reads kong.yaml with lyaml, which makes a Lua string of a
    // scalar with the C string functions: it would end at the first NUL,
    // whatever the YAML spelling (seen with lyaml 6.2.8, the one Kong
    // bundles).
    if value.as_str().is_some_and(|s| s.contains('\0')) {
        out.push(format!(
            "`{at}` holds a NUL character, where Kong's YAML reader (lyaml) would cut the string: leave it out"
        ));
    }
    if schema.get("x-encrypted").is_some() {
        if let Some(s) = value.as_str() {
            if !(s.starts_with("{vault://") && s.ends_with('}')) {
                out.push(format!(
                    "`{at}` is a secret Kong encrypts: write a vault reference such as `{{vault://env/NAME}}`, not its value"
                ));
            }
        }
    }
    match value {
        Value::Object(map) => {
            for name in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = name.as_str() {
                    if !map.contains_key(name) {
                        out.push(format!("`{at}` needs `{name}`"));
                    }
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties").filter(|s| s.is_object());
            for (k, v) in map {
                let path = format!("{at}.{k}");
                // As for values (a key `<<`, which lyaml takes for a merge
                // key however it is quoted, the spec's own reader takes for
                // one too, so it never gets here).
                if k.contains('\0') {
                    out.push(format!(
                        "`{at}` has a key with a NUL character, where Kong's YAML reader (lyaml) would cut it: rename it"
                    ));
                    continue;
                }
                if k.ends_with("_by_lua") {
                    out.push(format!(
                        "`{path}` runs Lua, which gatefold does not check: leave it out"
                    ));
                    continue;
                }
                match props.and_then(|p| p.get(k)).or(extra) {
                    Some(s) => check(s, v, &path, out),
                    None => out.push(format!("`{path}` is not an option of this plugin")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check(s, v, &format!("{at}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// The `kong` value of a `native` instance, if it has one.
fn kong_value(policy: &Policy) -> Option<&Value> {
    match policy {
        Policy::Native(n) => n.per_target.get(&TargetKind::Kong),
        _ => None,
    }
}

/// One error per `native` instance whose `kong` entry is refused, at the
/// policy's place in the spec.
pub fn refusals(ir: &ValidIr, origin: gatefold_compiler::ir::Loc) -> Diagnostics {
    let mut out = Diagnostics::new();
    for (id, instance) in &ir.policies {
        let Some(kong) = kong_value(&instance.policy) else {
            continue;
        };
        if let Err(r) = parse(kong) {
            let loc = ir.sources.policies.get(id).copied().unwrap_or(origin);
            out.push(
                Diagnostic::error(
                    "unsupported-policy",
                    span_of(loc),
                    format!("target `kong`, policy `{id}`: {}", r.message),
                )
                .with_help(r.help),
            );
        }
    }
    out
}

/// The plugins of every `native.kong` entry (refused ones never reach
/// here: `refusals` stops the compile), global when the instance covers
/// every route and no route has another `native`, else one per route.
pub fn plugins(ir: &ValidIr) -> Vec<Plugin> {
    let mut out = Vec::new();
    for (id, instance) in &ir.policies {
        let Some(Ok(list)) = kong_value(&instance.policy).map(parse) else {
            continue;
        };
        let holders: Vec<_> = ir.routes.iter().filter(|r| r.chain.contains(id)).collect();
        if holders.is_empty() {
            continue;
        }
        let global = holders.len() == ir.routes.len()
            && ir.routes.iter().all(|r| {
                r.chain
                    .iter()
                    .filter(|p| p.kind == PolicyKind::Native)
                    .count()
                    == 1
            });
        let tags = vec![crate::tag(id)];
        for p in &list {
            let routes: Vec<Option<String>> = if global {
                vec![None]
            } else {
                holders.iter().map(|r| Some(route_name(&r.id))).collect()
            };
            for route in routes {
                out.push(Plugin {
                    name: p.name,
                    route,
                    service: None,
                    config: PluginConfig::Native(p.config.clone()),
                    tags: tags.clone(),
                });
            }
        }
    }
    out
}
