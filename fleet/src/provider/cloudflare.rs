//! A Cloudflare Worker through the Workers API (base URL `api:`, Cloudflare's
//! by default). The endpoints, as wrangler and Cloudflare's API reference
//! use them:
//!
//! - `PUT /accounts/{account}/workers/scripts/{script}`: the upload, as
//!   multipart/form-data: a `metadata` part (`main_module`,
//!   `compatibility_date`, `bindings` with the rate limits' Durable Object
//!   class, `keep_bindings` so that secret bindings stay across uploads,
//!   `migrations` `{ old_tag, new_tag, steps }` creating or deleting that
//!   class when the upload adds or removes it) and one part per module;
//! - `GET .../scripts/{script}/content/v2`: the modules as deployed
//!   (multipart, the entry module named by the `cf-entrypoint` header; the
//!   metadata is not part of it);
//! - `GET .../scripts/{script}/settings`: the bindings and compatibility
//!   date deployed (secret values never come back);
//! - `GET .../workers/scripts`: the account's scripts, each with its
//!   Durable Object `migration_tag`;
//! - `PUT .../scripts/{script}/secrets` `{ name, text, type: "secret_text" }`:
//!   one secret binding; the values come only from gatefold's environment
//!   (the variable named as the binding) and are never printed;
//! - `DELETE .../scripts/{script}`.
//!
//! The manifest travels as one more module, `gatefold-manifest.json`: the
//! manifest, the IR applied (for the semantic diff), the IR before it (for
//! `gatefold rollback`) and the SHA-256 of `worker.js`. What runs is
//! gatefold's when its `worker.js` has that SHA-256; otherwise (an upload by
//! another tool or the dashboard) it is `cloudflare:sha256:<hash>`, drift.
//!
//! The API has no compare-and-swap for uploads: [`Cloudflare::switch`]
//! reads the script just before uploading and refuses when it changed
//! since the plan (docs/fleet.md names the window).

use super::http::Http;
use super::{Error, Provider, Running, Settings, Staged, Switched};
use crate::manifest::Manifest;
use gatefold_compiler::ir::ValidIr;
use gatefold_compiler::target::{self, Target};
use gatefold_target_cloudflare::{RATE_LIMIT_BINDING, WORKER};
use reqwest::blocking::Response;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::{Mutex, OnceLock};

/// The module carrying gatefold's record.
pub const CARRIER: &str = "gatefold-manifest.json";
/// The hash of a script that does not exist.
pub const ABSENT: &str = "cloudflare:none";
/// The prefix of the hash of a Worker gatefold did not upload.
pub const FOREIGN: &str = "cloudflare:sha256:";
/// Binding types an upload keeps from the version before it: the secrets
/// (set through the secrets endpoint, which an upload must not drop).
const KEPT: [&str; 2] = ["secret_text", "secret_key"];

/// One Worker script of one account.
pub struct Cloudflare {
    http: Http,
    /// `/accounts/{account}/workers/scripts`.
    scripts: String,
    /// The script's name.
    script: String,
    /// The first read (the plan's): the compare-and-swap baseline and what
    /// an apply's rollback uploads again, its modules byte for byte.
    planned: OnceLock<Seen>,
    staged: Mutex<Vec<ValidIr>>,
}

#[derive(Clone, Debug)]
struct Seen {
    hash: String,
    /// The modules deployed; `None`: no script.
    download: Option<Download>,
    /// The deployed settings (bindings, compatibility date), read for the
    /// plan only: what a rollback during the apply uploads again.
    settings: Option<Value>,
    record: Option<Record>,
    /// The carrier's manifest even when the Worker was changed since.
    manifest: Option<Manifest>,
}

/// A script's modules as `content/v2` gives them.
#[derive(Clone, Debug)]
struct Download {
    entrypoint: String,
    modules: Vec<Module>,
}

#[derive(Clone, Debug)]
struct Module {
    name: String,
    content_type: String,
    body: Vec<u8>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Record {
    manifest: Manifest,
    ir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_ir: Option<String>,
    worker_sha256: String,
}

impl Cloudflare {
    /// A client for `script` of `account` at `api`, with an API `token`.
    pub fn new(
        api: &str,
        account: &str,
        token: String,
        script: &str,
        settings: &Settings,
    ) -> Result<Cloudflare, Error> {
        Ok(Cloudflare {
            http: Http::new(api, Some(token), settings)?,
            scripts: format!("/accounts/{account}/workers/scripts"),
            script: script.to_string(),
            planned: OnceLock::new(),
            staged: Mutex::new(Vec::new()),
        })
    }

