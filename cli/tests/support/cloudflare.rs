//! `FakeCloudflareApi`: a contract fake of the Workers script endpoints of
//! Cloudflare's API v4 (which cannot be reached from here):
//!
//! - `PUT /accounts/{account}/workers/scripts/{script}`: multipart/form-data
//!   with a `metadata` JSON part (`main_module` naming a part sent as
//!   `application/javascript+module`, a `compatibility_date`, `bindings`
//!   each with a `type` and `name`, `durable_object_namespace` ones with a
//!   `class_name`); 400 with error code 10021 when not;
//! - `GET` the same path: the upload as stored (multipart), 404 with code
//!   10007 when there is no script;
//! - `DELETE` it.
//!
//! Every JSON answer is the envelope `{ success, errors, messages, result }`.
//! A bearer token is required (403, code 10000, without); it can answer
//! 429 or 500 to the next uploads.

use super::http::{Request, Response, Server};
use gatefold_fleet::provider::cloudflare::multipart;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

struct State {
    account: String,
    token: String,
    /// Script name to (content type, body).
    scripts: std::collections::BTreeMap<String, (String, Vec<u8>)>,
    uploads: u32,
    fail_uploads: Vec<u16>,
}

pub struct FakeCloudflareApi {
    server: Server,
    state: Arc<Mutex<State>>,
}

fn envelope(status: u16, result: Value, errors: Vec<(u32, String)>) -> Response {
    let errors: Vec<Value> = errors
        .into_iter()
        .map(|(code, message)| json!({ "code": code, "message": message }))
        .collect();
    Response::json(
        status,
        &json!({ "success": errors.is_empty(), "errors": errors, "messages": [], "result": result }),
    )
}

impl FakeCloudflareApi {
    pub fn start(account: &str, token: &str) -> FakeCloudflareApi {
        let state = Arc::new(Mutex::new(State {
            account: account.into(),
            token: token.into(),
            scripts: Default::default(),
            uploads: 0,
            fail_uploads: Vec::new(),
        }));
        let shared = state.clone();
        let server = Server::start(move |req| Some(handle(&shared, req)));
        FakeCloudflareApi { server, state }
    }

    /// The API base URL to write as `api:`.
    pub fn url(&self) -> String {
        format!("{}/client/v4", self.server.url())
    }

    /// The stored upload of `script`, byte for byte.
    pub fn script(&self, script: &str) -> Option<Vec<u8>> {
        self.state
            .lock()
            .unwrap()
            .scripts
            .get(script)
            .map(|s| s.1.clone())
    }

    /// Replaces `script`'s `worker.js` behind gatefold's back (another
    /// tool's upload), keeping the rest.
    pub fn hand_edit(&self, script: &str, from: &str, to: &str) {
        let mut s = self.state.lock().unwrap();
        let entry = s.scripts.get_mut(script).expect("script");
        let text = String::from_utf8(entry.1.clone()).unwrap();
        assert!(text.contains(from));
        entry.1 = text.replacen(from, to, 1).into_bytes();
    }

    pub fn uploads(&self) -> u32 {
        self.state.lock().unwrap().uploads
    }

    /// Answers the next uploads with these statuses, in order.
    pub fn fail_uploads(&self, statuses: &[u16]) {
        self.state.lock().unwrap().fail_uploads = statuses.to_vec();
    }
}

fn handle(state: &Mutex<State>, req: &Request) -> Response {
    let mut s = state.lock().unwrap();
    if req.headers.get("authorization") != Some(&format!("Bearer {}", s.token)) {
        return envelope(
            403,
            Value::Null,
            vec![(10000, "Authentication error".into())],
        );
    }
    let prefix = format!("/client/v4/accounts/{}/workers/scripts/", s.account);
    let Some(name) = req.path.strip_prefix(&prefix).filter(|n| !n.contains('/')) else {
        return envelope(
            404,
            Value::Null,
            vec![(7003, "Could not route to the path".into())],
        );
    };
    let name = name.to_string();
    match req.method.as_str() {
        "GET" => match s.scripts.get(&name) {
            Some((ctype, body)) => Response {
                status: 200,
                content_type: ctype.clone(),
                body: body.clone(),
            },
            None => envelope(
                404,
                Value::Null,
                vec![(10007, "This Worker does not exist on your account.".into())],
            ),
        },
        "DELETE" => {
            s.scripts.remove(&name);
            envelope(200, Value::Null, vec![])
        }
        "PUT" => {
            s.uploads += 1;
            if !s.fail_uploads.is_empty() {
                let status = s.fail_uploads.remove(0);
                return envelope(
                    status,
                    Value::Null,
                    vec![(10013, "An unknown error has occurred".into())],
                );
            }
            let ctype = req.headers.get("content-type").cloned().unwrap_or_default();
            match check_upload(&ctype, &req.body) {
                Ok(()) => {
                    s.scripts.insert(name.clone(), (ctype, req.body.clone()));
                    envelope(
                        200,
                        json!({ "id": name, "etag": format!("{:x}", req.body.len()), "has_modules": true }),
                        vec![],
                    )
                }
                Err(msg) => envelope(400, Value::Null, vec![(10021, msg)]),
            }
        }
        _ => envelope(405, Value::Null, vec![(10405, "Method not allowed".into())]),
    }
}

/// The upload's shape as Cloudflare documents it.
fn check_upload(ctype: &str, body: &[u8]) -> Result<(), String> {
    if !ctype.starts_with("multipart/form-data") {
        return Err(format!("expected multipart/form-data, got `{ctype}`"));
    }
    let parts = multipart::parse(ctype, body)?;
    let meta = parts
        .iter()
        .find(|p| p.name == "metadata")
        .ok_or("the upload has no `metadata` part")?;
    let meta: Value =
        serde_json::from_slice(&meta.body).map_err(|e| format!("metadata is not JSON: {e}"))?;
    let main = meta["main_module"]
        .as_str()
        .ok_or("metadata has no `main_module`")?;
    let module = parts
        .iter()
        .find(|p| p.name == main)
        .ok_or_else(|| format!("`main_module` `{main}` is not a part of the upload"))?;
    if module.content_type != "application/javascript+module" {
        return Err(format!(
            "`{main}` must be sent as application/javascript+module"
        ));
    }
    if !meta["compatibility_date"].is_string() {
        return Err("metadata has no `compatibility_date`".into());
    }
    for b in meta["bindings"]
        .as_array()
        .ok_or("metadata `bindings` is not a list")?
    {
        let (Some(kind), Some(_)) = (b["type"].as_str(), b["name"].as_str()) else {
            return Err(format!("a binding without `type` and `name`: {b}"));
        };
        if kind == "durable_object_namespace" && !b["class_name"].is_string() {
            return Err(format!(
                "a Durable Object binding without `class_name`: {b}"
            ));
        }
    }
    Ok(())
}
