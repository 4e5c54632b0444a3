//! The Envoy target: Envoy 1.40 v3 configuration as typed structs
//! ([`model`]) serialized to YAML.
//!
//! Output ([`Layout::Dynamic`], the default): `bootstrap.yaml` (admin on
//! `127.0.0.1` port 0; listeners and clusters read from `dynamic/lds.json`
//! and `dynamic/cds.json`, paths relative to the directory Envoy runs in,
//! `dynamic` watched so an atomic rename reloads them), plus those two
//! files, the listeners' `version_info` set to the IR's content hash and
//! the clusters' to a hash of the clusters, which Envoy's admin API reports
//! (`/config_dump`): how a fleet sync knows what runs. [`Layout::Static`]: one `bootstrap.yaml` with everything in
//! `static_resources`.
//!
//! Native Envoy features carry routing (virtual hosts per host class of
//! the dispatch view, its path and method groups in order, preflight, 405
//! and 404 entries), proxying (clusters,
//! weighted clusters, retries, timeouts, health checks, path rewrites,
//! `preserve-host`), `mock` (`direct_response`), header transforms,
//! `ip-filter` (`rbac`), body limits (`buffer`) and TLS with SNI. The
//! front Lua filter (always first) normalizes the path and marks the
//! `match` conditions that hold ([`conditions`]); the Lua filter ([`lua`])
//! carries CORS, key-auth, basic-auth, jwt, acl, fixed-window rate limits
//! and the `location` of redirects, present only when a spec uses one of
//! them. See README.md.

#![forbid(unsafe_code)]

mod clusters;
mod conditions;
mod lua;
pub mod model;
mod routes;
mod script;

use crate::conditions::EnvoyConditions;
use gatefold_compiler::diag::Diagnostics;
use gatefold_compiler::ir::policy::Policy;
use gatefold_compiler::ir::tls::TlsKey;
use gatefold_compiler::ir::{PolicyKind, TargetKind, ValidIr};
use gatefold_compiler::target::{
    Feature, FieldSupport, Options, Output, OutputFile, RelPath, Support, Target,
};
use model::*;
use std::net::SocketAddr;

/// The bootstrap file (the entry).
pub const BOOTSTRAP: &str = "bootstrap.yaml";
/// The listeners file of [`Layout::Dynamic`], relative to the work dir.
pub const LDS: &str = "dynamic/lds.json";
/// The clusters file of [`Layout::Dynamic`], relative to the work dir.
pub const CDS: &str = "dynamic/cds.json";
/// The directory Envoy watches for [`LDS`] and [`CDS`].
pub const DYNAMIC_DIR: &str = "dynamic";

/// How the configuration is split into files.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// A bootstrap reading listeners and clusters from watched files.
    #[default]
    Dynamic,
    /// One bootstrap with everything in `static_resources`.
    Static,
}

/// How Envoy's request mirroring differs from the spec's `mirror`.
const MIRROR_NOTE: &str = "Envoy's request mirroring: the copy carries the client's host instead of the mirror target's, Envoy's x-envoy-internal and x-envoy-external-address headers and an x-forwarded-for Envoy extends; it is bounded by the route's read timeout, not the mirror upstream's, and copies under way are not capped at 64";

/// The Envoy back end.
#[derive(Debug, Default, Clone, Copy)]
pub struct Envoy {
    pub layout: Layout,
}

impl Target for Envoy {
    fn kind(&self) -> TargetKind {
        TargetKind::Envoy
    }

    fn support(&self, kind: PolicyKind) -> Support {
        match kind {
            PolicyKind::IpFilter
            | PolicyKind::RequestSizeLimit
            | PolicyKind::Mock
            | PolicyKind::RequestHeaders
            | PolicyKind::Rewrite
            | PolicyKind::Timeout
            | PolicyKind::Retry
            | PolicyKind::TrafficSplit
            | PolicyKind::Native => Support::Builtin,
            // Route header mutation applies to every answer on the route,
            // Envoy's and the Lua filter's refusals included.
            PolicyKind::ResponseHeaders | PolicyKind::Deprecation => Support::Approximate {
                note: "also on the gateway's refusals of the route (401, 403, 413, 429), which the spec answers without them",
            },
            // jwt: the Lua filter verifies the token (see gatefold.lua)
            // and decides with the route's other methods. redirect: the
            // Lua filter computes the location, direct_response answers.
            PolicyKind::Redirect
            | PolicyKind::Cors
            | PolicyKind::KeyAuth
            | PolicyKind::BasicAuth
            | PolicyKind::Jwt
            | PolicyKind::Acl => Support::Emulated,
            // Lua counters are per worker: exact with one worker, which is
            // how gatefold runs Envoy (`--concurrency 1`); see README.md.
            PolicyKind::RateLimit => Support::Emulated,
            // Envoy's request_mirror_policies.
            PolicyKind::Mirror => Support::Approximate {
                note: MIRROR_NOTE,
            },
            // A second Lua filter with each route's script (script.rs).
            PolicyKind::Script => Support::Emulated,
            PolicyKind::Cache => Support::Unsupported,
        }
    }

