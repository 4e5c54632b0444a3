//! DB-less Kong through its Admin API (kong/api/routes/config.lua,
//! health.lua): `GET /status` for the running config's hash
//! (`configuration_hash`), `GET /config` for Kong's export of it, and
//! `POST /config` to replace it whole.
//!
//! The config posted is the Kong target's declarative config as JSON, plus
//! one inert entity, a key set named [`CARRIER`] (no keys: no plugin uses
//! it), whose tags carry the manifest, the gatefold IR applied (for the
//! semantic diff) and what ran before (for `gatefold rollback`), each
//! base64url-encoded (Kong tags refuse `,` and `/`). Kong's hash of a
//! config posted as a `config` string is the MD5 of that string, so what
//! runs is known to be what gatefold posted when the config rebuilt from
//! the carrier has the MD5 Kong reports; anything else (a hand edit,
//! another tool) shows as `kong:md5:<hash>`, which is drift.
//!
//! Kong has no compare-and-swap: [`Kong::switch`] reads the hash just
//! before posting and refuses if it changed since the plan. A change made
//! between that read and the post is not seen (docs/fleet.md).

use super::http::{Auth, Http};
use super::{md5, Error, Provider, Running, Settings, Staged, Switched};
use crate::manifest::Manifest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use gatefold_compiler::ir::ValidIr;
use gatefold_compiler::target::{self, Target};
use reqwest::blocking::Response;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Mutex, OnceLock};

/// The name of the key set whose tags carry gatefold's record.
pub const CARRIER: &str = "gatefold-manifest";
/// Tag prefixes on the carrier.
const TAG_MANIFEST: &str = "gatefold-manifest:";
const TAG_IR: &str = "gatefold-ir:";
const TAG_PREVIOUS_IR: &str = "gatefold-previous-ir:";
const TAG_PREVIOUS_CONFIG: &str = "gatefold-previous-config:";
/// The prefix of the hash of a config gatefold did not write (or that was
/// edited since).
pub const FOREIGN: &str = "kong:md5:";

/// A DB-less Kong's Admin API.
pub struct Kong {
    http: Http,
    /// What the first read saw (the plan): the compare-and-swap baseline,
    /// and what an apply's rollback posts back byte for byte.
    planned: OnceLock<Seen>,
    /// Configs staged in this run, by IR hash.
    staged: Mutex<Vec<ValidIr>>,
}

/// What a read of the gateway found.
#[derive(Clone, Debug)]
struct Seen {
    /// Kong's `configuration_hash`.
    kong_hash: String,
    /// The hash reported to the fleet: the IR's when gatefold's config runs
    /// unchanged, else `kong:md5:...`.
    hash: String,
    /// The exact text that, posted, runs this config again.
    text: String,
    /// The carrier, when gatefold's config runs unchanged.
    record: Option<Record>,
    /// The carrier's manifest even when the config around it was edited.
    manifest: Option<Manifest>,
}

/// What the carrier holds, decoded.
#[derive(Clone, Debug)]
struct Record {
    manifest: Manifest,
    /// The IR's JSON exactly as carried (rebuilding uses these bytes).
    ir: String,
    previous: Option<Previous>,
}

/// What ran before the last apply.
#[derive(Clone, Debug)]
enum Previous {
    /// A config gatefold wrote: its IR's JSON.
    Ir(String),
    /// A config gatefold did not write: Kong's export of it.
    Config(String),
}

impl Kong {
    /// A client for the Admin API at `admin` (`http://127.0.0.1:8001`),
    /// sending `token` as `Kong-Admin-Token` when given.
    pub fn new(admin: &str, token: Option<String>, settings: &Settings) -> Result<Kong, Error> {
        let auth = token.map(|t| Auth::Header("Kong-Admin-Token", t));
        Ok(Kong {
            http: Http::with_auth(admin, auth, settings)?,
            planned: OnceLock::new(),
            staged: Mutex::new(Vec::new()),
        })
    }

