//! The Kong target: a Kong 3.x declarative configuration (`kong.yaml`,
//! `_format_version: "3.0"`) for DB-less Kong or decK, as typed structs
//! ([`model`]).
//!
//! What exists (see docs/kong.md): services and upstreams with targets and
//! active health checks, routes for the expressions router with priorities
//! in the IR's order ([`routing`]), consumers with key-auth and basic-auth
//! credentials as vault references and ACL groups, and the bundled OSS
//! plugins `key-auth`, `basic-auth`, `acl`, `cors`, `request-transformer`
//! and `response-transformer`; `ip-filter`, the body limit, `jwt`
//! (`jwt`), `rate-limit`, `mock`, `redirect` ([`redirect`]), `match`
//! conditions ([`conditions`]) and scripts as Lua in `pre-function` /
//! `post-function`, placed in the spec's phase order (`functions`; scripts
//! and the jwt core from [`gatefold_lua_script`]); `native.kong` plugins
//! that only observe, checked against their schemas (`native`);
//! `gateway.tls` as certificates with SNIs, the 421 and `redirect-http`
//! in Lua (`tls`). A
//! bundled-plugin policy instance
//! that covers every route is one global plugin; otherwise one plugin per
//! route whose chain holds it. Everything else is declared unsupported or
//! approximate, so `check` refuses it (security kinds always).

#![forbid(unsafe_code)]

mod auth;
pub mod conditions;
mod functions;
mod jwt;
pub mod model;
mod native;
mod plugins;
mod redirect;
mod retry;
pub mod routing;
mod script;
mod tls;
mod yaml;

use gatefold_compiler::ir::lowered::Destination;
use gatefold_compiler::ir::policy::Policy;
use gatefold_compiler::ir::{Balance, OriginHost, PolicyKind, Secret, TargetKind, ValidIr};
use gatefold_compiler::target::{
    language_1_1_unsupported, language_1_1_uses, Feature, FieldSupport, ModelSupport, Options,
    Output, OutputFile, RelPath, Support, Target,
};
use model::*;

/// The file the target writes.
pub const CONFIG: &str = "kong.yaml";

/// The Kong back end.
#[derive(Debug, Default, Clone, Copy)]
pub struct Kong;

const CORS_PREFLIGHT: &str = "Kong's cors answers a preflight 200, not 204, and only on a route whose methods take OPTIONS (the router matches the method first): a preflight to a route of other methods gets the 405 route's answer";
const RESPONSE_ON_REFUSALS: &str =
    "response-transformer also runs on Kong's own refusals of the route (401, 403), which the spec answers without these headers";

impl Target for Kong {
    fn kind(&self) -> TargetKind {
        TargetKind::Kong
    }

    fn support(&self, kind: PolicyKind) -> Support {
        match kind {
            PolicyKind::KeyAuth
            | PolicyKind::BasicAuth
            | PolicyKind::Acl
            | PolicyKind::RequestHeaders
            // Service timeouts and retries (a service per upstream,
            // timeouts and retries); `retry` fields that differ are
            // declared approximate (`retry`).
            | PolicyKind::Timeout
            | PolicyKind::Retry
            | PolicyKind::Native => Support::Builtin,
            // Lua in pre-function / post-function, placed in the spec's
            // phase order (see `functions`).
            PolicyKind::Script
            | PolicyKind::Mock
            | PolicyKind::Rewrite
            | PolicyKind::Deprecation
            | PolicyKind::IpFilter
            | PolicyKind::Jwt
            | PolicyKind::RequestSizeLimit
            | PolicyKind::RateLimit
            | PolicyKind::Redirect => Support::Emulated,
            PolicyKind::ResponseHeaders => Support::Approximate {
                note: RESPONSE_ON_REFUSALS,
            },
            PolicyKind::Cors => Support::Approximate { note: CORS_PREFLIGHT },
            // Lua choosing the Kong upstream (see `functions`).
            PolicyKind::TrafficSplit => Support::Approximate {
                note: "every destination is called with the first destination's timeouts and retries: Kong sets them per service, and the split picks the Kong upstream within the route's service",
            },
            // Planned (docs/kong.md): cache.
            PolicyKind::Cache | PolicyKind::Mirror => Support::Unsupported,
        }
    }

