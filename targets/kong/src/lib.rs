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
//! that only observe, checked against their schemas (`native`). A
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
pub mod routing;
mod script;

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
            // Service timeouts (a service per upstream and timeout pair).
            | PolicyKind::Timeout
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
                note: "every destination is called with the first destination's timeouts: Kong sets timeouts per service, and the split picks the Kong upstream within the route's service",
            },
            // Planned (docs/kong.md): retry, cache.
            PolicyKind::Cache
            | PolicyKind::Retry
            | PolicyKind::Mirror => Support::Unsupported,
        }
    }

    fn fields(&self) -> Vec<FieldSupport> {
        vec![FieldSupport {
            kind: PolicyKind::RequestHeaders,
            field: "set",
            value: Some("with $("),
            // request-transformer evaluates `$(...)` as a Lua template.
            support: Support::Unsupported,
        }]
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
        let config = Config {
            _format_version: "3.0",
            services: services(ir),
            routes: routing::routes(ir),
            upstreams: upstreams(ir),
            consumers: consumers(ir),
            plugins: plugins::plugins(ir)
                .into_iter()
                .chain(functions::plugins(ir))
                .chain(native::plugins(ir))
                .collect(),
        };
        let mut text = String::from(
            "# Generated by gatefold; do not edit.\n# Needs Kong 3.x started with router_flavor = expressions.\n",
        );
        // The modules `jwt`'s Lua requires inside Kong's sandbox.
        let requires = jwt::requires(ir);
        if !requires.is_empty() {
            let list: Vec<&str> = requires.into_iter().collect();
            text.push_str(&format!(
                "# and untrusted_lua_sandbox_requires = {}\n",
                list.join(",")
            ));
        }
        // Through JSON so maps, lists and scalars only reach the YAML.
        let json = serde_json::to_value(&config).expect("Kong config serializes");
        text.push_str(&serde_yaml::to_string(&json).expect("JSON serializes as YAML"));
        let file = OutputFile {
            path: RelPath::new(CONFIG).expect("a relative path"),
            bytes: text.into_bytes(),
            description: "Kong declarative config (_format_version 3.0) for DB-less Kong or decK; secrets as {vault://env/...} references".to_string(),
        };
        Output::new(TargetKind::Kong, ir, vec![file])
    }
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

/// The timeouts (connect, read, in ms) an upstream's base service has:
/// the upstream's `timeouts`, else the baseline's.
fn base_timeouts(ir: &ValidIr, u: &gatefold_compiler::ir::Upstream) -> (u64, u64) {
    let base = &ir.gateway.baseline.timeouts;
    let t = u.timeouts.as_ref();
    (
        millis(t.and_then(|t| t.connect).unwrap_or(base.connect)),
        millis(t.and_then(|t| t.read).unwrap_or(base.read)),
    )
}

/// The Kong service a destination is sent through: Kong has timeouts per
/// service, not per route, so a route whose `timeout` gives other values
/// than its upstream's goes through a service of its own for that pair,
/// `UPSTREAM.timeout-CONNECTms-READms` (upstream names hold no `.`, so it
/// cannot clash with one).
pub(crate) fn service_name(ir: &ValidIr, d: &Destination) -> String {
    let pair = (millis(d.connect_timeout), millis(d.read_timeout));
    match ir.upstreams.get(&d.upstream) {
        Some(u) if base_timeouts(ir, u) != pair => {
            format!("{}.timeout-{}ms-{}ms", d.upstream, pair.0, pair.1)
        }
        _ => d.upstream.to_string(),
    }
}

fn services(ir: &ValidIr) -> Vec<Service> {
    let mut out = Vec::new();
    for (name, u) in &ir.upstreams {
        let base = base_timeouts(ir, u);
        let mut pairs: std::collections::BTreeSet<(u64, u64)> = ir
            .routes
            .iter()
            .filter_map(|r| r.lowered.proxy.as_ref())
            .flat_map(|p| p.destinations())
            .filter(|d| &d.upstream == name)
            .map(|d| (millis(d.connect_timeout), millis(d.read_timeout)))
            .collect();
        pairs.remove(&base);
        let tls = u.targets.first().is_some_and(|s| s.url.tls);
        let service = |service: String, (connect, read): (u64, u64)| Service {
            name: service,
            protocol: if tls { "https" } else { "http" },
            host: name.to_string(),
            port: if tls { 443 } else { 80 },
            connect_timeout: connect,
            read_timeout: read,
            write_timeout: read,
            // Kong retries 5 times by default; the spec retries only
            // with a `retry` policy, which this target refuses.
            retries: 0,
            tags: vec![tag(format!("upstream/{name}"))],
        };
        out.push(service(name.to_string(), base));
        for p in pairs {
            out.push(service(format!("{name}.timeout-{}ms-{}ms", p.0, p.1), p));
        }
    }
    // The 405 routes' services: Kong requires a host, which is never
    // contacted (the service's pre-function answers).
    let allows: std::collections::BTreeSet<String> = routing::fallbacks(ir)
        .into_iter()
        .map(|f| f.allow)
        .collect();
    let base = &ir.gateway.baseline.timeouts;
    for allow in allows {
        out.push(Service {
            name: routing::fallback_service(&allow),
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
/// looks at one policy at a time: `gateway.tls` (not emitted yet), an
/// upstream with `retries` (not a
/// policy instance; see below), `native.kong` entries, and routes whose
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
    // Certificates and SNIs are not emitted yet: a TLS listener would be
    // silently missing.
    if ir.gateway.tls.is_some() {
        out.push(
            Diagnostic::error(
                "unsupported-policy",
                span_of(origin),
                "target `kong` does not carry out `gateway.tls` yet (certificates and SNIs are planned)".to_string(),
            )
            .with_help("remove `gateway.tls` for the Kong target, or terminate TLS in front of Kong"),
        );
    }
    // Kong retries a service on connection errors and timeouts only, never
    // on an answer's status, so an upstream's `retries` is refused.
    for (name, u) in &ir.upstreams {
        if u.retries.is_some() {
            let loc = ir.sources.upstreams.get(name).copied().unwrap_or(origin);
            out.push(
                Diagnostic::error(
                    "unsupported-policy",
                    span_of(loc),
                    format!("target `kong` cannot carry out `retries` of upstream `{name}`: Kong retries on connection errors and timeouts only, not on answer statuses"),
                )
                .with_help("remove `retries` from this upstream for the Kong target"),
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