    fn status_hash(&self) -> Result<String, Error> {
        let v = json_of(ok(self.http.send("/status", |c, u| c.get(u))?)?)?;
        v["configuration_hash"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                Error::Failed(
                    "`GET /status` has no `configuration_hash`: is Kong running DB-less?".into(),
                )
            })
    }

    /// Reads what runs: Kong's hash, its export, and the carrier.
    fn read(&self) -> Result<Seen, Error> {
        let kong_hash = self.status_hash()?;
        let v = json_of(ok(self.http.send("/config", |c, u| c.get(u))?)?)?;
        let text = v["config"]
            .as_str()
            .ok_or_else(|| Error::Failed("`GET /config` has no `config`".into()))?
            .to_string();
        // Kong exports YAML; JSON is YAML too.
        let config: Value = serde_yaml::from_str(&text)
            .map_err(|e| Error::Failed(format!("`GET /config` is not YAML: {e}")))?;
        let record = carrier(&config)?;
        let foreign = Seen {
            hash: format!("{FOREIGN}{kong_hash}"),
            kong_hash: kong_hash.clone(),
            text: text.clone(),
            record: None,
            manifest: record.as_ref().map(|r| r.manifest.clone()),
        };
        let Some(record) = record else {
            return Ok(foreign);
        };
        // Unchanged when the config rebuilt from the carrier is the one
        // Kong hashed; if gatefold's Kong output changed between versions,
        // this shows as drift until the next apply.
        let rebuilt = match ValidIr::from_json(&record.ir) {
            Ok(ir) => render(&ir, &record)?,
            Err(_) => return Ok(foreign),
        };
        if md5::hex(rebuilt.as_bytes()) != kong_hash {
            return Ok(foreign);
        }
        Ok(Seen {
            kong_hash,
            hash: record.manifest.hash.clone(),
            text: rebuilt,
            manifest: Some(record.manifest.clone()),
            record: Some(record),
        })
    }

    /// Reads what runs; the first read of this client is the plan's.
    fn observe(&self) -> Result<Seen, Error> {
        let seen = self.read()?;
        let _ = self.planned.set(seen.clone());
        Ok(seen)
    }

    /// Posts `text` as the whole config (`check_hash`: an identical config
    /// is not reloaded, so a retry after a lost answer is harmless).
    fn post(&self, text: &str) -> Result<(), Error> {
        let body = json!({ "config": text }).to_string();
        let r = self
            .http
            .send("/config?check_hash=1&flatten_errors=1", |c, u| {
                c.post(u)
                    .header("content-type", "application/json")
                    .body(body.clone())
            })?;
        if r.status() == StatusCode::NOT_MODIFIED {
            return Ok(());
        }
        ok(r).map(|_| ())
    }

    /// Refuses unless Kong still runs what the plan saw.
    fn still(&self, expect: &str) -> Result<Seen, Error> {
        let planned = self.planned.get().cloned();
        let now = self.status_hash()?;
        match planned {
            Some(p) if p.kong_hash == now && p.hash == expect => Ok(p),
            Some(p) if p.kong_hash == now => Err(Error::Conflict {
                expected: expect.to_string(),
                running: p.hash,
            }),
            _ => {
                // Not read in this run, or changed: read it now.
                let seen = self.read()?;
                if seen.hash == expect {
                    Ok(seen)
                } else {
                    Err(Error::Conflict {
                        expected: expect.to_string(),
                        running: seen.hash,
                    })
                }
            }
        }
    }
}

/// The carrier's record in a Kong config, if it has one.
fn carrier(config: &Value) -> Result<Option<Record>, Error> {
    let Some(set) = config["key_sets"]
        .as_array()
        .and_then(|sets| sets.iter().find(|s| s["name"] == CARRIER))
    else {
        return Ok(None);
    };
    let tags: Vec<&str> = set["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let find = |prefix: &str| -> Result<Option<String>, Error> {
        let Some(tag) = tags.iter().find_map(|t| t.strip_prefix(prefix)) else {
            return Ok(None);
        };
        let bytes = B64.decode(tag).map_err(|e| {
            Error::Failed(format!(
                "the `{CARRIER}` key set's tag `{prefix}` is not base64url: {e}"
            ))
        })?;
        String::from_utf8(bytes).map(Some).map_err(|_| {
            Error::Failed(format!(
                "the `{CARRIER}` key set's tag `{prefix}` is not UTF-8"
            ))
        })
    };
    let (Some(manifest), Some(ir)) = (find(TAG_MANIFEST)?, find(TAG_IR)?) else {
        return Ok(None);
    };
    let manifest: Manifest = serde_json::from_str(&manifest).map_err(|e| {
        Error::Failed(format!(
            "the gateway's manifest is not one gatefold wrote: {e}"
        ))
    })?;
    let previous = match (find(TAG_PREVIOUS_IR)?, find(TAG_PREVIOUS_CONFIG)?) {
        (Some(ir), _) => Some(Previous::Ir(ir)),
        (None, Some(config)) => Some(Previous::Config(config)),
        (None, None) => None,
    };
    Ok(Some(Record {
        manifest,
        ir,
        previous,
    }))
}

