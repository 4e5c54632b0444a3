//! A Cloudflare Worker through the Workers API (base URL `api:`, Cloudflare's
//! by default): the Cloudflare target's module Worker is uploaded with
//! `PUT /accounts/{account}/workers/scripts/{script}` as multipart/form-data
//! (a `metadata` part: `main_module`, `compatibility_date`, bindings with
//! the rate limits' Durable Object class, `keep_bindings` so secrets set
//! with `wrangler secret put` stay), and read back with
//! `GET /accounts/{account}/workers/scripts/{script}` (the modules as
//! uploaded, multipart).
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
use super::{Error, Provider, Running, Settings, Staged};
use crate::manifest::Manifest;
use gatefold_compiler::ir::ValidIr;
use gatefold_compiler::target::{self, Target};
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

/// One Worker script of one account.
pub struct Cloudflare {
    http: Http,
    /// `/accounts/{account}/workers/scripts/{script}`.
    path: String,
    /// The first read (the plan's): the compare-and-swap baseline and what
    /// an apply's rollback uploads again, byte for byte.
    planned: OnceLock<Seen>,
    staged: Mutex<Vec<ValidIr>>,
}

#[derive(Clone, Debug)]
struct Seen {
    hash: String,
    /// The upload as read back (content type, body); `None`: no script.
    upload: Option<(String, Vec<u8>)>,
    record: Option<Record>,
    /// The carrier's manifest even when the Worker was changed since.
    manifest: Option<Manifest>,
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
            path: format!("/accounts/{account}/workers/scripts/{script}"),
            planned: OnceLock::new(),
            staged: Mutex::new(Vec::new()),
        })
    }

    fn read(&self) -> Result<Seen, Error> {
        let r = self.http.send(&self.path, |c, u| c.get(u))?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(Seen {
                hash: ABSENT.into(),
                upload: None,
                record: None,
                manifest: None,
            });
        }
        let r = ok(r)?;
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = r
            .bytes()
            .map_err(|e| Error::Unreachable(format!("{}: {e}", self.http.base())))?
            .to_vec();
        let parts = multipart::parse(&ctype, &body).map_err(Error::Failed)?;
        let worker = parts
            .iter()
            .find(|p| p.name == gatefold_target_cloudflare::WORKER)
            .map(|p| sha256(&p.body))
            .unwrap_or_default();
        let record: Option<Record> = parts
            .iter()
            .find(|p| p.name == CARRIER)
            .map(|p| {
                serde_json::from_slice(&p.body).map_err(|e| {
                    Error::Failed(format!(
                        "the Worker's `{CARRIER}` is not one gatefold wrote: {e}"
                    ))
                })
            })
            .transpose()?;
        let manifest = record.as_ref().map(|r| r.manifest.clone());
        let upload = Some((ctype, body));
        match record {
            Some(r) if r.worker_sha256 == worker => Ok(Seen {
                hash: r.manifest.hash.clone(),
                upload,
                record: Some(r),
                manifest,
            }),
            _ => Ok(Seen {
                hash: format!("{FOREIGN}{worker}"),
                upload,
                record: None,
                manifest,
            }),
        }
    }

    fn upload(&self, ctype: &str, body: &[u8]) -> Result<(), Error> {
        let r = self.http.send(&self.path, |c, u| {
            c.put(u).header("content-type", ctype).body(body.to_vec())
        })?;
        ok(r).map(|_| ())
    }

    /// Uploads `ir`'s Worker with `record`'s other fields.
    fn put(
        &self,
        ir: &ValidIr,
        manifest: &Manifest,
        previous_ir: Option<String>,
    ) -> Result<(), Error> {
        let (ctype, body) = render(ir, manifest, previous_ir)?;
        self.upload(&ctype, &body)
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

/// The multipart upload for `ir`: content type and body.
fn render(
    ir: &ValidIr,
    manifest: &Manifest,
    previous_ir: Option<String>,
) -> Result<(String, Vec<u8>), Error> {
    let out = gatefold_target_cloudflare::Cloudflare.emit(ir, &target::Options::default());
    let file = |name: &str| {
        out.files
            .iter()
            .find(|f| f.path.as_str() == name)
            .map(|f| f.bytes.clone())
            .ok_or_else(|| Error::Failed(format!("the Cloudflare target wrote no `{name}`")))
    };
    let worker = file(gatefold_target_cloudflare::WORKER)?;
    let wrangler = String::from_utf8(file(gatefold_target_cloudflare::WRANGLER)?)
        .map_err(|_| Error::Failed("wrangler.toml is not UTF-8".into()))?;
    let record = Record {
        manifest: manifest.clone(),
        ir: ir.to_json(),
        previous_ir,
        worker_sha256: sha256(&worker),
    };
    let mut metadata = json!({
        "main_module": gatefold_target_cloudflare::WORKER,
        "compatibility_date": gatefold_target_cloudflare::COMPATIBILITY_DATE,
        "bindings": [],
        // Secrets set with `wrangler secret put` stay across uploads.
        "keep_bindings": ["secret_text", "secret_key"],
        "tags": ["gatefold"],
    });
    if let Some((name, class)) = durable_object(&wrangler) {
        metadata["bindings"] =
            json!([{ "type": "durable_object_namespace", "name": name, "class_name": class }]);
    }
    let boundary = format!("gatefold-{}", &record.worker_sha256[..24]);
    let parts: [(&str, &str, Vec<u8>); 3] = [
        (
            "metadata",
            "application/json",
            metadata.to_string().into_bytes(),
        ),
        (
            gatefold_target_cloudflare::WORKER,
            "application/javascript+module",
            worker,
        ),
        (
            CARRIER,
            "application/json",
            serde_json::to_vec(&record).expect("record serializes"),
        ),
    ];
    let mut body = Vec::new();
    for (name, ctype, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: {ctype}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((format!("multipart/form-data; boundary={boundary}"), body))
}

/// The rate limits' Durable Object binding in the target's wrangler.toml:
/// `(name, class_name)`.
fn durable_object(wrangler: &str) -> Option<(String, String)> {
    let section = wrangler.split("[[durable_objects.bindings]]").nth(1)?;
    let value = |key: &str| {
        section.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
        })
    };
    Some((value("name")?, value("class_name")?))
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
        let seen = self.read()?;
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
            ir,
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
        if gaps.is_empty() {
            Ok(())
        } else {
            Err(Error::Rejected(format!(
                "the Cloudflare target cannot carry out {}",
                gaps.join(", ")
            )))
        }
    }

    fn switch(&self, staged: &Staged, expect: &str, manifest: &Manifest) -> Result<(), Error> {
        let now = self.read()?;
        if now.hash != expect {
            return Err(Error::Conflict {
                expected: expect.to_string(),
                running: now.hash,
            });
        }
        let ir = self.staged_ir(&staged.hash)?;
        self.put(&ir, manifest, now.record.map(|r| r.ir))
    }

    fn verify(&self, hash: &str) -> Result<(), Error> {
        super::serving(&self.read()?.hash, hash)
    }

    fn revert(&self, expect: &str, back_to: &str, manifest: &Manifest) -> Result<(), Error> {
        let now = self.read()?;
        if super::reverted_already(&now.hash, expect, back_to)? {
            return Ok(());
        }
        // In the run that changed it: the upload the plan read, byte for byte.
        if let Some(p) = self.planned.get().filter(|p| p.hash == back_to) {
            return match &p.upload {
                Some((ctype, body)) => self.upload(ctype, body),
                None => ok(self.http.send(&self.path, |c, u| c.delete(u))?).map(|_| ()),
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