    /// `/accounts/{account}/workers/scripts/{script}` and `rest` after it.
    fn path(&self, rest: &str) -> String {
        format!("{}/{}{rest}", self.scripts, self.script)
    }

    fn read(&self) -> Result<Seen, Error> {
        let r = self.http.send(&self.path("/content/v2"), |c, u| c.get(u))?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(Seen {
                hash: ABSENT.into(),
                download: None,
                settings: None,
                record: None,
                manifest: None,
            });
        }
        let r = ok(r)?;
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let (ctype, entrypoint) = (header("content-type"), header("cf-entrypoint"));
        if entrypoint.is_empty() {
            return Err(Error::Failed(
                "the Workers API sent the script's modules without a `cf-entrypoint` header".into(),
            ));
        }
        let body = r
            .bytes()
            .map_err(|e| Error::Unreachable(format!("{}: {e}", self.http.base())))?;
        let modules: Vec<Module> = multipart::parse(&ctype, &body)
            .map_err(Error::Failed)?
            .into_iter()
            .map(|p| Module {
                name: p.name,
                content_type: p.content_type,
                body: p.body,
            })
            .collect();
        let worker = modules
            .iter()
            .find(|m| m.name == entrypoint)
            .map(|m| sha256(&m.body))
            .unwrap_or_default();
        let record: Option<Record> = modules
            .iter()
            .find(|m| m.name == CARRIER)
            .map(|m| {
                serde_json::from_slice(&m.body).map_err(|e| {
                    Error::Failed(format!(
                        "the Worker's `{CARRIER}` is not one gatefold wrote: {e}"
                    ))
                })
            })
            .transpose()?;
        let manifest = record.as_ref().map(|r| r.manifest.clone());
        let download = Some(Download {
            entrypoint: entrypoint.clone(),
            modules,
        });
        match record {
            Some(r) if r.worker_sha256 == worker && entrypoint == WORKER => Ok(Seen {
                hash: r.manifest.hash.clone(),
                download,
                settings: None,
                record: Some(r),
                manifest,
            }),
            _ => Ok(Seen {
                hash: format!("{FOREIGN}{worker}"),
                download,
                settings: None,
                record: None,
                manifest,
            }),
        }
    }

    /// The script's Durable Object migration tag, from the account's
    /// script list.
    fn migration_tag(&self) -> Result<Option<String>, Error> {
        let r = ok(self.http.send(&self.scripts, |c, u| c.get(u))?)?;
        let list = result(r)?;
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["id"].as_str() == Some(self.script.as_str()))
            .and_then(|s| s["migration_tag"].as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string))
    }

    /// The `migrations` an upload needs so that the Worker's own Durable
    /// Object class exists exactly when `want` names it: created when
    /// added, deleted (its counters with it) when removed. `None`: none.
    fn migrations(&self, want: Option<&str>) -> Result<Option<Value>, Error> {
        let step = match (want, own_class(self.deployed_settings()?.as_ref())) {
            (Some(class), None) => json!({ "new_sqlite_classes": [class] }),
            (None, Some(class)) => json!({ "deleted_classes": [class] }),
            _ => return Ok(None),
        };
        let tag = self.migration_tag()?;
        let mut m = json!({ "new_tag": next_tag(tag.as_deref()), "steps": [step] });
        if let Some(tag) = tag {
            m["old_tag"] = json!(tag);
        }
        Ok(Some(m))
    }

    /// The settings deployed now (`result` of `GET .../settings`); `None`
    /// when there is no script.
    fn deployed_settings(&self) -> Result<Option<Value>, Error> {
        let r = self.http.send(&self.path("/settings"), |c, u| c.get(u))?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(result(ok(r)?)?))
    }

    fn upload(&self, metadata: &Value, modules: &[Module]) -> Result<(), Error> {
        let (ctype, body) = form(metadata, modules);
        let r = self.http.send(&self.path(""), |c, u| {
            c.put(u).header("content-type", &ctype).body(body.clone())
        })?;
        ok(r).map(|_| ())
    }

    /// Uploads `ir`'s Worker with `record`'s other fields, then sets its
    /// secrets from the environment.
    fn put(
        &self,
        ir: &ValidIr,
        manifest: &Manifest,
        previous_ir: Option<String>,
    ) -> Result<(), Error> {
        let secrets = secret_values(ir)?;
        let (mut metadata, modules) = render(ir, manifest, previous_ir)?;
        let class = gatefold_target_cloudflare::durable_object_class(ir);
        if let Some(m) = self.migrations(class)? {
            metadata["migrations"] = m;
        }
        self.upload(&metadata, &modules)?;
        for (name, text) in &secrets {
            let body = json!({ "name": name, "text": text, "type": "secret_text" });
            ok(self
                .http
                .send(&self.path("/secrets"), |c, u| c.put(u).json(&body))?)
            .map_err(|e| match e {
                // Never the value: only the binding's name.
                Error::Rejected(m) => Error::Rejected(format!("secret `{name}`: {m}")),
                other => other,
            })?;
        }
        Ok(())
    }

    /// Uploads `seen` again: its modules byte for byte, with the settings
    /// the plan read (secret bindings kept from the version before).
    fn restore(&self, seen: &Seen) -> Result<(), Error> {
        let (Some(download), Some(settings)) = (&seen.download, &seen.settings) else {
            return Err(Error::Failed(
                "the plan did not read the Worker's settings to restore".into(),
            ));
        };
        let bindings: Vec<Value> = settings["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| !KEPT.contains(&b["type"].as_str().unwrap_or_default()))
            .cloned()
            .collect();
        let mut metadata = json!({
            "main_module": download.entrypoint,
            "bindings": bindings,
            "keep_bindings": KEPT,
        });
        for key in ["compatibility_date", "compatibility_flags", "tags"] {
            if !settings[key].is_null() {
                metadata[key] = settings[key].clone();
            }
        }
        if let Some(m) = self.migrations(own_class(Some(settings)).as_deref())? {
            metadata["migrations"] = m;
        }
        self.upload(&metadata, &download.modules)
    }

    fn staged_ir(&self, hash: &str) -> Result<ValidIr, Error> {
        self.staged
            .lock()
            .expect("staged lock")
            .iter()
            .find(|ir| ir.hash.as_str() == hash)
            .cloned()
            .ok_or_else(|| Error::Failed(format!("{hash} was not staged")))
    }
}

