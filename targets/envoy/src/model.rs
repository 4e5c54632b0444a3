//! Envoy v3 configuration as typed structs, serialized with serde: only the
//! fields gatefold emits, spelled as Envoy's protos spell them (checked by
//! `envoy --mode validate --reject-unknown-dynamic-fields` in the tests).
//! `Option`s and empty lists are left out, so the output stays small.

use serde::Serialize;
use std::collections::BTreeMap;

/// A `google.protobuf.Any`: the `@type` tag names the message.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "@type")]
pub enum Any {
    #[serde(rename = "type.googleapis.com/envoy.config.listener.v3.Listener")]
    Listener(Box<Listener>),
    #[serde(rename = "type.googleapis.com/envoy.config.cluster.v3.Cluster")]
    Cluster(Box<Cluster>),
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    )]
    Hcm(Box<HttpConnectionManager>),
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router")]
    Router { suppress_envoy_headers: bool },
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC")]
    Rbac(Rbac),
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute")]
    RbacPerRoute { rbac: Rbac },
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer")]
    Buffer(Buffer),
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute")]
    BufferPerRoute { buffer: Buffer },
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua")]
    Lua { default_source_code: DataSource },
    /// The script filter's Lua: a no-op default, each route's scripts per
    /// route; the router keeps the route it chose when a script edits
    /// the request (`req.setPath` must not re-route).
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua")]
    LuaScripts {
        default_source_code: DataSource,
        clear_route_cache: bool,
    },
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute")]
    LuaPerRoute { source_code: DataSource },
    /// A Lua filter that has nothing to do on a route is not entered there
    /// at all (`disabled: true`), saving a call into the Lua VM per request.
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute")]
    LuaDisabled { disabled: bool },
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
    )]
    DownstreamTls(Box<TlsContext>),
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    )]
    UpstreamTls(Box<TlsContext>),
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
    )]
    TlsInspector {},
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
    )]
    PreviousHosts {},
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter"
    )]
    CelFilter { expression: String },
    #[serde(rename = "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput")]
    HeaderInput { header_name: String },
    #[serde(rename = "type.googleapis.com/envoy.config.route.v3.RouteList")]
    RouteList { routes: Vec<Route> },
}

/// The bootstrap: admin, static and (optionally) file-based dynamic resources.
#[derive(Clone, Debug, Serialize)]
pub struct Bootstrap {
    pub node: Node,
    pub admin: Admin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_resources: Option<DynamicResources>,
    pub static_resources: StaticResources,
    pub layered_runtime: LayeredRuntime,
}

