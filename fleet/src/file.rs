//! The fleet file (`policy-language.md`, section Fleets): which spec, which
//! gateways, which apis go where, and in which waves.
//!
//! Read with the spec front end's YAML tree and decoder, so every mistake
//! is reported at `file:line:col` with what to write instead.

use gatefold_compiler::diag::{Diagnostic, Diagnostics};
use gatefold_compiler::front::decode::{did_you_mean, Cx, Fields};
use gatefold_compiler::front::yaml::{self, Node, Value};
use gatefold_compiler::source::{FileId, SourceFile, Sources, Span};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A fleet file, decoded and checked.
#[derive(Clone, Debug)]
pub struct Fleet {
    /// The fleet file itself.
    pub path: PathBuf,
    /// The spec (file or folder), relative paths resolved against the
    /// fleet file's folder.
    pub spec: PathBuf,
    /// Every gateway, by name.
    pub gateways: BTreeMap<String, Gateway>,
    /// Which apis go to which gateways; empty: every api everywhere.
    pub deploy: Vec<Deploy>,
    /// Gateway names per wave, in order; every gateway is in exactly one.
    pub waves: Vec<Vec<String>>,
    pub on_failure: OnFailure,
}

/// One gateway of the fleet.
#[derive(Clone, Debug)]
pub struct Gateway {
    pub name: String,
    pub provider: ProviderConfig,
    pub labels: BTreeMap<String, String>,
    /// Where the gateway is written, for messages about it.
    pub span: Span,
}

/// A secret named by environment variable: `{ env: NAME }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvRef(pub String);

impl EnvRef {
    /// The variable's value; an error naming the variable (never a value)
    /// when it is unset or empty.
    pub fn read(&self) -> Result<String, String> {
        match std::env::var(&self.0) {
            Ok(v) if !v.is_empty() => Ok(v),
            _ => Err(format!(
                "the environment variable `{}` is not set (the fleet file reads this secret from it)",
                self.0
            )),
        }
    }
}

/// How to reach a gateway and what runs there.
#[derive(Clone, Debug)]
pub enum ProviderConfig {
    /// A reference gateway (`gatefold serve`) through its admin API.
    Reference {
        admin: String,
        token: Option<EnvRef>,
    },
    /// An nginx whose prefix directory is on this host, or on another one
    /// reached with `ssh` (`config-dir: ssh://user@host:port/path`).
    Nginx {
        /// The prefix directory (on the remote host when `ssh` is set).
        config_dir: PathBuf,
        /// Where the directory is when it is remote, with the options
        /// given to `ssh` (`ssh-options:`).
        ssh: Option<crate::provider::host::SshTarget>,
        /// A shell command that makes nginx load its files (`reload:`).
        reload: Option<String>,
        /// Where the config serves plain HTTP (`listen:`); default: every
        /// address on the spec's `gateway.listen`.
        listen: Option<SocketAddr>,
    },
    /// An Envoy with file-based dynamic config on this host.
    Envoy {
        config_dir: PathBuf,
        /// Its admin API's URL (`admin:`); default: the address Envoy
        /// wrote to `admin.address` in the config directory.
        admin: Option<String>,
        /// As for nginx.
        listen: Option<SocketAddr>,
    },
    /// Kong's Admin API (DB-less).
    Kong {
        admin: String,
        token: Option<EnvRef>,
    },
    /// A Cloudflare Workers script.
    Cloudflare {
        account: EnvRef,
        token: EnvRef,
        script: String,
        /// The API's base URL (`api:`); Cloudflare's by default.
        api: String,
    },
}

impl ProviderConfig {
    /// The provider's name as the fleet file writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderConfig::Reference { .. } => "reference",
            ProviderConfig::Nginx { .. } => "nginx",
            ProviderConfig::Envoy { .. } => "envoy",
            ProviderConfig::Kong { .. } => "kong",
            ProviderConfig::Cloudflare { .. } => "cloudflare",
        }
    }
}