    fn fields(&self) -> Vec<FieldSupport> {
        vec![
            FieldSupport {
                kind: PolicyKind::RequestHeaders,
                field: "set",
                value: Some("with $("),
                // request-transformer evaluates `$(...)` as a Lua template.
                support: Support::Unsupported,
            },
            FieldSupport {
                kind: PolicyKind::Retry,
                field: "attempts",
                value: Some(retry::ATTEMPTS_VALUE),
                support: Support::Approximate {
                    note: retry::ATTEMPTS,
                },
            },
            FieldSupport {
                kind: PolicyKind::Retry,
                field: "on",
                value: Some(retry::STATUS_VALUES),
                support: Support::Approximate {
                    note: retry::STATUSES,
                },
            },
        ]
        .into_iter()
        // Language 1.1 cors forms (wildcard origins, `*` methods/headers,
        // credentials with any origin) are not emitted yet: refused.
        .chain(language_1_1_unsupported(&[PolicyKind::Cors]))
        .collect()
    }

    fn request_model(&self) -> Vec<ModelSupport> {
        vec![ModelSupport {
            part: "baseline.path",
            support: Support::Approximate {
                note: "Kong normalizes the path with its own rules before routing (percent-decoding, dot segments); not yet checked against the spec's normalization",
            },
        }]
    }

    fn policy_fields(&self, policy: &Policy) -> Vec<FieldSupport> {
        let all = self.fields();
        let pick = |field: &str, value: Option<&str>| {
            all.iter()
                .find(|f| f.kind == policy.kind() && f.field == field && f.value == value)
                .copied()
        };
        let mut out = Vec::new();
        match policy {
            Policy::Cors(_) => {
                out.extend(
                    language_1_1_uses(policy)
                        .into_iter()
                        .filter_map(|(f, v)| pick(f, v)),
                );
            }
            Policy::RequestHeaders(t) => {
                let templated = t
                    .set
                    .values()
                    .chain(t.add.values())
                    .any(|v| v.as_str().contains("$("));
                if templated {
                    out.extend(pick("set", Some("with $(")));
                }
            }
            Policy::Retry(r) => {
                for note in retry::differences(r) {
                    let (field, value) = if note == retry::STATUSES {
                        ("on", retry::STATUS_VALUES)
                    } else {
                        ("attempts", retry::ATTEMPTS_VALUE)
                    };
                    out.extend(pick(field, Some(value)));
                }
            }
            _ => {}
        }
        out
    }

    fn feature(&self, feature: Feature) -> Support {
        match feature {
            // The route's `preserve_host`.
            Feature::PreserveHost => Support::Builtin,
            // Evaluated exactly by the global pre-function before Kong
            // routes; routes require its markers (`conditions`).
            Feature::Conditions => Support::Emulated,
        }
    }

    fn spec_diagnostics(&self, ir: &ValidIr) -> gatefold_compiler::diag::Diagnostics {
        chain_diagnostics(ir)
    }