/// The Kong target's config for `ir` as a JSON value.
fn entities(ir: &ValidIr) -> Result<Value, Error> {
    let kong = gatefold_target_kong::Kong;
    let out = kong.emit(ir, &target::Options::default());
    let file = out
        .files
        .iter()
        .find(|f| f.path.as_str() == gatefold_target_kong::CONFIG)
        .ok_or_else(|| Error::Failed("the Kong target wrote no config".into()))?;
    let text = std::str::from_utf8(&file.bytes)
        .map_err(|_| Error::Failed("the Kong target's config is not UTF-8".into()))?;
    serde_yaml::from_str(text)
        .map_err(|e| Error::Failed(format!("the Kong target's config is not YAML: {e}")))
}

/// The exact text posted for `ir` with `record` in the carrier.
fn render(ir: &ValidIr, record: &Record) -> Result<String, Error> {
    let mut config = entities(ir)?;
    let tag = |prefix: &str, text: &str| format!("{prefix}{}", B64.encode(text));
    let mut tags = vec![
        tag(TAG_MANIFEST, &record.manifest.to_line()),
        tag(TAG_IR, &record.ir),
    ];
    match &record.previous {
        Some(Previous::Ir(ir)) => tags.push(tag(TAG_PREVIOUS_IR, ir)),
        Some(Previous::Config(c)) => tags.push(tag(TAG_PREVIOUS_CONFIG, c)),
        None => {}
    }
    let obj = config
        .as_object_mut()
        .ok_or_else(|| Error::Failed("the Kong target's config is not a map".into()))?;
    if obj.contains_key("key_sets") {
        return Err(Error::Failed(
            "the Kong target's config has key sets of its own: the carrier would clash".into(),
        ));
    }
    obj.insert(
        "key_sets".into(),
        json!([{ "name": CARRIER, "tags": tags }]),
    );
    Ok(config.to_string())
}

/// The answer when it is a 2xx; otherwise an error with what Kong said.
fn ok(r: Response) -> Result<Response, Error> {
    if r.status().is_success() || r.status() == StatusCode::NOT_MODIFIED {
        return Ok(r);
    }
    let status = r.status();
    let text = r.text().unwrap_or_default();
    let said = serde_json::from_str::<Value>(&text)
        .ok()
        .map(|v| said(&v))
        .unwrap_or(text);
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Error::Failed(format!(
            "Kong's Admin API answered {status}: check the token in the fleet file's environment variable"
        ))),
        StatusCode::BAD_REQUEST => Err(Error::Rejected(said)),
        _ => Err(Error::Failed(format!("Kong's Admin API answered {status}: {said}"))),
    }
}