    fn feature(&self, feature: Feature) -> Support {
        match feature {
            // `host_rewrite_header` from the client's host as it came.
            Feature::PreserveHost => Support::Builtin,
            // Evaluated by the front Lua filter, routed by Envoy (see
            // conditions.rs).
            Feature::Conditions => Support::Emulated,
        }
    }

    fn fields(&self) -> Vec<FieldSupport> {
        vec![FieldSupport {
            kind: PolicyKind::Native,
            field: "envoy",
            value: None,
            support: Support::Unsupported,
        }]
        // Language 1.1: redirect parts, cors wildcards and credentials are
        // the Lua filter's; `retry` `on: reset` is Envoy's `reset`.
    }

    fn policy_fields(&self, policy: &Policy) -> Vec<FieldSupport> {
        let all = self.fields();
        let pick = |field: &str, value: Option<&str>| {
            all.iter()
                .find(|f| f.kind == policy.kind() && f.field == field && f.value == value)
                .copied()
        };
        match policy {
            Policy::Native(n) if n.per_target.contains_key(&TargetKind::Envoy) => {
                pick("envoy", None).into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    fn spec_diagnostics(&self, ir: &ValidIr) -> Diagnostics {
        routes::condition_diagnostics(ir)
    }

    fn emit(&self, ir: &ValidIr, options: &Options) -> Output {
        let listeners = listeners(ir, options);
        let clusters = clusters::clusters(ir);
        let name = ir.gateway.name.as_str();
        let mut bootstrap = Bootstrap {
            node: Node {
                id: format!("gatefold-{name}"),
                cluster: format!("gatefold-{name}"),
            },
            admin: Admin {
                address: socket("127.0.0.1", 0),
            },
            dynamic_resources: None,
            static_resources: StaticResources::default(),
            layered_runtime: runtime_settings(),
        };
        let file = |path: &str, text: String, what: &str| OutputFile {
            path: RelPath::new(path).expect("a relative path"),
            bytes: text.into_bytes(),
            description: what.to_string(),
        };
        let files = match self.layout {
            Layout::Static => {
                bootstrap.static_resources = StaticResources {
                    listeners,
                    clusters,
                };
                vec![file(
                    BOOTSTRAP,
                    yaml(&bootstrap, ir),
                    "Envoy bootstrap with every listener and cluster (static_resources)",
                )]
            }
            Layout::Dynamic => {
                let source = |path: &str| ConfigSource {
                    path_config_source: PathConfigSource {
                        path: path.to_string(),
                        watched_directory: WatchedDirectory {
                            path: DYNAMIC_DIR.to_string(),
                        },
                    },
                    resource_api_version: "V3",
                };
                bootstrap.dynamic_resources = Some(DynamicResources {
                    lds_config: source(LDS),
                    cds_config: source(CDS),
                });
                let lds = Resources {
                    version_info: ir.hash.to_string(),
                    resources: listeners
                        .into_iter()
                        .map(|l| Any::Listener(Box::new(l)))
                        .collect(),
                };
                let resources: Vec<Any> = clusters
                    .into_iter()
                    .map(|c| Any::Cluster(Box::new(c)))
                    .collect();
                let cds = Resources {
                    version_info: clusters_version(&resources),
                    resources,
                };
                vec![
                    file(BOOTSTRAP, yaml(&bootstrap, ir), "Envoy bootstrap: admin on 127.0.0.1 (port 0) and file-based LDS/CDS; run Envoy in this folder"),
                    file(LDS, json(&lds), "Envoy listeners (LDS), watched: replace by atomic rename to reload"),
                    file(CDS, json(&cds), "Envoy clusters (CDS), watched: replace by atomic rename to reload"),
                ]
            }
        };
        Output::new(TargetKind::Envoy, ir, files)
    }
}

/// Envoy runtime settings: a fragment ends the target (`/q?a=1#x` goes on
/// as `/q?a=1`) instead of being refused, as the spec's clients send it.
fn runtime_settings() -> LayeredRuntime {
    LayeredRuntime {
        layers: vec![RuntimeLayer {
            name: "gatefold".into(),
            static_layer: std::collections::BTreeMap::from([(
                "envoy.reloadable_features.http_reject_path_with_fragment",
                serde_json::Value::Bool(false),
            )]),
        }],
    }
}

/// A dynamic resources file: JSON, which Envoy (choosing the parser by the
/// `.json` extension) reads about six times faster than YAML, and whose
/// strings are always quoted (a YAML 1.1 parser reads a plain `yes` as a
/// boolean).
/// The clusters file's `version_info`: `clusters:sha256:<hex>` of the
/// clusters themselves, not the IR's hash. Envoy keeps the version it
/// has when an update changes no cluster (it records a CDS version only
/// when a cluster was added, changed or removed), so a spec change that
/// leaves the clusters alone must not expect a new one; a fleet sync
/// compares Envoy's clusters version with this file's.
fn clusters_version(resources: &[Any]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(json(&resources).as_bytes());
    let mut out = String::from("clusters:sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn json<T: serde::Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string(value).expect("Envoy config serializes");
    s.push('\n');
    s
}

/// The bootstrap: indented JSON (valid YAML) after a comment line. JSON,
/// because a YAML writer leaves strings such as `yes` or `on` unquoted,
/// which Envoy's YAML 1.1 parser reads as booleans.
fn yaml<T: serde::Serialize>(value: &T, ir: &gatefold_compiler::ir::Ir) -> String {
    let mut s = String::from("# Generated by gatefold; do not edit.\n");
    if ir.policies.keys().any(|p| p.kind == PolicyKind::RateLimit) {
        // Envoy has no bootstrap field for its worker count; gatefold's
        // launcher (`gatefold up`, the tests) always passes it.
        s.push_str(
            "# Run with `envoy --concurrency 1`: the rate limits count in the Lua\n\
             # filter, per worker thread, so N workers would allow N times the limit.\n",
        );
    }
    s.push_str(&serde_json::to_string_pretty(value).expect("Envoy config serializes"));
    s.push('\n');
    s
}

fn socket(address: &str, port: u16) -> Address {
    Address {
        socket_address: SocketAddress {
            address: address.to_string(),
            port_value: port,
        },
    }
}

fn socket_of(addr: SocketAddr) -> Address {
    socket(&addr.ip().to_string(), addr.port())
}

fn listeners(ir: &ValidIr, options: &Options) -> Vec<Listener> {
    let plain_addr = options
        .listen
        .map(socket_of)
        .unwrap_or_else(|| socket("0.0.0.0", ir.gateway.listen));
    let conditions = conditions::ConditionTable::new(ir);
    let ctx = routes::Ctx {
        ir,
        lua: lua::needed(ir),
        scripts: script::needed(ir),
        hoisted: Vec::new(),
        conditions: &conditions,
    };
    let vhosts = routes::virtual_hosts(&ctx);
    let mut out = Vec::new();
    let plain_routes = match &ir.gateway.tls {
        Some(tls) if tls.redirect_http => {
            let port = options.listen_tls.map_or(tls.listen, |a| a.port());
            vec![https_redirect(port)]
        }
        _ => vhosts.clone(),
    };
    out.push(Listener {
        name: "http".into(),
        address: plain_addr,
        listener_filters: Vec::new(),
        filter_chains: vec![FilterChain {
            filter_chain_match: None,
            filters: vec![hcm(&ctx, "http", plain_routes, None)],
            transport_socket: None,
        }],
    });
    if let Some(tls) = &ir.gateway.tls {
        let addr = options
            .listen_tls
            .map(socket_of)
            .unwrap_or_else(|| socket("0.0.0.0", tls.listen));
        let mut chains = Vec::new();
        let mut claimed = std::collections::BTreeSet::new();
        for (i, cert) in tls.certificates.iter().enumerate() {
            // The first certificate naming a host wins it, as the spec says.
            let names: Vec<String> = cert
                .names
                .iter()
                .filter(|n| claimed.insert(n.to_string()))
                .cloned()
                .collect();
            if names.is_empty() {
                continue;
            }
            chains.push(tls_chain(&ctx, cert, Some(names), &vhosts, i));
        }
        if let Some(first) = tls.certificates.first() {
            chains.push(tls_chain(&ctx, first, None, &vhosts, 0));
        }
        out.push(Listener {
            name: "https".into(),
            address: addr,
            listener_filters: vec![NamedConfig {
                name: "envoy.filters.listener.tls_inspector".into(),
                typed_config: Any::TlsInspector {},
            }],
            filter_chains: chains,
        });
    }
    out
}

fn tls_chain(
    ctx: &routes::Ctx,
    cert: &gatefold_compiler::ir::tls::TlsCertificate,
    names: Option<Vec<String>>,
    vhosts: &[VirtualHost],
    index: usize,
) -> FilterChain {
    let key = match &cert.key {
        TlsKey::Env(v) => DataSource::EnvironmentVariable(v.clone()),
        TlsKey::File(f) => DataSource::Filename(f.clone()),
    };
    FilterChain {
        filter_chain_match: names.map(|server_names| FilterChainMatch { server_names }),
        filters: vec![hcm(
            ctx,
            &format!("https-{index}"),
            vhosts.to_vec(),
            Some(&cert.names),
        )],
        transport_socket: Some(NamedConfig {
            name: "envoy.transport_sockets.tls".into(),
            typed_config: Any::DownstreamTls(Box::new(TlsContext {
                common_tls_context: CommonTlsContext {
                    tls_certificates: vec![TlsCertificate {
                        certificate_chain: DataSource::InlineString(cert.chain.clone()),
                        private_key: key,
                    }],
                    alpn_protocols: vec!["h2", "http/1.1"],
                    validation_context: None,
                },
                sni: None,
            })),
        }),
    }
}

fn https_redirect(port: u16) -> VirtualHost {
    VirtualHost {
        name: "https-redirect".into(),
        domains: vec!["*".into()],
        routes: vec![Route {
            name: "https-redirect".into(),
            matcher: RouteMatch {
                prefix: Some("/".into()),
                ..RouteMatch::default()
            },
            action: Action::Redirect(Redirect {
                scheme_redirect: Some("https".into()),
                port_redirect: Some(if port == 443 { 443 } else { port }),
                response_code: "PERMANENT_REDIRECT",
                ..Redirect::default()
            }),
            request_headers_to_add: Vec::new(),
            request_headers_to_remove: Vec::new(),
            response_headers_to_add: Vec::new(),
            response_headers_to_remove: Vec::new(),
            typed_per_filter_config: Default::default(),
            metadata: None,
            gateway_answer: true,
        }],
        matcher: None,
        response_headers_to_add: Vec::new(),
        response_headers_to_remove: Vec::new(),
    }
}

/// The HTTP connection manager with only the filters the spec needs, in
/// phase order: the front Lua filter (path normalization, host checks,
/// forwarding headers; always), rbac (ip-filter), Lua (phases 2-6),
/// buffer (body limits), router.
/// `cert_names`: on a TLS chain, the names of its certificate (a request
/// for another host is misdirected, 421).
fn hcm(
    ctx: &routes::Ctx,
    prefix: &str,
    vhosts: Vec<VirtualHost>,
    cert_names: Option<&[String]>,
) -> NamedConfig {
    let ir = ctx.ir;
    let uses = |k: PolicyKind| ir.policies.keys().any(|p| p.kind == k);
    let mut filters = vec![NamedConfig {
        name: lua::FRONT_FILTER.into(),
        typed_config: Any::Lua {
            default_source_code: DataSource::InlineString(lua::front_script(
                cert_names,
                ctx.scripts,
                &ctx.conditions.lua(),
            )),
        },
    }];
    if uses(PolicyKind::IpFilter) {
        filters.push(NamedConfig {
            name: "envoy.filters.http.rbac".into(),
            typed_config: Any::Rbac(Rbac { rules: None }),
        });
    }
    if ctx.lua {
        filters.push(NamedConfig {
            name: lua::FILTER.into(),
            typed_config: Any::Lua {
                default_source_code: DataSource::InlineString(lua::script(ir)),
            },
        });
    }
    if ctx.scripts {
        filters.push(script::filter());
    }
    filters.push(NamedConfig {
        name: "envoy.filters.http.buffer".into(),
        typed_config: Any::Buffer(Buffer {
            max_request_bytes: routes::clamp_u32(ir.gateway.baseline.max_body.0),
        }),
    });
    filters.push(NamedConfig {
        name: "envoy.filters.http.router".into(),
        // No x-envoy-* headers towards the upstream or the client.
        typed_config: Any::Router {
            suppress_envoy_headers: true,
        },
    });
    let baseline = &ir.gateway.baseline;
    NamedConfig {
        name: "envoy.filters.network.http_connection_manager".into(),
        typed_config: Any::Hcm(Box::new(HttpConnectionManager {
            stat_prefix: prefix.to_string(),
            codec_type: "AUTO",
            use_remote_address: true,
            // The front Lua filter appends the peer (`, `-separated, as
            // the reference gateway does), normalizes the path and strips
            // the port from the host after copying it to x-forwarded-host.
            skip_xff_append: true,
            http_protocol_options: Http1ProtocolOptions {
                accept_http_10: true,
                default_host_for_http_10: lua::NO_HOST.into(),
            },
            normalize_path: false,
            merge_slashes: false,
            path_with_escaped_slashes_action: "KEEP_UNCHANGED",
            strip_any_host_port: false,
            server_header_transformation: if baseline.server_header {
                "OVERWRITE"
            } else {
                "PASS_THROUGH"
            },
            generate_request_id: baseline.request_id,
            preserve_external_request_id: baseline.request_id,
            always_set_request_id_in_response: baseline.request_id,
            local_reply_config: Some(local_replies()),
            route_config: RouteConfiguration {
                // The config's hash: every new config changes the
                // listeners, so Envoy records the listeners file's new
                // `version_info` (it keeps the old one when an update
                // changes no listener, say a change of an upstream's
                // targets alone), which a fleet sync verifies.
                name: format!("gatefold {}", ir.hash),
                // Virtual-host response headers (hoisted, see
                // routes::hoist) first, then the route's own: so a route
                // entry can remove them (its 404 and 405 answers).
                most_specific_header_mutations_wins: true,
                virtual_hosts: vhosts,
                request_headers_to_remove: ["forwarded", "x-real-ip", "te"]
                    .into_iter()
                    .map(String::from)
                    .chain(ctx.conditions.markers())
                    .collect(),
            },
            http_filters: filters,
        })),
    }
}

/// Envoy's own error answers rewritten to the spec's JSON bodies. Matched
/// by response flags, response code details and (for no host, UH) the
/// cluster's metadata, never by status alone, so a `mock` answering 403
/// or 503 keeps its own body.
fn local_replies() -> LocalReplyConfig {
    let mapper = |filter: AccessLogFilter, status: Option<u16>, message: &str| ResponseMapper {
        filter,
        status_code: status,
        body: DataSource::InlineString(serde_json::json!({ "error": message }).to_string()),
        body_format_override: SubstitutionFormat {
            text_format_source: DataSource::InlineString("%LOCAL_REPLY_BODY%".into()),
            content_type: "application/json",
        },
        headers_to_add: Vec::new(),
    };
    let cel = |expr: &str| {
        AccessLogFilter::ExtensionFilter(NamedConfig {
            name: "envoy.access_loggers.extension_filters.cel".into(),
            typed_config: Any::CelFilter {
                expression: expr.to_string(),
            },
        })
    };
    let flags = |f: &[&'static str]| AccessLogFilter::ResponseFlagFilter { flags: f.to_vec() };
    LocalReplyConfig {
        mappers: vec![
            // A path its prefix-map key's entries all miss (routes.rs).
            mapper(flags(&["NR"]), Some(404), "no route"),
            // No host to send to (UH): 503 where health checks took the
            // targets out, else (no name resolved) the 502 below.
            mapper(
                AccessLogFilter::AndFilter {
                    filters: vec![
                        flags(&["UH"]),
                        cel(&format!(
                            "xds.cluster_metadata.filter_metadata['{}']['{}'] == true",
                            clusters::METADATA,
                            clusters::HEALTH_CHECKED
                        )),
                    ],
                },
                Some(503),
                "no healthy upstream",
            ),
            mapper(flags(&["UT"]), Some(504), "upstream timeout"),
            mapper(
                flags(&["UF", "UC", "URX", "UR", "UO", "LR", "UH"]),
                Some(502),
                "bad gateway",
            ),
            mapper(
                cel("response.code_details.startsWith('rbac_access_denied')"),
                Some(403),
                "forbidden",
            ),
            mapper(
                cel("response.code_details == 'request_payload_too_large'"),
                Some(413),
                "payload too large",
            ),
            mapper(
                cel("response.code_details.startsWith('http1.') || response.code_details == 'path_normalization_failed' || response.code_details.startsWith('codec_error')"),
                Some(400),
                "bad request",
            ),
        ],
    }
}