fn sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// The Worker's own Durable Object class bound in `settings` (one of
/// another script has a `script_name`).
fn own_class(settings: Option<&Value>) -> Option<String> {
    settings?["bindings"]
        .as_array()?
        .iter()
        .find(|b| {
            b["type"] == "durable_object_namespace"
                && b["name"] == RATE_LIMIT_BINDING
                && b["script_name"].is_null()
        })
        .and_then(|b| b["class_name"].as_str())
        .map(str::to_string)
}

/// The tag after `tag`: `v1` first, `vN` then `vN+1`; another tool's tag
/// gets `-gatefold-1` (then counts up the same way).
fn next_tag(tag: Option<&str>) -> String {
    let Some(tag) = tag else {
        return "v1".into();
    };
    let digits = tag.len() - tag.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, n) = tag.split_at(tag.len() - digits);
    match n.parse::<u64>() {
        Ok(n) if stem == "v" || stem.ends_with("-gatefold-") => format!("{stem}{}", n + 1),
        _ => format!("{tag}-gatefold-1"),
    }
}

/// The values of `ir`'s secret bindings, each from the environment
/// variable of its name; a missing one refuses the deploy (the Worker
/// would serve without it), naming the variable, never a value.
fn secret_values(ir: &ValidIr) -> Result<Vec<(String, String)>, Error> {
    let names = gatefold_target_cloudflare::secret_bindings(ir);
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| std::env::var_os(n.as_str()).is_none())
        .collect();
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|n| format!("`{n}`")).collect();
        return Err(Error::Rejected(format!(
            "the Worker's secret bindings {} are not set in gatefold's environment (each is read from the variable of its name and set with the Workers secrets API)",
            list.join(", ")
        )));
    }
    names
        .into_iter()
        .map(|n| match std::env::var(&n) {
            Ok(v) => Ok((n, v)),
            Err(_) => Err(Error::Rejected(format!(
                "the environment variable `{n}` is not valid UTF-8"
            ))),
        })
        .collect()
}

