//! Kong declarative configuration (`_format_version: "3.0"`) as typed
//! structs. Only the fields gatefold sets; `None` and empty lists are left
//! out so Kong's defaults apply and the file stays small.

use serde::Serialize;

/// The whole file.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    pub _format_version: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<Upstream>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<Consumer>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<Plugin>,
    /// The TLS listener's certificates (`gateway.tls`), with their SNIs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<Certificate>,
}

/// A certificate chain and its key, served for its SNIs.
#[derive(Clone, Debug, Serialize)]
pub struct Certificate {
    /// A UUID derived from the gateway's name, the certificate's place
    /// and its chain: decK's file format requires an id, and a
    /// deterministic one keeps the output the same for the same spec.
    pub id: String,
    /// The chain, PEM (public), as read at compile time.
    #[serde(serialize_with = "crate::yaml::block")]
    pub cert: String,
    /// A vault reference, never the key.
    pub key: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub snis: Vec<Sni>,
    pub tags: Vec<String>,
}

/// A server name Kong serves a certificate for (`*.x` one label, or `*`:
/// any name no other SNI takes).
#[derive(Clone, Debug, Serialize)]
pub struct Sni {
    pub name: String,
}

/// A Kong service: where matched requests go (one per gatefold upstream).
#[derive(Clone, Debug, Serialize)]
pub struct Service {
    pub name: String,
    pub protocol: &'static str,
    /// The Kong upstream of the same name.
    pub host: String,
    pub port: u16,
    pub connect_timeout: u64,
    pub read_timeout: u64,
    pub write_timeout: u64,
    pub retries: u32,
    pub tags: Vec<String>,
}

/// A route of the expressions router (`router_flavor = expressions`).
#[derive(Clone, Debug, Serialize)]
pub struct Route {
    pub name: String,
    pub expression: String,
    /// Higher wins among matching routes: the IR's order, first highest.
    pub priority: u64,
    pub protocols: Vec<&'static str>,
    /// The path goes upstream as the client sent it.
    pub strip_path: bool,
    pub preserve_host: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,
    pub tags: Vec<String>,
}

/// A reference to a service by name.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceRef {
    pub name: String,
}

/// A Kong upstream with its targets.
#[derive(Clone, Debug, Serialize)]
pub struct Upstream {
    pub name: String,
    pub algorithm: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_on: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_on_header: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthchecks: Option<Healthchecks>,
    pub targets: Vec<Target>,
    pub tags: Vec<String>,
}

/// One origin server.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    /// `host:port`.
    pub target: String,
    pub weight: u32,
}

/// Active health checks.
#[derive(Clone, Debug, Serialize)]
pub struct Healthchecks {
    pub active: ActiveHealthcheck,
}

#[derive(Clone, Debug, Serialize)]
pub struct ActiveHealthcheck {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub http_path: String,
    /// Seconds.
    pub timeout: u64,
    pub healthy: Healthy,
    pub unhealthy: Unhealthy,
}

#[derive(Clone, Debug, Serialize)]
pub struct Healthy {
    pub interval: u64,
    pub successes: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Unhealthy {
    pub interval: u64,
    pub http_failures: u32,
    pub tcp_failures: u32,
    pub timeouts: u32,
}

/// A consumer with its credentials and groups.
#[derive(Clone, Debug, Serialize)]
pub struct Consumer {
    pub username: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keyauth_credentials: Vec<KeyCredential>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub basicauth_credentials: Vec<BasicCredential>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub acls: Vec<AclGroup>,
}

#[derive(Clone, Debug, Serialize)]
pub struct KeyCredential {
    /// A vault reference, never the key.
    pub key: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct BasicCredential {
    pub username: String,
    /// A vault reference, never the password.
    pub password: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct AclGroup {
    pub group: String,
}

/// A plugin instance, global or scoped to a route.
#[derive(Clone, Debug, Serialize)]
pub struct Plugin {
    pub name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Scoped to a service (the 405 answers), by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub config: PluginConfig,
    /// `gatefold:POLICY-ID` (`/` written `:`): the IR instance this plugin carries out.
    pub tags: Vec<String>,
}

/// The `config` of each plugin gatefold emits (only keys the plugin's
/// schema declares; the tests check that).
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum PluginConfig {
    KeyAuth {
        key_names: Vec<String>,
        key_in_header: bool,
        key_in_query: bool,
        key_in_body: bool,
        hide_credentials: bool,
    },
    BasicAuth {
        hide_credentials: bool,
        realm: String,
    },
    Acl {
        #[serde(skip_serializing_if = "Option::is_none")]
        allow: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        deny: Option<Vec<String>>,
        hide_groups_header: bool,
    },
    Cors {
        origins: Vec<String>,
        methods: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        headers: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        exposed_headers: Vec<String>,
        credentials: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        max_age: Option<u64>,
        preflight_continue: bool,
    },
    /// `request-transformer` and `response-transformer`: `NAME:VALUE` lists.
    Transformer {
        remove: TransformList,
        replace: TransformList,
        add: TransformList,
        append: TransformList,
    },
    /// A `native.kong` plugin's config, checked against its schema
    /// (`native`).
    Native(serde_json::Value),
    /// `pre-function` / `post-function`: Lua chunks per phase (each returns
    /// the function Kong calls per request).
    Functions {
        /// Run before Kong routes, on every request; global plugins only
        /// (the script runtime, the jwt core, `match` markers).
        #[serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::yaml::blocks"
        )]
        rewrite: Vec<String>,
        #[serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::yaml::blocks"
        )]
        access: Vec<String>,
        #[serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::yaml::blocks"
        )]
        header_filter: Vec<String>,
        #[serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::yaml::blocks"
        )]
        body_filter: Vec<String>,
    },
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct TransformList {
    pub headers: Vec<String>,
}