/// Kong's error body as one line: the flattened errors (`flatten_errors`)
/// when it gives them, else its message.
fn said(v: &Value) -> String {
    let flat: Vec<String> = v["flattened_errors"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| {
            let entity = format!(
                "{} {}",
                e["entity_type"].as_str().unwrap_or("entity"),
                e["entity_name"].as_str().unwrap_or("")
            );
            e["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |x| {
                    let field = x["field"]
                        .as_str()
                        .map(|f| format!(".{f}"))
                        .unwrap_or_default();
                    format!(
                        "{}{field}: {}",
                        entity.trim_end(),
                        x["message"].as_str().unwrap_or("invalid")
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if !flat.is_empty() {
        return flat.join("; ");
    }
    v["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

fn json_of(r: Response) -> Result<Value, Error> {
    r.json()
        .map_err(|e| Error::Failed(format!("Kong's Admin API answered something not JSON: {e}")))
}

impl Provider for Kong {
    fn running(&self) -> Result<Running, Error> {
        let seen = self.observe()?;
        let ir = match &seen.record {
            Some(r) => Some(ValidIr::from_json(&r.ir).map_err(|e| {
                Error::Failed(format!("the IR gatefold left on Kong does not load: {e}"))
            })?),
            None => None,
        };
        Ok(Running {
            hash: seen.hash,
            ir: ir.map(std::sync::Arc::new),
            // Read with the config it travels in: apply asks no more.
            manifest: Some(seen.manifest),
        })
    }

    fn manifest(&self) -> Result<Option<Manifest>, Error> {
        Ok(self.read()?.manifest)
    }

    fn stage(&self, desired: &ValidIr) -> Result<Staged, Error> {
        let body = entities(desired)?.to_string();
        self.staged
            .lock()
            .expect("staged lock")
            .push(desired.clone());
        Ok(Staged {
            hash: desired.hash.to_string(),
            body,
        })
    }

    fn check(&self, staged: &Staged) -> Result<(), Error> {
        // What the Kong target cannot carry out is refused before Kong
        // sees it; Kong itself checks the rest when it is posted.
        let ir = self.staged_ir(&staged.hash)?;
        let gaps: Vec<String> =
            target::check(&gatefold_target_kong::Kong, &ir, &Default::default())
                .into_iter()
                .filter(|g| g.error)
                .map(|g| match g.field {
                    Some(f) => format!("`{}` option `{f}`", g.policy.kind),
                    None => format!("`{}`", g.policy.kind),
                })
                .collect();
        if gaps.is_empty() {
            Ok(())
        } else {
            Err(Error::Rejected(format!(
                "the Kong target cannot carry out {}",
                gaps.join(", ")
            )))
        }
    }

    fn switch(
        &self,
        staged: &Staged,
        expect: &str,
        manifest: &Manifest,
    ) -> Result<Switched, Error> {
        let before = self.still(expect)?;
        let ir = self.staged_ir(&staged.hash)?;
        let previous = match &before.record {
            Some(r) => Previous::Ir(r.ir.clone()),
            None => Previous::Config(before.text.clone()),
        };
        let record = Record {
            manifest: manifest.clone(),
            ir: ir.to_json(),
            previous: Some(previous),
        };
        self.post(&render(&ir, &record)?)?;
        Ok(Switched {
            replaced: Some(before.manifest),
        })
    }

    fn verify(&self, hash: &str) -> Result<(), Error> {
        super::serving(&self.read()?.hash, hash)
    }

    fn revert(&self, expect: &str, back_to: &str, manifest: &Manifest) -> Result<(), Error> {
        let now = self.read()?;
        if super::reverted_already(&now.hash, expect, back_to)? {
            return Ok(());
        }
        // In the run that changed it: the config the plan saw, byte for byte.
        if let Some(p) = self.planned.get().filter(|p| p.hash == back_to) {
            return self.post(&p.text);
        }
        let previous = now
            .record
            .and_then(|r| r.previous)
            .ok_or_else(|| Error::Failed("Kong holds no record of an earlier config".into()))?;
        match previous {
            Previous::Ir(ir_json) => {
                let ir = ValidIr::from_json(&ir_json).map_err(|e| {
                    Error::Failed(format!(
                        "the earlier IR gatefold left on Kong does not load: {e}"
                    ))
                })?;
                let record = Record {
                    manifest: manifest.clone(),
                    ir: ir_json,
                    previous: None,
                };
                self.post(&render(&ir, &record)?)
            }
            // A config gatefold did not write goes back as Kong exported it.
            Previous::Config(text) => self.post(&text),
        }
    }
}

impl Kong {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kong_error_bodies_read_as_one_line() {
        let flat = json!({
            "code": 14,
            "name": "invalid declarative configuration",
            "message": "declarative config is invalid: {}",
            "flattened_errors": [{
                "entity_type": "service",
                "entity_name": "pets",
                "errors": [{ "type": "field", "field": "port", "message": "value should be between 0 and 65535" }]
            }],
            "fields": {}
        });
        assert_eq!(
            said(&flat),
            "service pets.port: value should be between 0 and 65535"
        );
        let plain = json!({ "message": "expected a declarative configuration" });
        assert_eq!(said(&plain), "expected a declarative configuration");
    }
}