/// The upload for `ir`: its metadata (without migrations) and modules.
fn render(
    ir: &ValidIr,
    manifest: &Manifest,
    previous_ir: Option<String>,
) -> Result<(Value, Vec<Module>), Error> {
    let out = gatefold_target_cloudflare::Cloudflare.emit(ir, &target::Options::default());
    let worker = out
        .files
        .iter()
        .find(|f| f.path.as_str() == WORKER)
        .map(|f| f.bytes.clone())
        .ok_or_else(|| Error::Failed(format!("the Cloudflare target wrote no `{WORKER}`")))?;
    let record = Record {
        manifest: manifest.clone(),
        ir: ir.to_json(),
        previous_ir,
        worker_sha256: sha256(&worker),
    };
    let bindings: Vec<Value> = gatefold_target_cloudflare::durable_object_class(ir)
        .map(|class| {
            json!({ "type": "durable_object_namespace", "name": RATE_LIMIT_BINDING, "class_name": class })
        })
        .into_iter()
        .collect();
    let metadata = json!({
        "main_module": WORKER,
        "compatibility_date": gatefold_target_cloudflare::COMPATIBILITY_DATE,
        "bindings": bindings,
        "keep_bindings": KEPT,
        "tags": ["gatefold"],
    });
    let modules = vec![
        Module {
            name: WORKER.into(),
            content_type: "application/javascript+module".into(),
            body: worker,
        },
        Module {
            name: CARRIER.into(),
            content_type: "application/json".into(),
            body: serde_json::to_vec(&record).expect("record serializes"),
        },
    ];
    Ok((metadata, modules))
}

/// multipart/form-data of `metadata` and `modules`: content type, body.
fn form(metadata: &Value, modules: &[Module]) -> (String, Vec<u8>) {
    let meta = Module {
        name: "metadata".into(),
        content_type: "application/json".into(),
        body: metadata.to_string().into_bytes(),
    };
    let mut digest = Sha256::new();
    for m in std::iter::once(&meta).chain(modules) {
        digest.update(&m.body);
    }
    let boundary: String = digest.finalize()[..12]
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    let boundary = format!("gatefold-{boundary}");
    let mut body = Vec::new();
    for m in std::iter::once(&meta).chain(modules) {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{n}\"; filename=\"{n}\"\r\nContent-Type: {t}\r\n\r\n",
                n = m.name,
                t = m.content_type
            )
            .as_bytes(),
        );
        body.extend_from_slice(&m.body);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The `result` of an answer in Cloudflare's envelope.
fn result(r: Response) -> Result<Value, Error> {
    let v: Value = r
        .json()
        .map_err(|e| Error::Failed(format!("the Workers API answered no JSON envelope: {e}")))?;
    Ok(v["result"].clone())
}