    fn emit(&self, ir: &ValidIr, _options: &Options) -> Output {
        // The 405 fallbacks come from the dispatch view, the costliest
        // thing to build here: once, for the services, routes and plugins.
        let fallbacks = routing::fallbacks(ir);
        let config = Config {
            _format_version: "3.0",
            services: services(ir, &fallbacks),
            routes: routing::routes(ir, &fallbacks),
            upstreams: upstreams(ir),
            consumers: consumers(ir),
            plugins: plugins::plugins(ir)
                .into_iter()
                .chain(functions::plugins(ir, &fallbacks))
                .chain(native::plugins(ir))
                .collect(),
            certificates: tls::certificates(ir),
        };
        let mut text = String::from(
            "# Generated by gatefold; do not edit.\n# Needs Kong 3.x started with router_flavor = expressions.\n",
        );
        // Listeners and the certificate for clients without SNI are
        // kong.conf's, not the declarative config's (docs/kong.md).
        if let Some(t) = &ir.gateway.tls {
            text.push_str(&format!(
                "# and proxy_listen = 0.0.0.0:{}, 0.0.0.0:{} ssl http2 (the TLS listener),\n# and ssl_cert / ssl_cert_key = the first certificate (clients without SNI get it)\n",
                ir.gateway.listen, t.listen
            ));
        }
        // The modules `jwt`'s Lua requires inside Kong's sandbox.
        let requires = jwt::requires(ir);
        if !requires.is_empty() {
            let list: Vec<&str> = requires.into_iter().collect();
            text.push_str(&format!(
                "# and untrusted_lua_sandbox_requires = {}\n",
                list.join(",")
            ));
        }
        // Straight to YAML: the model has only structs, lists, scalars and
        // one untagged enum, so no YAML tag appears, and its fields keep
        // their declared order (deterministic; no intermediate JSON tree,
        // which at 10,000 routes doubled the memory).
        yaml::write(&mut text, &config);
        let file = OutputFile {
            path: RelPath::new(CONFIG).expect("a relative path"),
            bytes: text.into_bytes(),
            description: "Kong declarative config (_format_version 3.0) for DB-less Kong or decK; secrets as {vault://env/...} references".to_string(),
        };
        Output::new(TargetKind::Kong, ir, vec![file])
    }
}

/// `config` as kong.yaml writes it after its header comments: YAML whose
/// every string reads back as the same string in YAML 1.1 and 1.2 readers
/// (`yaml`).
pub fn to_yaml(config: &model::Config) -> String {
    let mut text = String::new();
    yaml::write(&mut text, config);
    text
}

/// The plugins `native: { kong: { plugins: [...] } }` passes through
/// (logs, metrics, traces, `correlation-id`; see docs/kong.md).
pub fn native_plugins() -> impl Iterator<Item = &'static str> {
    native::accepted()
}

/// The Kong 3.15 `config` schema a `native.kong` plugin is checked against.
pub fn native_schema(name: &str) -> Option<serde_json::Value> {
    native::schema(name)
}

/// The tag naming what gatefold entity an entity comes from, e.g.
/// `gatefold:route:pets.list`. Kong refuses `,` and `/` in a tag
/// (`validate_tag` in kong/db/schema/typedefs.lua), so both become `:`.
pub(crate) fn tag(what: impl std::fmt::Display) -> String {
    format!("gatefold:{what}").replace([',', '/'], ":")
}

/// A vault reference Kong resolves at run time: the value never appears.
pub fn vault(secret: &Secret) -> String {
    match secret {
        // Kong's env vault reads the variable named by the reference,
        // upper-cased, `-` as `_`: `APP_KEY` stays `APP_KEY`.
        Secret::Env(name) => format!("{{vault://env/{name}}}"),
    }
}

fn millis(d: gatefold_compiler::ir::values::Duration) -> u64 {
    d.millis
}

/// What a Kong service fixes for the requests sent through it: connect
/// and read timeouts (ms) and `retries`.
type ServiceKey = (u64, u64, u32);

/// The key of an upstream's base service: the upstream's `timeouts`, else
/// the baseline's, and its `retries`.
fn base_key(ir: &ValidIr, u: &gatefold_compiler::ir::Upstream) -> ServiceKey {
    let base = &ir.gateway.baseline.timeouts;
    let t = u.timeouts.as_ref();
    (
        millis(t.and_then(|t| t.connect).unwrap_or(base.connect)),
        millis(t.and_then(|t| t.read).unwrap_or(base.read)),
        retry::kong_retries(u.retries.as_ref()),
    )
}

/// The key of the service a destination needs.
fn destination_key(d: &Destination) -> ServiceKey {
    (
        millis(d.connect_timeout),
        millis(d.read_timeout),
        retry::kong_retries(d.retry.as_ref()),
    )
}