/// Runtime settings gatefold fixes (a static layer).
#[derive(Clone, Debug, Serialize)]
pub struct LayeredRuntime {
    pub layers: Vec<RuntimeLayer>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RuntimeLayer {
    pub name: String,
    pub static_layer: BTreeMap<&'static str, serde_json::Value>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Node {
    pub id: String,
    pub cluster: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Admin {
    pub address: Address,
}

#[derive(Clone, Debug, Serialize)]
pub struct DynamicResources {
    pub lds_config: ConfigSource,
    pub cds_config: ConfigSource,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConfigSource {
    pub path_config_source: PathConfigSource,
    pub resource_api_version: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct PathConfigSource {
    pub path: String,
    pub watched_directory: WatchedDirectory,
}

#[derive(Clone, Debug, Serialize)]
pub struct WatchedDirectory {
    pub path: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct StaticResources {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Listener>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<Cluster>,
}

/// An LDS or CDS file: `resources: [...]`, each an [`Any`], and the
/// version Envoy reports for them in its admin API's `/config_dump` (the
/// IR's content hash: what gatefold's fleet sync verifies).
#[derive(Clone, Debug, Serialize)]
pub struct Resources {
    pub version_info: String,
    pub resources: Vec<Any>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Address {
    pub socket_address: SocketAddress,
}

#[derive(Clone, Debug, Serialize)]
pub struct SocketAddress {
    pub address: String,
    pub port_value: u16,
}

#[derive(Clone, Debug, Serialize)]
pub struct Listener {
    pub name: String,
    pub address: Address,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listener_filters: Vec<NamedConfig>,
    pub filter_chains: Vec<FilterChain>,
}

/// A filter or extension: a name and its typed config.
#[derive(Clone, Debug, Serialize)]
pub struct NamedConfig {
    pub name: String,
    pub typed_config: Any,
}

#[derive(Clone, Debug, Serialize)]
pub struct FilterChain {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_chain_match: Option<FilterChainMatch>,
    pub filters: Vec<NamedConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_socket: Option<NamedConfig>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FilterChainMatch {
    pub server_names: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TlsContext {
    pub common_tls_context: CommonTlsContext,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CommonTlsContext {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls_certificates: Vec<TlsCertificate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpn_protocols: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_context: Option<ValidationContext>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TlsCertificate {
    pub certificate_chain: DataSource,
    pub private_key: DataSource,
}

#[derive(Clone, Debug, Serialize)]
pub struct ValidationContext {
    pub trusted_ca: DataSource,
}

/// Where Envoy reads bytes: inline, a file, or (for secrets) an
/// environment variable of the Envoy process.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    InlineString(String),
    Filename(String),
    EnvironmentVariable(String),
}

#[derive(Clone, Debug, Serialize)]
pub struct HttpConnectionManager {
    pub stat_prefix: String,
    pub codec_type: &'static str,
    pub use_remote_address: bool,
    pub skip_xff_append: bool,
    pub http_protocol_options: Http1ProtocolOptions,
    pub normalize_path: bool,
    pub merge_slashes: bool,
    pub path_with_escaped_slashes_action: &'static str,
    pub strip_any_host_port: bool,
    pub server_header_transformation: &'static str,
    pub generate_request_id: bool,
    pub preserve_external_request_id: bool,
    pub always_set_request_id_in_response: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_reply_config: Option<LocalReplyConfig>,
    pub route_config: RouteConfiguration,
    pub http_filters: Vec<NamedConfig>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Http1ProtocolOptions {
    pub accept_http_10: bool,
    pub default_host_for_http_10: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct LocalReplyConfig {
    pub mappers: Vec<ResponseMapper>,
}

/// Rewrites a local reply the filter matches.
#[derive(Clone, Debug, Serialize)]
pub struct ResponseMapper {
    pub filter: AccessLogFilter,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub body: DataSource,
    pub body_format_override: SubstitutionFormat,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers_to_add: Vec<HeaderValueOption>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SubstitutionFormat {
    /// `%LOCAL_REPLY_BODY%` keeps the mapper's body as is.
    pub text_format_source: DataSource,
    pub content_type: &'static str,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLogFilter {
    ResponseFlagFilter {
        flags: Vec<&'static str>,
    },
    ExtensionFilter(NamedConfig),
    /// Every one of `filters` matches.
    AndFilter {
        filters: Vec<AccessLogFilter>,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct RouteConfiguration {
    pub name: String,
    pub most_specific_header_mutations_wins: bool,
    pub virtual_hosts: Vec<VirtualHost>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_remove: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct VirtualHost {
    pub name: String,
    pub domains: Vec<String>,
    /// First match wins. Empty when [`VirtualHost::matcher`] holds them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// The routes arranged as a match tree (Envoy takes one of `routes`
    /// and `matcher`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matcher: Option<Matcher>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_add: Vec<HeaderValueOption>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_remove: Vec<String>,
}

/// An `xds.type.matcher.v3.Matcher` whose actions are route lists: a
/// prefix map on one input, and what a request no key takes gets.
#[derive(Clone, Debug, Serialize)]
pub struct Matcher {
    pub matcher_tree: MatcherTree,
    pub on_no_match: OnMatch,
}

#[derive(Clone, Debug, Serialize)]
pub struct MatcherTree {
    pub input: NamedConfig,
    /// The longest key that prefixes the input wins.
    pub prefix_match_map: MatchMap,
}

#[derive(Clone, Debug, Serialize)]
pub struct MatchMap {
    pub map: BTreeMap<String, OnMatch>,
}

/// An action: here always an [`Any::RouteList`], tried in order.
#[derive(Clone, Debug, Serialize)]
pub struct OnMatch {
    pub action: NamedConfig,
}

#[derive(Clone, Debug, Serialize)]
pub struct Route {
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    #[serde(flatten)]
    pub action: Action,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_add: Vec<HeaderValueOption>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_remove: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_add: Vec<HeaderValueOption>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_remove: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub typed_per_filter_config: BTreeMap<String, Any>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Not Envoy's: the entry is a gateway-made answer no route's policies
    /// reach (404, 405, a CORS preflight).
    #[serde(skip)]
    pub gateway_answer: bool,
}

/// Route metadata, read by the Lua filter as `metadata():get(...)`;
/// cluster metadata, read by the local-reply mappers' CEL filters.
#[derive(Clone, Debug, Serialize)]
pub struct Metadata {
    pub filter_metadata: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Route(Box<RouteAction>),
    DirectResponse(DirectResponse),
    Redirect(Redirect),
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RouteMatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_separated_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safe_regex: Option<Regex>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatcher>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Regex {
    pub regex: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct HeaderMatcher {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string_match: Option<StringMatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub present_match: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invert_match: Option<bool>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StringMatch {
    Exact(String),
    SafeRegex(Regex),
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RouteAction {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weighted_clusters: Option<WeightedClusters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_rewrite: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex_rewrite: Option<RegexRewrite>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_host_rewrite: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_rewrite_literal: Option<String>,
    /// The `host` sent upstream is this request header's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_rewrite_header: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub append_x_forwarded_host: bool,
    pub timeout: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hash_policy: Vec<HashPolicy>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_mirror_policies: Vec<MirrorPolicy>,
}

/// A copy of the request to another cluster, its answer ignored.
#[derive(Clone, Debug, Serialize)]
pub struct MirrorPolicy {
    pub cluster: String,
    pub runtime_fraction: RuntimeFraction,
    /// Keep `host` as it is (Envoy appends `-shadow` otherwise).
    pub disable_shadow_host_suffix_append: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct RuntimeFraction {
    pub default_value: FractionalPercent,
}

#[derive(Clone, Debug, Serialize)]
pub struct FractionalPercent {
    pub numerator: u32,
    pub denominator: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct RegexRewrite {
    pub pattern: Regex,
    pub substitution: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct WeightedClusters {
    pub clusters: Vec<ClusterWeight>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClusterWeight {
    pub name: String,
    pub weight: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct RetryPolicy {
    pub retry_on: String,
    pub num_retries: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retriable_status_codes: Vec<u16>,
    pub retry_host_predicate: Vec<NamedConfig>,
    pub host_selection_retry_max_attempts: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct HashPolicy {
    pub header: HashHeader,
}

#[derive(Clone, Debug, Serialize)]
pub struct HashHeader {
    pub header_name: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct DirectResponse {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<DataSource>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Redirect {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme_redirect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_redirect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_redirect: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_redirect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex_rewrite: Option<RegexRewrite>,
    pub response_code: &'static str,
    pub strip_query: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct HeaderValueOption {
    pub header: HeaderValue,
    pub append_action: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct HeaderValue {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rbac {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<RbacRules>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RbacRules {
    pub action: &'static str,
    pub policies: BTreeMap<String, RbacPolicy>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RbacPolicy {
    pub permissions: Vec<Permission>,
    pub principals: Vec<Principal>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    Any(bool),
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    DirectRemoteIp(CidrRange),
    OrIds { ids: Vec<Principal> },
    NotId(Box<Principal>),
    Any(bool),
}

#[derive(Clone, Debug, Serialize)]
pub struct CidrRange {
    pub address_prefix: String,
    pub prefix_len: u8,
}

#[derive(Clone, Debug, Serialize)]
pub struct Buffer {
    pub max_request_bytes: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Cluster {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub connect_timeout: String,
    pub lb_policy: &'static str,
    pub common_lb_config: CommonLbConfig,
    pub load_assignment: LoadAssignment,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<HealthCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_socket: Option<NamedConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CommonLbConfig {
    pub healthy_panic_threshold: Percent,
}

#[derive(Clone, Debug, Serialize)]
pub struct Percent {
    pub value: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadAssignment {
    pub cluster_name: String,
    pub endpoints: Vec<LocalityLbEndpoints>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LocalityLbEndpoints {
    pub lb_endpoints: Vec<LbEndpoint>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LbEndpoint {
    pub endpoint: Endpoint,
    pub load_balancing_weight: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Endpoint {
    pub address: Address,
    /// `host:port`: what `auto_host_rewrite` sends as `host`.
    pub hostname: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct HealthCheck {
    pub timeout: String,
    pub interval: String,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    pub http_health_check: HttpHealthCheck,
}

#[derive(Clone, Debug, Serialize)]
pub struct HttpHealthCheck {
    pub path: String,
    pub expected_statuses: Vec<Int64Range>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Int64Range {
    pub start: i64,
    pub end: i64,
}

/// A protobuf duration as Envoy's YAML writes it: `1.5s`.
pub fn duration(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{}.{:03}s", millis / 1000, millis % 1000)
    }
}
