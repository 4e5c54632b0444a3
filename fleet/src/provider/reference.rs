//! The reference gateway (`gatefold serve`) through its admin API:
//! `GET /config` and `GET /status` for what runs (the status also names
//! the last apply's manifest), `GET /manifest` for that manifest alone,
//! `PUT /config` (or `PATCH /config` with the changes from the running
//! config) and `POST /rollback` as compare-and-swaps (`if-match`)
//! carrying the manifest (`gatefold-manifest`).

use super::http::Http;
use super::{Error, Head, Provider, Running, Settings, Staged, Switched};
use crate::manifest::Manifest;
use gatefold_compiler::ir::delta::IrDelta;
use gatefold_compiler::ir::ValidIr;
use reqwest::blocking::Response;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A reference gateway's admin API.
pub struct Reference {
    http: Http,
}

impl Reference {
    /// A client for the admin API at `admin` (`http://127.0.0.1:9901`).
    pub fn new(
        admin: &str,
        token: Option<String>,
        settings: &Settings,
    ) -> Result<Reference, Error> {
        Ok(Reference {
            http: Http::new(admin, token, settings)?,
        })
    }

    fn status(&self) -> Result<Value, Error> {
        let r = self.http.send("/status", |c, u| c.get(u))?;
        json(ok(r)?)
    }

    fn status_hash(&self) -> Result<String, Error> {
        config_hash(&self.status()?)
    }

    /// `body` to `/config` as a compare-and-swap against `expect`,
    /// recording `manifest`: `PUT` a whole config, `PATCH` its changes.
    fn send_config(
        &self,
        method: Method,
        body: &str,
        expect: &str,
        manifest: &Manifest,
    ) -> Result<Response, Error> {
        let line = manifest.to_line();
        self.http.send("/config", |c, u| {
            c.request(method.clone(), u)
                .header("if-match", expect)
                .header("gatefold-manifest", &line)
                .header("content-type", "application/json")
                .body(body.to_string())
        })
    }

    /// The answer to a switch to `hash`: a 412 naming `hash` as running
    /// is an earlier attempt that went through but whose answer was lost
    /// (what it replaced is not told again). A success names the manifest
    /// it replaced, read under the gateway's apply lock.
    fn switched(&self, r: Response, expect: &str, hash: &str) -> Result<Switched, Error> {
        if r.status() == StatusCode::PRECONDITION_FAILED {
            return match self.conflict(r, expect) {
                Error::Conflict { running, .. } if running == hash => Ok(Switched::default()),
                e => Err(e),
            };
        }
        let answer = ok(r)?.json::<Value>().ok();
        Ok(Switched {
            replaced: answer.and_then(|a| manifest_named(&a, "replaced_manifest")),
        })
    }

    /// A compare-and-swap answered 412: the running hash it names.
    fn conflict(&self, r: Response, expect: &str) -> Error {
        let running = json(r)
            .ok()
            .and_then(|v| v["config_hash"].as_str().map(str::to_string))
            .unwrap_or_else(|| "another config".into());
        Error::Conflict {
            expected: expect.to_string(),
            running,
        }
    }
}

/// The answer when it is a 2xx; otherwise an error with what it said.
fn ok(r: Response) -> Result<Response, Error> {
    if r.status().is_success() {
        return Ok(r);
    }
    let status = r.status();
    let text = r.text().unwrap_or_default();
    let said = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["errors"].as_array().cloned())
        .map(|e| {
            e.iter()
                .filter_map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or(text);
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Error::Failed(format!(
            "the admin API answered {status}: check the gateway's token in the fleet file's environment variable"
        ))),
        StatusCode::BAD_REQUEST => Err(Error::Rejected(said)),
        _ => Err(Error::Failed(format!("the admin API answered {status}: {said}"))),
    }
}

/// The manifest an answer names under `key`: `manifest` in `GET /status`
/// (see [`Head::manifest`]), `replaced_manifest` in a switch's answer (see
/// [`Switched::replaced`]).
fn manifest_named(answer: &Value, key: &str) -> Option<Option<Manifest>> {
    match answer.get(key) {
        Some(Value::Null) => Some(None),
        // Not one this gatefold reads (another tool's, a newer one's): left
        // to apply's own `GET /manifest`, which says so for this gateway
        // alone, or to the plan's. Absent: a gateway from before the
        // answer named it.
        Some(m) => serde_json::from_value::<Manifest>(m.clone()).ok().map(Some),
        None => None,
    }
}

fn config_hash(status: &Value) -> Result<String, Error> {
    status["config_hash"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Failed("`GET /status` has no `config_hash`".into()))
}

fn json(r: Response) -> Result<serde_json::Value, Error> {
    r.json()
        .map_err(|e| Error::Failed(format!("the admin API answered something not JSON: {e}")))
}