/// The name of upstream `upstream`'s service for `key`: the upstream's own
/// name for its base key, else with what differs appended,
/// `UPSTREAM.timeout-CONNECTms-READms` and / or `.retries-N` (upstream
/// names hold no `.`, so it cannot clash with one).
fn keyed_name(upstream: &str, base: ServiceKey, key: ServiceKey) -> String {
    let mut name = upstream.to_string();
    if (key.0, key.1) != (base.0, base.1) {
        name.push_str(&format!(".timeout-{}ms-{}ms", key.0, key.1));
    }
    if key.2 != base.2 {
        name.push_str(&format!(".retries-{}", key.2));
    }
    name
}

/// The Kong service a destination is sent through: Kong has timeouts and
/// retries per service, not per route, so a route whose effective
/// timeouts or retries (its `timeout` and `retry`, else the upstream's)
/// differ from its upstream's goes through a service of its own for them.
pub(crate) fn service_name(ir: &ValidIr, d: &Destination) -> String {
    match ir.upstreams.get(&d.upstream) {
        Some(u) => keyed_name(d.upstream.as_str(), base_key(ir, u), destination_key(d)),
        None => d.upstream.to_string(),
    }
}

fn services(ir: &ValidIr, fallbacks: &[routing::Fallback]) -> Vec<Service> {
    let mut out = Vec::new();
    for (name, u) in &ir.upstreams {
        let base = base_key(ir, u);
        let mut keys: std::collections::BTreeSet<ServiceKey> = ir
            .routes
            .iter()
            .filter_map(|r| r.lowered.proxy.as_ref())
            .flat_map(|p| p.destinations())
            .filter(|d| &d.upstream == name)
            .map(destination_key)
            .collect();
        keys.remove(&base);
        let tls = u.targets.first().is_some_and(|s| s.url.tls);
        let service = |key: ServiceKey| Service {
            name: keyed_name(name.as_str(), base, key),
            protocol: if tls { "https" } else { "http" },
            host: name.to_string(),
            port: if tls { 443 } else { 80 },
            connect_timeout: key.0,
            read_timeout: key.1,
            write_timeout: key.1,
            // Kong retries 5 times by default; the spec only with a
            // `retry` policy or the upstream's `retries` (see `retry`).
            retries: key.2,
            tags: vec![tag(format!("upstream/{name}"))],
        };
        out.push(service(base));
        out.extend(keys.into_iter().map(service));
    }
    // The 405 routes' services: Kong requires a host, which is never
    // contacted (the service's pre-function answers).
    let allows: std::collections::BTreeSet<&str> =
        fallbacks.iter().map(|f| f.allow.as_str()).collect();
    let base = &ir.gateway.baseline.timeouts;
    for allow in allows {
        out.push(Service {
            name: routing::fallback_service(allow),
            protocol: "http",
            host: "gatefold-405.invalid".to_string(),
            port: 80,
            connect_timeout: millis(base.connect),
            read_timeout: millis(base.read),
            write_timeout: millis(base.read),
            retries: 0,
            tags: vec![tag("dispatch/405")],
        });
    }
    out
}