/// `deploy` entry: these apis to the gateways whose labels match.
#[derive(Clone, Debug)]
pub struct Deploy {
    /// Api names with where each is written (checked against the spec
    /// once it is compiled).
    pub apis: Vec<(String, Span)>,
    /// Label selector: every pair must match; empty: every gateway.
    pub to: BTreeMap<String, String>,
}

/// What `apply` does when a gateway fails.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Put back every gateway this run changed.
    Rollback,
    /// Stop, leaving the waves that finished.
    Halt,
}

/// A fleet file that could not be read: diagnostics and the sources they
/// point into.
pub struct Refused {
    pub diagnostics: Diagnostics,
    pub sources: Sources,
}

impl Refused {
    /// Diagnostics rendered with source excerpts.
    pub fn render(&self) -> String {
        self.diagnostics.render(&self.sources)
    }
}

const PROVIDERS: &[&str] = &["reference", "nginx", "envoy", "kong", "cloudflare"];
const GATEWAY_EXAMPLE: &str =
    "ref-a: { provider: reference, admin: http://127.0.0.1:9901, token: { env: GF_ADMIN_TOKEN } }";

impl Fleet {
    /// Reads and checks a fleet file.
    pub fn load(path: &Path) -> Result<Fleet, Box<Refused>> {
        let mut sources = Sources::new();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                let mut diagnostics = Diagnostics::new();
                diagnostics.push(
                    Diagnostic::global(
                        "unreadable-fleet",
                        format!("cannot read `{}`: {e}", path.display()),
                    )
                    .with_help("point at a fleet file (YAML with `gatefold: 1` and `fleet:`)"),
                );
                return Err(Box::new(Refused {
                    diagnostics,
                    sources,
                }));
            }
        };
        let id = sources.add(SourceFile::new(path.display().to_string(), text));
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut diagnostics = Diagnostics::new();
        let root = match yaml::parse(id, &sources.get(id).text) {
            Ok(root) => root,
            Err(d) => {
                return Err(Box::new(Refused {
                    diagnostics: d,
                    sources,
                }))
            }
        };
        let fleet = {
            let mut cx = Cx {
                diags: &mut diagnostics,
                base_dir: &base,
                file: sources.get(id),
            };
            decode(&mut cx, id, &root, path, &base)
        };
        match fleet {
            Some(f) if !diagnostics.has_errors() => Ok(f),
            _ => Err(Box::new(Refused {
                diagnostics,
                sources,
            })),
        }
    }

    /// The apis `gateway` serves: those of every `deploy` entry whose
    /// selector matches its labels; `None`: every api (no `deploy`).
    pub fn apis_for(&self, gateway: &Gateway) -> Option<BTreeSet<String>> {
        if self.deploy.is_empty() {
            return None;
        }
        let chosen = self
            .deploy
            .iter()
            .filter(|d| d.to.iter().all(|(k, v)| gateway.labels.get(k) == Some(v)))
            .flat_map(|d| d.apis.iter().map(|(a, _)| a.clone()))
            .collect();
        Some(chosen)
    }
}

fn decode(cx: &mut Cx<'_>, file: FileId, root: &Node, path: &Path, base: &Path) -> Option<Fleet> {
    let top = cx.fields(
        root,
        "the fleet file",
        &["gatefold", "fleet"],
        "gatefold: 1",
    )?;
    match top.get("gatefold") {
        Some(v) if v.value == Value::Int(1) => {}
        Some(v) => cx.error(
            "unsupported-version",
            v.span,
            "this gatefold reads fleet files of version 1",
            "write `gatefold: 1`",
        ),
        None => cx.missing(&top, "gatefold", "the fleet file", "gatefold: 1"),
    }
    let fleet_node = cx.required(
        &top,
        "fleet",
        "the fleet file",
        "fleet: { spec: ./gatefold.yaml, gateways: {...} }",
    )?;
    let f = cx.fields(
        fleet_node,
        "`fleet`",
        &["spec", "gateways", "deploy", "rollout"],
        "spec: ./gatefold.yaml",
    )?;
    let spec = cx
        .required(&f, "spec", "`fleet`", "spec: ./gatefold.yaml")
        .and_then(|n| cx.str(n, "`spec`", "./gatefold.yaml"))
        .map(|s| base.join(s));
    let gateways = match cx.required(&f, "gateways", "`fleet`", GATEWAY_EXAMPLE) {
        Some(n) => gateways(cx, n),
        None => BTreeMap::new(),
    };
    let deploy = match f.get("deploy") {
        Some(n) => deploy(cx, n),
        None => Vec::new(),
    };
    let (waves, on_failure) = rollout(cx, f.get("rollout"), &gateways, file, &f);
    Some(Fleet {
        path: path.to_path_buf(),
        spec: spec?,
        gateways,
        deploy,
        waves,
        on_failure,
    })
}

