//! The Cloudflare Workers target: one ES-module Worker (`worker.js`), a
//! `wrangler.toml` that deploys it, and a workerd `config.capnp` that runs
//! it locally (`gatefold up`, the conformance suite).
//!
//! The Worker is the spec's data as JSON (every user string goes through
//! serde_json's string encoding, which is a correct JS string literal),
//! a router compiled from the IR's dispatch view ([`router`]), and the
//! runtime pieces of `src/js/` that the spec needs, one per policy kind
//! (a spec without `cors` carries no CORS code). Upstreams are reached
//! with `fetch()`; secrets are Worker secret bindings (`env.NAME`), listed
//! as required in `wrangler.toml` and bound from the environment in
//! `config.capnp`, never written into the output.
//!
//! What it carries out, approximates and refuses: [`Target::support`]
//! below, `gatefold capabilities` and README.md.

#![forbid(unsafe_code)]

mod emit;
mod files;
mod router;
mod script;

use gatefold_compiler::diag::{Diagnostic, Diagnostics};
use gatefold_compiler::ir::policy::Policy;
use gatefold_compiler::ir::{PolicyKind, TargetKind, ValidIr};
use gatefold_compiler::target::{
    span_of, Feature, FieldSupport, ModelSupport, Options, Output, OutputFile, RelPath, Support,
    Target,
};

/// The Worker module (the entry).
pub const WORKER: &str = "worker.js";
/// The wrangler configuration (`wrangler deploy`).
pub const WRANGLER: &str = "wrangler.toml";
/// The workerd configuration for local runs (`workerd serve config.capnp`).
pub const CAPNP: &str = "config.capnp";
/// The Cache API's in-memory store for local runs in workerd, written
/// (and bound in [`CAPNP`]) when the spec has `cache`.
pub const CACHE_SERVICE: &str = "workerd-cache.js";
/// The compatibility date the Worker is written for.
pub const COMPATIBILITY_DATE: &str = "2025-01-01";
pub use emit::{RATE_LIMIT_BINDING, RATE_LIMIT_CLASS};

/// The secret bindings the Worker reads as `env.NAME` (each bound from the
/// environment variable of the same name), sorted: what a deploy must set.
pub fn secret_bindings(ir: &ValidIr) -> Vec<String> {
    files::secrets(ir)
}

/// The Durable Object class the Worker exports and binds as
/// [`RATE_LIMIT_BINDING`], when the spec has rate limits: a deploy binds it
/// and, on the first deploy, creates the class with a migration.
pub fn durable_object_class(ir: &ValidIr) -> Option<&'static str> {
    files::rate_limited(ir).then_some(RATE_LIMIT_CLASS)
}

/// The Cloudflare Workers back end.
#[derive(Debug, Default, Clone, Copy)]
pub struct Cloudflare;

impl Target for Cloudflare {
    fn kind(&self) -> TargetKind {
        TargetKind::Cloudflare
    }

    fn support(&self, kind: PolicyKind) -> Support {
        match kind {
            PolicyKind::IpFilter
            | PolicyKind::Cors
            | PolicyKind::RequestSizeLimit
            | PolicyKind::KeyAuth
            | PolicyKind::BasicAuth
            | PolicyKind::Acl
            | PolicyKind::Deprecation
            | PolicyKind::Mock
            | PolicyKind::Redirect
            | PolicyKind::RequestHeaders
            | PolicyKind::Rewrite
            | PolicyKind::TrafficSplit
            | PolicyKind::ResponseHeaders
            | PolicyKind::Native => Support::Emulated,
            PolicyKind::Timeout => Support::Approximate {
                note: "fetch() has no connect phase: one deadline of the read timeout bounds connecting and waiting for the response head; gaps between body reads are not bounded",
            },
            PolicyKind::Retry => Support::Approximate {
                note: "fetch() does not tell a refused connection from a reset one: every failed fetch counts as a connect failure (retried for any method when `connect-failure` is listed), `reset` never matches",
            },
            // Counted by one Durable Object per policy instance (not per
            // isolate): counts held in its memory and each written to its
            // transactional storage before the answer leaves, so an
            // evicted or restarted object goes on from them. It lends
            // counts to isolates (js/ratelimit.js): never more than the
            // limit is admitted in a window; which isolate's requests get
            // the counts near the limit is the platform's (the README's
            // "Rate limits: counts lent to isolates").
            PolicyKind::RateLimit => Support::Emulated,
            // WebCrypto (crypto.subtle) verifies HS256, RS256 and ES256.
            PolicyKind::Jwt => Support::Emulated,
            // The Workers Cache API (js/cache.js); under workerd, the
            // cache service of config.capnp.
            PolicyKind::Cache => Support::Approximate {
                note: "the Workers Cache API: one store per Cloudflare data centre, shared by the Worker's isolates there (not per gateway instance), which may evict an entry before its ttl (a miss, the upstream answers); it works on a route or custom domain of a zone, not on workers.dev; a `vary` header sent on several lines is keyed as its lines joined by `, `. Kept exactly: the key, what is stored (200s without set-cookie, no-store or private), the ttl, the upstream's own headers on a hit, phase 13 on hits",
            },
            // A copy sent under ctx.waitUntil(fetch()) (js/mirror.js), after
            // the body was read whole, bounded by the mirror upstream's
            // timeouts and 64 copies under way per policy and isolate.
            PolicyKind::Mirror => Support::Emulated,
            // JavaScript emitted from the script IR, with the IR's bounds
            // and checks (js/script.js).
            PolicyKind::Script => Support::Emulated,
        }
    }