fn upstreams(ir: &ValidIr) -> Vec<Upstream> {
    ir.upstreams
        .iter()
        .map(|(name, u)| {
            let (algorithm, hash_on, hash_on_header) = match &u.balance {
                Balance::RoundRobin => ("round-robin", None, None),
                Balance::LeastRequest => ("least-connections", None, None),
                Balance::HashHeader(h) => {
                    ("consistent-hashing", Some("header"), Some(h.to_string()))
                }
            };
            // Kong counts health-check times in whole seconds (0 turns
            // the check off): rounded up, at least 1.
            let secs = |d: gatefold_compiler::ir::values::Duration| d.millis.div_ceil(1000).max(1);
            let healthchecks = u.health.as_ref().map(|h| Healthchecks {
                active: ActiveHealthcheck {
                    kind: if u.targets.first().is_some_and(|s| s.url.tls) {
                        "https"
                    } else {
                        "http"
                    },
                    http_path: h.path.clone(),
                    timeout: secs(h.timeout),
                    healthy: Healthy {
                        interval: secs(h.interval),
                        successes: h.healthy_after,
                    },
                    unhealthy: Unhealthy {
                        interval: secs(h.interval),
                        http_failures: h.unhealthy_after,
                        tcp_failures: h.unhealthy_after,
                        timeouts: h.unhealthy_after,
                    },
                },
            });
            Upstream {
                name: name.to_string(),
                algorithm,
                hash_on,
                hash_on_header,
                healthchecks,
                targets: u
                    .targets
                    .iter()
                    .map(|s| model::Target {
                        target: match &s.url.host {
                            OriginHost::Dns(n) => format!("{n}:{}", s.url.port),
                            ip => format!("{ip}:{}", s.url.port),
                        },
                        weight: s.weight,
                    })
                    .collect(),
                tags: vec![tag(format!("upstream/{name}"))],
            }
        })
        .collect()
}

fn consumers(ir: &ValidIr) -> Vec<Consumer> {
    ir.consumers
        .iter()
        .map(|(name, c)| Consumer {
            username: name.to_string(),
            keyauth_credentials: c
                .keys
                .iter()
                .map(|k| KeyCredential { key: vault(k) })
                .collect(),
            basicauth_credentials: c
                .basic
                .iter()
                .map(|b| BasicCredential {
                    username: b.user.clone(),
                    password: vault(&b.password),
                })
                .collect(),
            acls: c
                .groups
                .iter()
                .map(|g| AclGroup {
                    group: g.to_string(),
                })
                .collect(),
        })
        .collect()
}

/// What [`check`](gatefold_compiler::target::check) cannot see, because it
/// looks at one policy at a time: `gateway.tls` keys read from a file and
/// names Kong cannot look up (see `tls`), an
/// upstream's `retries` (not a policy instance; warnings where Kong
/// retries otherwise, see `retry`), `native.kong` entries, and routes whose
/// Lua phase 4 (`auth`: jwt, or a choice of methods, which Kong's own
/// plugins would all require) meets a query key or a request script.
/// Errors, one per upstream, policy or route; the target's
/// [`Target::spec_diagnostics`], so every place that compiles for Kong
/// adds them to the gaps.
pub fn chain_diagnostics(ir: &ValidIr) -> gatefold_compiler::diag::Diagnostics {
    use gatefold_compiler::diag::{Diagnostic, Diagnostics};
    use gatefold_compiler::target::span_of;
    let mut out = Diagnostics::new();
    let origin = gatefold_compiler::ir::Loc {
        file: 0,
        line: 1,
        col: 1,
    };
    // A TLS key Kong cannot read without a literal in the config.
    tls::refusals(ir, &mut out, origin);
    // An upstream's `retries` is the base service's `retries`: Kong
    // retries on its own conditions, never on an answer's status (see
    // `retry`). Warnings: retry is not a security kind.
    for (name, u) in &ir.upstreams {
        let Some(r) = &u.retries else { continue };
        let loc = ir.sources.upstreams.get(name).copied().unwrap_or(origin);
        for note in retry::differences(r) {
            out.push(
                Diagnostic::warning(
                    "unsupported-policy",
                    span_of(loc),
                    format!("target `kong` only approximates `retries` of upstream `{name}`: {note}"),
                )
                .with_help("see `gatefold capabilities`; give this upstream's routes a `retry` policy Kong carries out exactly (`attempts: 0`), or accept the difference"),
            );
        }
    }
    conditions::refusals(ir, &mut out);
    // `native.kong` plugins outside the accepted set, or whose config
    // breaks the plugin's schema.
    out.extend(native::refusals(ir, origin));
    script::conflicts(ir, &mut out, origin);
    functions::conflicts(ir, &mut out, origin);
    auth::conflicts(ir, &mut out, origin);
    out
}