/// The answer when it is a 2xx; otherwise an error with the envelope's
/// `errors` (`{ success, errors: [{ code, message }], messages, result }`).
fn ok(r: Response) -> Result<Response, Error> {
    if r.status().is_success() {
        return Ok(r);
    }
    let status = r.status();
    let text = r.text().unwrap_or_default();
    let said = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["errors"].as_array().cloned())
        .map(|e| {
            e.iter()
                .map(|m| {
                    format!(
                        "{} ({})",
                        m["message"].as_str().unwrap_or("error"),
                        m["code"]
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or(text);
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Error::Failed(format!(
            "the Cloudflare API answered {status}: check the token in the fleet file's environment variable"
        ))),
        StatusCode::BAD_REQUEST => Err(Error::Rejected(said)),
        _ => Err(Error::Failed(format!("the Cloudflare API answered {status}: {said}"))),
    }
}

impl Provider for Cloudflare {
    fn running(&self) -> Result<Running, Error> {
        let mut seen = self.read()?;
        if seen.download.is_some() {
            seen.settings = self.deployed_settings()?;
        }
        let _ = self.planned.set(seen.clone());
        let ir = match &seen.record {
            Some(r) => Some(ValidIr::from_json(&r.ir).map_err(|e| {
                Error::Failed(format!(
                    "the IR gatefold left on the Worker does not load: {e}"
                ))
            })?),
            None => None,
        };
        Ok(Running {
            hash: seen.hash,
            ir: ir.map(std::sync::Arc::new),
            // Read with the Worker it travels in: apply asks no more.
            manifest: Some(seen.manifest),
        })
    }

    fn manifest(&self) -> Result<Option<Manifest>, Error> {
        Ok(self.read()?.manifest)
    }

    fn stage(&self, desired: &ValidIr) -> Result<Staged, Error> {
        self.staged
            .lock()
            .expect("staged lock")
            .push(desired.clone());
        Ok(Staged {
            hash: desired.hash.to_string(),
            body: desired.to_json(),
        })
    }

    fn check(&self, staged: &Staged) -> Result<(), Error> {
        let ir = self.staged_ir(&staged.hash)?;
        let gaps: Vec<String> = target::check(
            &gatefold_target_cloudflare::Cloudflare,
            &ir,
            &Default::default(),
        )
        .into_iter()
        .filter(|g| g.error)
        .map(|g| format!("`{}`", g.policy.kind))
        .collect();
        if !gaps.is_empty() {
            return Err(Error::Rejected(format!(
                "the Cloudflare target cannot carry out {}",
                gaps.join(", ")
            )));
        }
        // Before anything is uploaded: every secret is at hand.
        secret_values(&ir).map(|_| ())
    }

    fn switch(
        &self,
        staged: &Staged,
        expect: &str,
        manifest: &Manifest,
    ) -> Result<Switched, Error> {
        let now = self.read()?;
        if now.hash != expect {
            return Err(Error::Conflict {
                expected: expect.to_string(),
                running: now.hash,
            });
        }
        let ir = self.staged_ir(&staged.hash)?;
        self.put(&ir, manifest, now.record.map(|r| r.ir))?;
        Ok(Switched {
            replaced: Some(now.manifest),
        })
    }

    fn verify(&self, hash: &str) -> Result<(), Error> {
        super::serving(&self.read()?.hash, hash)?;
        // The secrets the new Worker reads are bound (values are never
        // read back; their names are).
        if let Ok(ir) = self.staged_ir(hash) {
            let settings = self.deployed_settings()?.unwrap_or_default();
            let bound: Vec<&str> = settings["bindings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|b| KEPT.contains(&b["type"].as_str().unwrap_or_default()))
                .filter_map(|b| b["name"].as_str())
                .collect();
            let unbound: Vec<String> = gatefold_target_cloudflare::secret_bindings(&ir)
                .into_iter()
                .filter(|n| !bound.contains(&n.as_str()))
                .collect();
            if !unbound.is_empty() {
                return Err(Error::Verify(format!(
                    "the Worker has no secret binding {}",
                    unbound.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn revert(&self, expect: &str, back_to: &str, manifest: &Manifest) -> Result<(), Error> {
        let now = self.read()?;
        if super::reverted_already(&now.hash, expect, back_to)? {
            return Ok(());
        }
        // In the run that changed it: the modules the plan read, byte for
        // byte, with the settings it read.
        if let Some(p) = self.planned.get().filter(|p| p.hash == back_to) {
            return match &p.download {
                Some(_) => self.restore(p),
                None => ok(self.http.send(&self.path(""), |c, u| c.delete(u))?).map(|_| ()),
            };
        }
        let previous = now.record.and_then(|r| r.previous_ir).ok_or_else(|| {
            Error::Failed("the Worker holds no record of an earlier version".into())
        })?;
        let ir = ValidIr::from_json(&previous).map_err(|e| {
            Error::Failed(format!(
                "the earlier IR gatefold left on the Worker does not load: {e}"
            ))
        })?;
        self.put(&ir, manifest, None)
    }
}

/// Just enough multipart/form-data to read back an upload.
pub mod multipart {
    /// One part: its form name and bytes.
    pub struct Part {
        pub name: String,
        pub content_type: String,
        pub body: Vec<u8>,
    }

    /// The parts of `body` sent with content type `ctype`.
    pub fn parse(ctype: &str, body: &[u8]) -> Result<Vec<Part>, String> {
        let boundary = ctype
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .map(|b| b.trim_matches('"'))
            .ok_or_else(|| format!("not multipart/form-data with a boundary: `{ctype}`"))?;
        let delim = format!("--{boundary}");
        let mut parts = Vec::new();
        let mut rest = body;
        let start = find(rest, delim.as_bytes()).ok_or("no first boundary")?;
        rest = &rest[start + delim.len()..];
        loop {
            if rest.starts_with(b"--") {
                return Ok(parts);
            }
            rest = rest
                .strip_prefix(b"\r\n")
                .ok_or("a boundary without CRLF")?;
            let head_end = find(rest, b"\r\n\r\n").ok_or("a part without headers")?;
            let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
            rest = &rest[head_end + 4..];
            let end = find(rest, format!("\r\n{delim}").as_bytes()).ok_or("a part without end")?;
            let mut name = String::new();
            let mut content_type = String::new();
            for line in head.lines() {
                let (k, v) = line.split_once(':').unwrap_or((line, ""));
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-disposition" => {
                        name = v
                            .split(';')
                            .find_map(|p| p.trim().strip_prefix("name="))
                            .unwrap_or_default()
                            .trim_matches('"')
                            .to_string()
                    }
                    "content-type" => content_type = v.trim().to_string(),
                    _ => {}
                }
            }
            parts.push(Part {
                name,
                content_type,
                body: rest[..end].to_vec(),
            });
            rest = &rest[end + 2 + delim.len()..];
        }
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }
}