    fn fields(&self) -> Vec<FieldSupport> {
        vec![
            FieldSupport {
                kind: PolicyKind::Native,
                field: "cloudflare",
                value: None,
                support: Support::Unsupported,
            },
            // fetch() sends the host of the URL it is given: a Worker
            // cannot choose another `host` for an origin.
            FieldSupport {
                kind: PolicyKind::RequestHeaders,
                field: "set",
                value: Some("host"),
                support: Support::Unsupported,
            },
            FieldSupport {
                kind: PolicyKind::RequestHeaders,
                field: "add",
                value: Some("host"),
                support: Support::Unsupported,
            },
        ]
    }

    fn policy_fields(&self, policy: &Policy) -> Vec<FieldSupport> {
        // Language 1.1 cors and redirect forms are carried out; `retry`
        // `on: reset` falls under the kind's approximation.
        let all = self.fields();
        let pick = |field: &str, value: Option<&str>| {
            all.iter()
                .find(|f| f.kind == policy.kind() && f.field == field && f.value == value)
                .copied()
        };
        let has_host =
            |m: &gatefold_compiler::ir::HeaderMap| m.iter().any(|(k, _)| k.as_str() == "host");
        match policy {
            Policy::Native(n) if n.per_target.contains_key(&TargetKind::Cloudflare) => {
                pick("cloudflare", None).into_iter().collect()
            }
            Policy::RequestHeaders(t) => [(has_host(&t.set), "set"), (has_host(&t.add), "add")]
                .into_iter()
                .filter(|(used, _)| *used)
                .filter_map(|(_, field)| pick(field, Some("host")))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn request_model(&self) -> Vec<ModelSupport> {
        vec![
            ModelSupport {
                part: "host header",
                support: Support::Approximate {
                    note: "an HTTP/1.0 request without `host` is answered 400 by workerd before the Worker runs; every other request is read as the spec says (no host on HTTP/1.1, or two, is 400 as in the spec)",
                },
            },
            ModelSupport {
                part: "request body",
                support: Support::Approximate {
                    note: "fetch() cannot send a body with GET or HEAD: such a request goes upstream without its body (RFC 9110 gives it no meaning); bodies of other methods go as sent",
                },
            },
        ]
    }

    fn feature(&self, feature: Feature) -> Support {
        match feature {
            // Evaluated per candidate by the compiled router (js/conditions.js).
            Feature::Conditions => Support::Approximate {
                note: "a Worker sees a header sent on several lines as one value, its lines joined by `, `: a header condition compares that whole value, not the first line",
            },
            // The Worker sets the client's host on its fetch() (js/proxy.js).
            Feature::PreserveHost => Support::Approximate {
                note: "the Worker sets the client's host on its fetch(); Cloudflare sends a `host` a Worker sets only when it is a host of the Worker's own zone (a Worker route's host is), so a request that reached the Worker on its workers.dev address goes upstream with the target's host; workerd (`gatefold up`) always sends the target's host. `x-forwarded-host` carries the client's host either way",
            },
        }
    }

    fn spec_diagnostics(&self, ir: &ValidIr) -> Diagnostics {
        let mut out = Diagnostics::new();
        for (name, u) in &ir.upstreams {
            // Advisory (availability, not who is answered): a warning, as
            // for an advisory policy kind the target lacks.
            if u.health.is_some() {
                let loc = ir.sources.upstreams.get(name).copied();
                out.push(
                    Diagnostic::warning(
                        "unsupported-health-check",
                        span_of(loc.unwrap_or(gatefold_compiler::ir::Loc::START)),
                        format!("target `cloudflare` leaves out the active health checks of upstream `{name}`: a Worker runs only while it serves a request, so it balances over every target, up or not"),
                    )
                    .with_help("check origins with Cloudflare Load Balancing in front of the Worker, or remove `health` for this target"),
                );
            }
        }
        if ir.gateway.tls.is_some() {
            out.push(
                Diagnostic::error(
                    "unsupported-tls",
                    span_of(gatefold_compiler::ir::Loc::START),
                    "target `cloudflare` does not serve the spec's TLS listener: Cloudflare terminates TLS with its own managed certificates (SNI, redirect to https and 421 are the zone's settings)".to_string(),
                )
                .with_help("remove `gateway.tls` for this target and use the zone's Edge Certificates and \"Always Use HTTPS\""),
            );
        }
        out
    }

    fn emit(&self, ir: &ValidIr, options: &Options) -> Output {
        let worker = emit::worker(ir);
        let file = |path: &str, text: String, what: &str| OutputFile {
            path: RelPath::new(path).expect("a relative path"),
            bytes: text.into_bytes(),
            description: what.to_string(),
        };
        let mut files = vec![
            file(WORKER, worker, "the Worker (ES module): compiled router, policies, fetch() to upstreams"),
            file(WRANGLER, files::wrangler_toml(ir), "wrangler configuration: `wrangler deploy` (secrets listed as required; set them with `wrangler secret put`)"),
            file(CAPNP, files::config_capnp(ir, options), "workerd configuration for local runs: `workerd serve config.capnp` (secrets bound from the environment; outbound fetch to local addresses allowed)"),
        ];
        if files::cached(ir) {
            files.push(file(CACHE_SERVICE, files::CACHE_SERVICE_JS.to_string(), "workerd only (config.capnp): the Cache API's store for local runs, entries in memory; on Cloudflare the data centre's cache"));
        }
        Output::new(TargetKind::Cloudflare, ir, files)
    }
}