fn gateways(cx: &mut Cx<'_>, node: &Node) -> BTreeMap<String, Gateway> {
    let mut out = BTreeMap::new();
    let Some(entries) = cx.map(node, "`gateways`", GATEWAY_EXAMPLE) else {
        return out;
    };
    cx.non_empty(
        node,
        "`gateways`",
        "a fleet needs at least one gateway",
        &format!("add one, like `{GATEWAY_EXAMPLE}`"),
    );
    for e in entries {
        if let Err(msg) = e.key.parse::<gatefold_compiler::ir::Name>() {
            cx.error(
                "invalid-name",
                e.key_span,
                msg,
                "rename the gateway, like `ref-a`",
            );
            continue;
        }
        if let Some(provider) = gateway(cx, &e.key, &e.value) {
            let labels = labels(cx, &e.value);
            out.insert(
                e.key.to_string(),
                Gateway {
                    name: e.key.to_string(),
                    provider,
                    labels,
                    span: e.key_span,
                },
            );
        }
    }
    out
}

fn labels(cx: &mut Cx<'_>, gw: &Node) -> BTreeMap<String, String> {
    let Value::Map(entries) = &gw.value else {
        return BTreeMap::new();
    };
    let Some(node) = entries.iter().find(|e| e.key == "labels").map(|e| &e.value) else {
        return BTreeMap::new();
    };
    string_map(cx, node, "`labels`", "labels: { region: eu }")
}

fn string_map(cx: &mut Cx<'_>, node: &Node, what: &str, example: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in cx.map(node, what, example).unwrap_or_default() {
        if let Some(v) = cx.str(&e.value, &format!("label `{}`", e.key), example) {
            out.insert(e.key.to_string(), v.to_string());
        }
    }
    out
}

/// The keys each provider takes, besides `provider` and `labels`.
fn provider_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "reference" | "kong" => &["provider", "labels", "admin", "token"],
        "nginx" => &[
            "provider",
            "labels",
            "config-dir",
            "reload",
            "listen",
            "ssh-options",
        ],
        "envoy" => &["provider", "labels", "config-dir", "admin", "listen"],
        _ => &["provider", "labels", "account", "token", "script", "api"],
    }
}