impl Provider for Reference {
    fn running(&self) -> Result<Running, Error> {
        let r = ok(self.http.send("/config", |c, u| c.get(u))?)?;
        let text = r
            .text()
            .map_err(|e| Error::Unreachable(format!("{}: {e}", self.http.base())))?;
        let ir = ValidIr::from_json(&text)
            .map_err(|e| Error::Failed(format!("`GET /config` is not a gatefold IR: {e}")))?;
        Ok(Running {
            hash: ir.hash.to_string(),
            ir: Some(std::sync::Arc::new(ir)),
            manifest: None,
        })
    }

    fn head(&self) -> Result<Option<Head>, Error> {
        // `GET /status` names the running config's hash, and the manifest
        // recorded with it, in a few hundred bytes.
        let v = self.status()?;
        Ok(Some(Head {
            hash: config_hash(&v)?,
            manifest: manifest_named(&v, "manifest"),
        }))
    }

    fn manifest(&self) -> Result<Option<Manifest>, Error> {
        let r = self.http.send("/manifest", |c, u| c.get(u))?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v = json(ok(r)?)?;
        serde_json::from_value(v).map(Some).map_err(|e| {
            Error::Failed(format!(
                "the gateway's manifest is not one gatefold wrote: {e}"
            ))
        })
    }

    fn stage(&self, desired: &ValidIr) -> Result<Staged, Error> {
        Ok(Staged {
            hash: desired.hash.to_string(),
            body: desired.to_json(),
        })
    }

    fn check(&self, staged: &Staged) -> Result<(), Error> {
        // The IR was validated when compiled; the gateway checks it again
        // (secrets, certificates) and keeps the old one if it refuses.
        ValidIr::from_json(&staged.body)
            .map(|_| ())
            .map_err(Error::Rejected)
    }

    fn stages_alike(&self) -> bool {
        // The body is the IR's JSON and the check parses it back: neither
        // depends on which gateway it goes to.
        true
    }

    fn switch(
        &self,
        staged: &Staged,
        expect: &str,
        manifest: &Manifest,
    ) -> Result<Switched, Error> {
        let r = self.send_config(Method::PUT, &staged.body, expect, manifest)?;
        self.switched(r, expect, &staged.hash)
    }

    fn changes(&self, running: &ValidIr, desired: &ValidIr) -> Option<String> {
        // A change to a large config is a small part of it: the gateway
        // then reads, and the network carries, only that part.
        Some(serde_json::to_string(&IrDelta::between(running, desired)).expect("changes serialize"))
    }

    fn switch_changes(
        &self,
        staged: &Staged,
        changes: &str,
        expect: &str,
        manifest: &Manifest,
    ) -> Result<Switched, Error> {
        let r = self.send_config(Method::PATCH, changes, expect, manifest)?;
        match r.status() {
            // A gateway from before `PATCH /config` (404, 405), or one that
            // could not make the config from the changes (422: its source
            // map differs, say): the whole config. A 400 is the config
            // refused (a secret missing there): reported, not sent again.
            StatusCode::NOT_FOUND
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::UNPROCESSABLE_ENTITY => self.switch(staged, expect, manifest),
            _ => self.switched(r, expect, &staged.hash),
        }
    }

    fn verify(&self, hash: &str) -> Result<(), Error> {
        super::serving(&self.status_hash()?, hash)
    }

    fn revert(&self, expect: &str, back_to: &str, manifest: &Manifest) -> Result<(), Error> {
        let line = manifest.to_line();
        let r = self.http.send("/rollback", |c, u| {
            c.post(u)
                .header("if-match", expect)
                .header("gatefold-manifest", &line)
        })?;
        if r.status() == StatusCode::PRECONDITION_FAILED {
            return match self.conflict(r, expect) {
                Error::Conflict { running, .. } if running == back_to => Ok(()),
                e => Err(e),
            };
        }
        if r.status() == StatusCode::CONFLICT {
            return Err(Error::Failed(
                "the gateway holds no earlier config (restarted since the apply?); run `gatefold apply` with the version wanted".into(),
            ));
        }
        ok(r).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Action;
    use serde_json::json;

    #[test]
    fn the_status_manifest_is_taken_only_when_it_is_one_gatefold_reads() {
        let m = Manifest::new("sha256:a", Some("sha256:z"), None, Action::Apply);
        let with = |v: Value| {
            manifest_named(
                &json!({ "config_hash": "sha256:a", "manifest": v }),
                "manifest",
            )
        };
        assert_eq!(with(serde_json::to_value(&m).unwrap()), Some(Some(m)));
        // Never applied there.
        assert_eq!(with(Value::Null), Some(None));
        // Another tool's object: apply asks `GET /manifest` itself.
        assert_eq!(with(json!({ "hash": "x", "action": "apply" })), None);
        // A gateway from before the status named it.
        assert_eq!(
            manifest_named(&json!({ "config_hash": "sha256:a" }), "manifest"),
            None
        );
    }
}
