//! A scenario as data: a small spec, the requests to replay and what each
//! must get back, and what the echo upstream must have received.
//!
//! Files live in `tests/conformance/scenarios/GROUP/NAME.yaml`; the
//! scenario's id is `GROUP/NAME`. Before parsing, placeholders in the text
//! are replaced ([`Placeholders`]), so a spec and its expectations can name
//! the echo upstreams' addresses.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Scenario {
    /// What it checks, one line (the matrix shows it).
    pub about: String,
    /// The spec, YAML text (written as `gatefold.yaml` in a folder of its own).
    pub spec: String,
    /// Other files beside the spec (keys, certificates), by relative path.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Secrets given to the runtime.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Serve a TLS listener too (the spec has `gateway.tls`).
    #[serde(default)]
    pub tls: bool,
    /// The requests, replayed in order on one running gateway.
    pub requests: Vec<Request>,
    /// Declared deviations, by target name: each must match an
    /// `Approximate` declaration of that target, and replaces expectations.
    #[serde(default)]
    pub deviations: BTreeMap<String, Deviation>,
}

/// A request to send.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Request {
    /// Why this request is here, when the expectation alone does not say.
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default = "get")]
    pub method: String,
    /// The request target, sent byte for byte (`/a//b?x=1`).
    #[serde(default = "root")]
    pub path: String,
    /// The `host` header; `null` sends none.
    #[serde(default = "default_host")]
    pub host: Option<String>,
    /// More header lines, `name: value`, in order (repeats allowed).
    #[serde(default)]
    pub headers: Vec<String>,
    /// A body, sent with `content-length` (or chunked).
    #[serde(default)]
    pub body: Option<String>,
    /// A generated body of this many bytes.
    #[serde(default)]
    pub body_size: Option<usize>,
    /// Send the body with `transfer-encoding: chunked`.
    #[serde(default)]
    pub chunked: bool,
    /// Instead of all the above: these exact bytes (`\r\n` written out).
    #[serde(default)]
    pub raw: Option<String>,
    /// Over TLS, with this SNI name.
    #[serde(default)]
    pub sni: Option<String>,
    /// Resend until the expectation holds or this many seconds pass
    /// (for what a gateway learns over time: health checks).
    #[serde(default)]
    pub until_secs: Option<u64>,
    pub expect: Expect,
}

/// What a response must be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expect {
    pub status: u16,
    /// Headers and their values (names ignore case; several lines of one
    /// header compare as their values joined with `, `).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Headers that must be there, any value.
    #[serde(default)]
    pub present: Vec<String>,
    /// Headers that must not be there.
    #[serde(default)]
    pub absent: Vec<String>,
    /// The whole body.
    #[serde(default)]
    pub body: Option<String>,
    /// A part of the body.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// The body's length.
    #[serde(default)]
    pub body_size: Option<usize>,
    /// What the upstreams received: `none` (nothing reached them) or a
    /// description of the last request one received.
    #[serde(default)]
    pub upstream: Option<UpstreamExpect>,
}

/// `upstream: none`, or what the upstream got.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum UpstreamExpect {
    Word(String),
    Got(Box<Received>),
}

/// What the echo upstream must have received (the last request, when a
/// retry made several).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Received {
    /// Which echo upstream: `a` or `b`.
    #[serde(default)]
    pub echo: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    /// The path as received (before `?`, still percent-encoded).
    #[serde(default)]
    pub path: Option<String>,
    /// The query as received (after `?`); `""`: none.
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub present: Vec<String>,
    #[serde(default)]
    pub absent: Vec<String>,
    /// The body's length.
    #[serde(default)]
    pub body_size: Option<usize>,
    /// How many requests reached the upstreams in all (retries).
    #[serde(default)]
    pub count: Option<usize>,
}

/// A target's declared difference on one scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Deviation {
    /// The policy kind whose `Approximate` declaration this is, or a part
    /// of the request model a target declares (`baseline.path`).
    pub kind: String,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    /// Replacement expectations, by request index (from 0).
    pub expect: BTreeMap<usize, Expect>,
}

fn get() -> String {
    "GET".into()
}
fn root() -> String {
    "/".into()
}
fn default_host() -> Option<String> {
    Some(DEFAULT_HOST.into())
}

/// The `host` a request sends unless it says otherwise.
pub const DEFAULT_HOST: &str = "gatefold.test";

/// Values substituted for `{{name}}` in a scenario's text.
#[derive(Debug, Clone)]
pub struct Placeholders(pub BTreeMap<&'static str, String>);

impl Placeholders {
    /// Fixed stand-ins, for checking a scenario's shape without running it.
    pub fn dummy() -> Placeholders {
        let mut map = BTreeMap::new();
        for (name, port) in [("echo", 1), ("echo2", 2), ("closed", 3)] {
            map.insert(name, format!("http://127.0.0.1:{port}"));
            map.insert(host_key(name), format!("127.0.0.1:{port}"));
        }
        Placeholders(map)
    }

    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, value) in &self.0 {
            out = out.replace(&format!("{{{{{name}}}}}"), value);
        }
        out
    }
}

/// `{{echo-host}}` for `{{echo}}`: `127.0.0.1:PORT` without the scheme.
pub fn host_key(name: &str) -> &'static str {
    match name {
        "echo" => "echo-host",
        "echo2" => "echo2-host",
        "closed" => "closed-host",
        _ => "unknown-host",
    }
}

/// A scenario file, unparsed.
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    /// `GROUP/NAME`.
    pub id: String,
    pub path: PathBuf,
    pub text: String,
}

impl ScenarioFile {
    /// Parses the text with `placeholders` substituted.
    pub fn parse(&self, placeholders: &Placeholders) -> Result<Scenario, String> {
        let scenario: Scenario = serde_yaml::from_str(&placeholders.apply(&self.text))
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        scenario
            .check()
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        Ok(scenario)
    }
}

impl Scenario {
    /// Shape rules serde cannot say.
    fn check(&self) -> Result<(), String> {
        if self.requests.is_empty() {
            return Err("a scenario needs at least one request".into());
        }
        for (i, r) in self.requests.iter().enumerate() {
            for h in &r.headers {
                if !h.contains(':') {
                    return Err(format!("request {i}: header `{h}` is not `name: value`"));
                }
            }
            if let Some(UpstreamExpect::Word(w)) = &r.expect.upstream {
                if w != "none" {
                    return Err(format!(
                        "request {i}: `upstream: {w}`: write `none` or a mapping"
                    ));
                }
            }
        }
        for (target, d) in &self.deviations {
            if let Some(i) = d.expect.keys().find(|i| **i >= self.requests.len()) {
                return Err(format!("deviation of {target}: no request {i}"));
            }
        }
        Ok(())
    }
}

/// Every scenario file under `dir` (`GROUP/NAME.yaml`), by id.
pub fn load_all(dir: &Path) -> Result<Vec<ScenarioFile>, String> {
    let mut out = Vec::new();
    let groups = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for group in groups.flatten() {
        if !group.path().is_dir() {
            continue;
        }
        let files =
            std::fs::read_dir(group.path()).map_err(|e| format!("{}: {e}", dir.display()))?;
        for file in files.flatten() {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let id = format!(
                    "{}/{}",
                    group.file_name().to_string_lossy(),
                    path.file_stem().unwrap_or_default().to_string_lossy()
                );
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                out.push(ScenarioFile { id, path, text });
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The scenarios folder of this crate.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}