fn gateway(cx: &mut Cx<'_>, name: &str, node: &Node) -> Option<ProviderConfig> {
    let what = format!("gateway `{name}`");
    let all = cx.map(node, &what, GATEWAY_EXAMPLE)?;
    let fields = Fields {
        span: node.span,
        entries: all,
    };
    let kind_node = cx.required(&fields, "provider", &what, "provider: reference")?;
    let kind = cx.str(kind_node, "`provider`", "reference")?;
    if !PROVIDERS.contains(&kind) {
        cx.error(
            "unknown-provider",
            kind_node.span,
            format!("unknown provider `{kind}`"),
            did_you_mean(kind, PROVIDERS),
        );
        return None;
    }
    let f = cx.fields(node, &what, provider_keys(kind), GATEWAY_EXAMPLE)?;
    let text = |cx: &mut Cx<'_>, key: &str, example: &str| {
        cx.required(&f, key, &what, example)
            .and_then(|n| cx.str(n, &format!("`{key}`"), example))
            .map(str::to_string)
    };
    let admin = |cx: &mut Cx<'_>, example: &str| admin_url(cx, &f, &what, "admin", example);
    let base = cx.base_dir.to_path_buf();
    Some(match kind {
        "reference" => ProviderConfig::Reference {
            admin: admin(cx, "admin: http://127.0.0.1:9901")?,
            token: optional_env(cx, &f, "token"),
        },
        "kong" => ProviderConfig::Kong {
            admin: admin(cx, "admin: http://127.0.0.1:8001")?,
            token: optional_env(cx, &f, "token"),
        },
        "nginx" => {
            let dir = text(cx, "config-dir", "config-dir: /srv/gw/nginx")?;
            let (config_dir, ssh) = nginx_dir(cx, &f, &base, &dir)?;
            ProviderConfig::Nginx {
                config_dir,
                ssh,
                reload: match f.get("reload") {
                    Some(n) => Some(
                        cx.str(n, "`reload`", "nginx -p /srv/gw/nginx -s reload")?
                            .to_string(),
                    ),
                    None => None,
                },
                listen: listen(cx, &f)?,
            }
        }
        "envoy" => ProviderConfig::Envoy {
            config_dir: {
                let dir = text(cx, "config-dir", "config-dir: /srv/gw/envoy")?;
                base.join(envoy_dir(cx, &f, dir)?)
            },
            admin: match f.get("admin") {
                Some(_) => Some(admin(cx, "admin: http://127.0.0.1:9901")?),
                None => None,
            },
            listen: listen(cx, &f)?,
        },
        _ => ProviderConfig::Cloudflare {
            account: required_env(cx, &f, &what, "account")?,
            token: required_env(cx, &f, &what, "token")?,
            script: text(cx, "script", "script: pets-edge")?,
            api: match f.get("api") {
                Some(_) => admin_url(
                    cx,
                    &f,
                    &what,
                    "api",
                    "api: https://api.cloudflare.com/client/v4",
                )?,
                None => CLOUDFLARE_API.to_string(),
            },
        },
    })
}

/// Envoy's `config-dir`: a path on this host. Envoy on another host is
/// planned, not built: an `ssh://` directory is refused by name rather
/// than read as a local path.
fn envoy_dir(cx: &mut Cx<'_>, f: &Fields<'_>, dir: String) -> Option<String> {
    if !dir.starts_with("ssh://") {
        return Some(dir);
    }
    let span = f.get("config-dir").map(|n| n.span).unwrap_or(f.span);
    cx.error(
        "planned",
        span,
        "fleet sync to Envoy on another host (`config-dir: ssh://...`) is planned, not built yet"
            .to_string(),
        "give a directory on this host, or use the nginx provider, which reaches other hosts over ssh"
            .to_string(),
    );
    None
}

/// nginx's `config-dir`: a path on this host (relative to the fleet
/// file), or `ssh://[user@]host[:port]/path` with the optional
/// `ssh-options: [-i, key]` given to `ssh`.
fn nginx_dir(
    cx: &mut Cx<'_>,
    f: &Fields<'_>,
    base: &std::path::Path,
    dir: &str,
) -> Option<(PathBuf, Option<crate::provider::host::SshTarget>)> {
    let options_node = f.get("ssh-options");
    let example = "ssh-options: [-i, /home/ops/.ssh/gatefold]";
    if !dir.starts_with("ssh://") {
        if let Some(node) = options_node {
            cx.error(
                "ssh-options-without-ssh",
                node.span,
                "`ssh-options` is given but `config-dir` is a local directory".to_string(),
                "write `config-dir: ssh://user@host/path`, or leave `ssh-options` out".to_string(),
            );
            return None;
        }
        return Some((base.join(dir), None));
    }
    let span = f.get("config-dir").map(|n| n.span).unwrap_or(f.span);
    let (mut target, path) = match crate::provider::host::SshTarget::parse(dir) {
        Ok(x) => x,
        Err(message) => {
            cx.error(
                "invalid-ssh-url",
                span,
                message,
                "write it like `config-dir: ssh://ops@gw1.example:22/srv/gw/nginx`".to_string(),
            );
            return None;
        }
    };
    if let Some(node) = options_node {
        for o in cx.list(node, "`ssh-options`", example).unwrap_or_default() {
            target
                .options
                .push(cx.str(o, "an ssh option", "-i")?.to_string());
        }
    }
    Some((path, Some(target)))
}

/// The optional `listen: 127.0.0.1:8080`; `Some(None)` when absent, `None`
/// after an error.
fn listen(cx: &mut Cx<'_>, f: &Fields<'_>) -> Option<Option<SocketAddr>> {
    let Some(node) = f.get("listen") else {
        return Some(None);
    };
    let example = "listen: 127.0.0.1:8080";
    let text = cx.str(node, "`listen`", example)?;
    match text.parse::<SocketAddr>() {
        Ok(a) => Some(Some(a)),
        Err(_) => {
            cx.error(
                "invalid-address",
                node.span,
                format!("`{text}` is not an address and port"),
                format!("write it like `{example}`"),
            );
            None
        }
    }
}

/// The Cloudflare API's base URL when the fleet file names none.
pub const CLOUDFLARE_API: &str = "https://api.cloudflare.com/client/v4";

/// An http(s) URL at `key`, without a trailing slash.
fn admin_url(
    cx: &mut Cx<'_>,
    f: &Fields<'_>,
    what: &str,
    key: &str,
    example: &str,
) -> Option<String> {
    let node = cx.required(f, key, what, example)?;
    let url = cx.str(node, &format!("`{key}`"), example)?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        cx.error(
            "invalid-url",
            node.span,
            format!("`{url}` is not an http(s) URL"),
            format!("write it like `{example}`"),
        );
        return None;
    }
    Some(url.trim_end_matches('/').to_string())
}

fn env_ref(cx: &mut Cx<'_>, node: &Node, key: &str) -> Option<EnvRef> {
    let example = format!("{key}: {{ env: NAME }}");
    let f = cx.fields(node, &format!("`{key}`"), &["env"], &example)?;
    let Some(var) = f.get("env") else {
        cx.missing(&f, "env", &format!("`{key}`"), "env: NAME");
        return None;
    };
    cx.str(var, "`env`", "NAME").map(|s| EnvRef(s.to_string()))
}

fn optional_env(cx: &mut Cx<'_>, f: &Fields<'_>, key: &str) -> Option<EnvRef> {
    let node = f.get(key)?;
    if let Value::Str(_) = node.value {
        cx.error(
            "literal-secret",
            node.span,
            format!("`{key}` is written in the fleet file; secrets stay out of files in git"),
            format!("name an environment variable instead: `{key}: {{ env: NAME }}`"),
        );
        return None;
    }
    env_ref(cx, node, key)
}

fn required_env(cx: &mut Cx<'_>, f: &Fields<'_>, what: &str, key: &str) -> Option<EnvRef> {
    if f.get(key).is_none() {
        cx.missing(f, key, what, &format!("{key}: {{ env: NAME }}"));
        return None;
    }
    optional_env(cx, f, key)
}

fn deploy(cx: &mut Cx<'_>, node: &Node) -> Vec<Deploy> {
    let example = "- { apis: [pets], to: { region: eu } }";
    let mut out = Vec::new();
    for item in cx.list(node, "`deploy`", example).unwrap_or_default() {
        let Some(f) = cx.fields(item, "a `deploy` entry", &["apis", "to"], example) else {
            continue;
        };
        let mut apis = Vec::new();
        if let Some(list) = cx.required(&f, "apis", "a `deploy` entry", "apis: [pets]") {
            for a in cx.list(list, "`apis`", "apis: [pets]").unwrap_or_default() {
                if let Some(name) = cx.str(a, "an api name", "pets") {
                    apis.push((name.to_string(), a.span));
                }
            }
        }
        let to = match f.get("to") {
            Some(n) => string_map(cx, n, "`to`", "to: { region: eu }"),
            None => BTreeMap::new(),
        };
        out.push(Deploy { apis, to });
    }
    out
}

fn rollout(
    cx: &mut Cx<'_>,
    node: Option<&Node>,
    gateways: &BTreeMap<String, Gateway>,
    file: FileId,
    fleet: &Fields<'_>,
) -> (Vec<Vec<String>>, OnFailure) {
    let everyone: Vec<String> = gateways.keys().cloned().collect();
    let Some(node) = node else {
        return (vec![everyone], OnFailure::Rollback);
    };
    let example = "rollout: { waves: [[ref-a], [\"*\"]], on-failure: rollback }";
    let Some(f) = cx.fields(node, "`rollout`", &["waves", "on-failure"], example) else {
        return (vec![everyone], OnFailure::Rollback);
    };
    let on_failure = match f.get("on-failure") {
        None => OnFailure::Rollback,
        Some(n) => match cx.str(n, "`on-failure`", "rollback") {
            Some("rollback") => OnFailure::Rollback,
            Some("halt") => OnFailure::Halt,
            Some(other) => {
                cx.error(
                    "unknown-value",
                    n.span,
                    format!("unknown `on-failure` `{other}`"),
                    did_you_mean(other, &["rollback", "halt"]),
                );
                OnFailure::Rollback
            }
            None => OnFailure::Rollback,
        },
    };
    let Some(waves_node) = f.get("waves") else {
        return (vec![everyone], on_failure);
    };
    let mut placed: BTreeMap<&str, Span> = BTreeMap::new();
    let mut waves = Vec::new();
    let mut star: Option<usize> = None;
    let names: Vec<&str> = gateways.keys().map(String::as_str).collect();
    for wave in cx
        .list(waves_node, "`waves`", "waves: [[ref-a], [\"*\"]]")
        .unwrap_or_default()
    {
        let mut members = Vec::new();
        for g in cx
            .list(wave, "a wave", "[ref-a, nginx-1]")
            .unwrap_or_default()
        {
            let Some(name) = cx.str(g, "a gateway name", "ref-a") else {
                continue;
            };
            if name == "*" {
                if star.is_some() {
                    cx.error(
                        "duplicate-star",
                        g.span,
                        "`*` is in more than one wave",
                        "keep one `*`: it means every gateway no wave names",
                    );
                }
                star = Some(waves.len());
                continue;
            }
            let Some((known, _)) = gateways.get_key_value(name) else {
                cx.error(
                    "unknown-gateway",
                    g.span,
                    format!("wave names gateway `{name}`, which `gateways` does not define"),
                    did_you_mean(name, &names),
                );
                continue;
            };
            if let Some(first) = placed.insert(known.as_str(), g.span) {
                cx.diags.push(
                    Diagnostic::error(
                        "duplicate-gateway",
                        g.span,
                        format!("gateway `{name}` is in two waves"),
                    )
                    .with_related(first, "first here")
                    .with_help("name each gateway in one wave"),
                );
                continue;
            }
            members.push(name.to_string());
        }
        waves.push(members);
    }
    let rest: Vec<String> = names
        .iter()
        .filter(|n| !placed.contains_key(*n))
        .map(|n| n.to_string())
        .collect();
    match star {
        Some(i) => waves[i].extend(rest),
        None if !rest.is_empty() => cx.error(
            "gateway-in-no-wave",
            fleet
                .key_span("rollout")
                .unwrap_or(Span::point(file, node.span.start)),
            format!("no wave names {}", rest.join(", ")),
            "add them to a wave, or add `\"*\"` (every gateway no wave names) to the last wave",
        ),
        None => {}
    }
    waves.retain(|w| !w.is_empty());
    (waves, on_failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Fleet, String> {
        let dir = std::env::temp_dir().join(format!("gatefold-fleet-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(format!("f{}.yaml", text.len()));
        std::fs::write(&path, text).expect("write");
        let loaded = Fleet::load(&path).map_err(|r| r.render());
        let _ = std::fs::remove_file(&path);
        loaded
    }

    #[test]
    fn the_example_fleet_loads_with_its_waves_and_selection() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet/fleet.yaml");
        let fleet = Fleet::load(&path).map_err(|r| r.render()).expect("loads");
        // "*" is every gateway no earlier wave names.
        assert_eq!(
            fleet.waves,
            [vec!["canary"], vec!["envoy-1", "eu-1", "nginx-1", "us-1"]]
        );
        assert_eq!(fleet.on_failure, OnFailure::Rollback);
        let apis = |g: &str| fleet.apis_for(&fleet.gateways[g]).expect("deploy given");
        assert_eq!(
            apis("eu-1"),
            BTreeSet::from(["hello".into(), "pets".into()])
        );
        assert_eq!(apis("us-1"), BTreeSet::from(["hello".into()]));
        assert_eq!(apis("envoy-1"), BTreeSet::from(["hello".into()]));
        let ProviderConfig::Nginx { listen, .. } = &fleet.gateways["nginx-1"].provider else {
            panic!("nginx")
        };
        assert_eq!(
            listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:8184")
        );
    }

    #[test]
    fn an_ssh_config_dir_is_remote_and_takes_ssh_options() {
        let fleet = load(
            "gatefold: 1\nfleet:\n  spec: s.yaml\n  gateways:\n    n: { provider: nginx, config-dir: \"ssh://ops@gw.example:2222/srv/it's\", ssh-options: [-i, /k] }\n",
        )
        .expect("loads");
        let ProviderConfig::Nginx {
            config_dir, ssh, ..
        } = &fleet.gateways["n"].provider
        else {
            panic!("nginx")
        };
        // The remote path, not joined to the fleet file's directory.
        assert_eq!(config_dir, Path::new("/srv/it's"));
        let ssh = ssh.as_ref().expect("remote");
        assert_eq!(ssh.user.as_deref(), Some("ops"));
        assert_eq!((ssh.host.as_str(), ssh.port), ("gw.example", Some(2222)));
        assert_eq!(ssh.options, ["-i", "/k"]);

        let err = load(
            "gatefold: 1\nfleet:\n  spec: s.yaml\n  gateways:\n    n: { provider: nginx, config-dir: \"ssh://-oProxyCommand=x/srv\" }\n",
        )
        .expect_err("refused");
        assert!(
            err.contains("invalid-ssh-url") && err.contains(":5:"),
            "{err}"
        );
        let err = load(
            "gatefold: 1\nfleet:\n  spec: s.yaml\n  gateways:\n    n: { provider: nginx, config-dir: /srv/x, ssh-options: [-v] }\n",
        )
        .expect_err("refused");
        assert!(err.contains("ssh-options-without-ssh"), "{err}");
    }

    #[test]
    fn envoy_on_another_host_is_refused_as_planned() {
        let err = load(
            "gatefold: 1\nfleet:\n  spec: s.yaml\n  gateways:\n    e: { provider: envoy, config-dir: \"ssh://ops@gw.example/srv/envoy\" }\n",
        )
        .expect_err("refused");
        assert!(
            err.contains("planned, not built yet") && err.contains(":5:"),
            "{err}"
        );
    }

    #[test]
    fn defaults_one_wave_of_everyone_and_every_api() {
        let fleet = load(
            "gatefold: 1\nfleet:\n  spec: s.yaml\n  gateways:\n    b: { provider: reference, admin: \"http://127.0.0.1:1\" }\n    a: { provider: reference, admin: \"http://127.0.0.1:2/\" }\n",
        )
        .expect("loads");
        assert_eq!(fleet.waves, [vec!["a", "b"]]);
        assert!(fleet.apis_for(&fleet.gateways["a"]).is_none());
        // A trailing slash is dropped so paths join cleanly.
        let ProviderConfig::Reference { admin, .. } = &fleet.gateways["a"].provider else {
            panic!("reference")
        };
        assert_eq!(admin, "http://127.0.0.1:2");
    }

    #[test]
    fn a_gateway_in_two_waves_or_none_is_an_error_at_its_place() {
        let err = load(
            "gatefold: 1\nfleet:\n  spec: s.yaml\n  gateways:\n    a: { provider: reference, admin: \"http://127.0.0.1:1\" }\n    b: { provider: reference, admin: \"http://127.0.0.1:2\" }\n  rollout:\n    waves: [[a], [a]]\n    on-failure: hault\n",
        )
        .expect_err("refused");
        assert!(err.contains("gateway `a` is in two waves"), "{err}");
        assert!(err.contains(":8:19"), "{err}");
        assert!(err.contains("no wave names b"), "{err}");
        assert!(err.contains("did you mean `halt`?"), "{err}");
    }
}
