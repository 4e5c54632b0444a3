//! `FakeCloudflareApi`: a contract fake of the Workers script endpoints of
//! Cloudflare's API v4 (which cannot be reached from here), shaped as
//! wrangler and Cloudflare's API reference use them:
//!
//! - `PUT /accounts/{account}/workers/scripts/{script}`: multipart/form-data
//!   with a `metadata` JSON part (`main_module` naming a part sent as
//!   `application/javascript+module`, a `compatibility_date`, `bindings`
//!   each with a `type` and `name`, `durable_object_namespace` ones with a
//!   `class_name`, `secret_text` ones with a `text`; `keep_bindings` keeps
//!   the previous version's bindings of those types), 400 code 10021 when
//!   not. Durable Object `migrations` `{ old_tag, new_tag, steps }`:
//!   `old_tag` must be the script's tag (10079 "Migration tag precondition
//!   failed"), a new class must not exist yet (10074), a binding to the
//!   script's own class needs the class created (10061 "Cannot create
//!   binding for class ...");
//! - `GET .../{script}/content/v2`: the modules (multipart, without the
//!   metadata), the entry module named by `cf-entrypoint`; 404 code 10007;
//! - `GET .../{script}/settings`: bindings (secrets without their values),
//!   `compatibility_date`, `compatibility_flags`, `tags`;
//! - `GET /accounts/{account}/workers/scripts`: `[{ id, migration_tag }]`;
//! - `PUT .../{script}/secrets` `{ name, text, type: "secret_text" }`;
//!   404 code 10007 when there is no script;
//! - `DELETE .../{script}`.
//!
//! Every JSON answer is the envelope `{ success, errors, messages, result }`.
//! A bearer token is required (403, code 10000, without); it can answer
//! 429 or 500 to the next uploads.

use super::http::{Request, Response, Server};
use gatefold_fleet::provider::cloudflare::multipart;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct Script {
    entrypoint: String,
    /// (name, content type, bytes) in upload order.
    modules: Vec<(String, String, Vec<u8>)>,
    /// Bindings as metadata gave them, secrets included (with `text`).
    bindings: Vec<Value>,
    metadata: Value,
}

struct State {
    account: String,
    token: String,
    scripts: BTreeMap<String, Script>,
    /// Per script: its migration tag and the Durable Object classes made.
    tags: BTreeMap<String, String>,
    classes: BTreeMap<String, BTreeSet<String>>,
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

fn not_found() -> Response {
    envelope(
        404,
        Value::Null,
        vec![(10007, "This Worker does not exist on your account.".into())],
    )
}

/// The modules as `content/v2` sends them: content type and body.
fn download(s: &Script) -> (String, Vec<u8>) {
    let boundary = "fake-cloudflare-boundary";
    let mut body = Vec::new();
    for (name, ctype, bytes) in &s.modules {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: {ctype}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The settings of a script: bindings with secret values left out.
fn settings(s: &Script) -> Value {
    let bindings: Vec<Value> = s
        .bindings
        .iter()
        .map(|b| {
            let mut b = b.clone();
            if let Some(o) = b.as_object_mut() {
                o.remove("text");
            }
            b
        })
        .collect();
    let mut v = json!({ "bindings": bindings });
    for key in ["compatibility_date", "compatibility_flags", "tags"] {
        if !s.metadata[key].is_null() {
            v[key] = s.metadata[key].clone();
        }
    }
    v
}

impl FakeCloudflareApi {
    pub fn start(account: &str, token: &str) -> FakeCloudflareApi {
        let state = Arc::new(Mutex::new(State {
            account: account.into(),
            token: token.into(),
            scripts: Default::default(),
            tags: Default::default(),
            classes: Default::default(),
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

    /// What `script` runs, byte for byte: its modules as downloaded and
    /// its settings (secret values left out).
    pub fn script(&self, script: &str) -> Option<Vec<u8>> {
        let s = self.state.lock().unwrap();
        let sc = s.scripts.get(script)?;
        let mut out = download(sc).1;
        out.extend_from_slice(settings(sc).to_string().as_bytes());
        Some(out)
    }

    /// The value of `script`'s secret binding `name`.
    pub fn secret(&self, script: &str, name: &str) -> Option<String> {
        let s = self.state.lock().unwrap();
        s.scripts.get(script)?.bindings.iter().find_map(|b| {
            (b["type"] == "secret_text" && b["name"] == name)
                .then(|| b["text"].as_str().unwrap_or_default().to_string())
        })
    }

    /// `script`'s Durable Object migration tag and classes.
    pub fn migrations(&self, script: &str) -> (Option<String>, Vec<String>) {
        let s = self.state.lock().unwrap();
        (
            s.tags.get(script).cloned(),
            s.classes
                .get(script)
                .map(|c| c.iter().cloned().collect())
                .unwrap_or_default(),
        )
    }

    /// Replaces `script`'s `worker.js` behind gatefold's back (another
    /// tool's upload), keeping the rest.
    pub fn hand_edit(&self, script: &str, from: &str, to: &str) {
        let mut s = self.state.lock().unwrap();
        let entry = s.scripts.get_mut(script).expect("script");
        let module = entry
            .modules
            .iter_mut()
            .find(|m| m.0 == "worker.js")
            .expect("worker.js");
        let text = String::from_utf8(module.2.clone()).unwrap();
        assert!(text.contains(from));
        module.2 = text.replacen(from, to, 1).into_bytes();
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
    let list = format!("/client/v4/accounts/{}/workers/scripts", s.account);
    if req.path == list && req.method == "GET" {
        let items: Vec<Value> = s
            .scripts
            .keys()
            .map(|id| json!({ "id": id, "migration_tag": s.tags.get(id) }))
            .collect();
        return envelope(200, json!(items), vec![]);
    }
    let Some(rest) = req.path.strip_prefix(&format!("{list}/")) else {
        return envelope(
            404,
            Value::Null,
            vec![(7003, "Could not route to the path".into())],
        );
    };
    let (name, sub) = rest.split_once('/').unwrap_or((rest, ""));
    let name = name.to_string();
    match (req.method.as_str(), sub) {
        ("GET", "content/v2") => match s.scripts.get(&name) {
            Some(sc) => {
                let (ctype, body) = download(sc);
                Response {
                    status: 200,
                    content_type: ctype,
                    body,
                    headers: vec![("cf-entrypoint".into(), sc.entrypoint.clone())],
                }
            }
            None => not_found(),
        },
        ("GET", "settings") => match s.scripts.get(&name) {
            Some(sc) => envelope(200, settings(sc), vec![]),
            None => not_found(),
        },
        ("PUT", "secrets") => {
            let Some(sc) = s.scripts.get_mut(&name) else {
                return not_found();
            };
            let b: Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let (Some(n), Some(_), Some("secret_text")) =
                (b["name"].as_str(), b["text"].as_str(), b["type"].as_str())
            else {
                return envelope(
                    400,
                    Value::Null,
                    vec![(
                        10021,
                        "a secret needs `name`, `text` and `type: secret_text`".into(),
                    )],
                );
            };
            let n = n.to_string();
            sc.bindings.retain(|x| x["name"] != n.as_str());
            sc.bindings.push(b.clone());
            envelope(200, json!({ "name": n, "type": "secret_text" }), vec![])
        }
        ("DELETE", "") => {
            s.scripts.remove(&name);
            s.tags.remove(&name);
            s.classes.remove(&name);
            envelope(200, Value::Null, vec![])
        }
        ("PUT", "") => {
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
            match upload(&mut s, &name, &ctype, &req.body) {
                Ok(()) => envelope(
                    200,
                    json!({ "id": name, "etag": format!("{:x}", req.body.len()), "has_modules": true }),
                    vec![],
                ),
                Err((code, msg)) => envelope(400, Value::Null, vec![(code, msg)]),
            }
        }
        _ => envelope(405, Value::Null, vec![(10405, "Method not allowed".into())]),
    }
}

/// Checks an upload's shape as Cloudflare documents it, applies its
/// migrations and stores it.
fn upload(s: &mut State, name: &str, ctype: &str, body: &[u8]) -> Result<(), (u32, String)> {
    let shape = |m: String| (10021, m);
    if !ctype.starts_with("multipart/form-data") {
        return Err(shape(format!(
            "expected multipart/form-data, got `{ctype}`"
        )));
    }
    let parts = multipart::parse(ctype, body).map_err(shape)?;
    let meta = parts
        .iter()
        .find(|p| p.name == "metadata")
        .ok_or_else(|| shape("the upload has no `metadata` part".into()))?;
    let meta: Value = serde_json::from_slice(&meta.body)
        .map_err(|e| shape(format!("metadata is not JSON: {e}")))?;
    let main = meta["main_module"]
        .as_str()
        .ok_or_else(|| shape("metadata has no `main_module`".into()))?;
    let module = parts.iter().find(|p| p.name == main).ok_or_else(|| {
        shape(format!(
            "`main_module` `{main}` is not a part of the upload"
        ))
    })?;
    if module.content_type != "application/javascript+module" {
        return Err(shape(format!(
            "`{main}` must be sent as application/javascript+module"
        )));
    }
    if !meta["compatibility_date"].is_string() {
        return Err(shape("metadata has no `compatibility_date`".into()));
    }
    let mut bindings = Vec::new();
    for b in meta["bindings"]
        .as_array()
        .ok_or_else(|| shape("metadata `bindings` is not a list".into()))?
    {
        let (Some(kind), Some(_)) = (b["type"].as_str(), b["name"].as_str()) else {
            return Err(shape(format!("a binding without `type` and `name`: {b}")));
        };
        if kind == "durable_object_namespace" && !b["class_name"].is_string() {
            return Err(shape(format!(
                "a Durable Object binding without `class_name`: {b}"
            )));
        }
        if kind == "secret_text" && !b["text"].is_string() {
            return Err(shape(format!("a secret_text binding without `text`: {b}")));
        }
        bindings.push(b.clone());
    }
    // Durable Object migrations, then the classes the bindings need.
    let mut tag = s.tags.get(name).cloned();
    let mut classes = s.classes.get(name).cloned().unwrap_or_default();
    if !meta["migrations"].is_null() {
        let m = &meta["migrations"];
        if m["old_tag"].as_str() != tag.as_deref() {
            return Err((
                10079,
                format!(
                    "Migration tag precondition failed; current tag is {}",
                    tag.as_deref().unwrap_or("(none)")
                ),
            ));
        }
        for step in m["steps"].as_array().into_iter().flatten() {
            for c in step["new_sqlite_classes"].as_array().into_iter().flatten() {
                let c = c.as_str().unwrap_or_default().to_string();
                if !classes.insert(c.clone()) {
                    return Err((
                        10074,
                        format!("Cannot create Durable Object class '{c}': it already exists"),
                    ));
                }
            }
            for c in step["deleted_classes"].as_array().into_iter().flatten() {
                let c = c.as_str().unwrap_or_default();
                if bindings
                    .iter()
                    .any(|b| b["class_name"] == c && b["script_name"].is_null())
                {
                    return Err((10061, format!("Cannot apply --delete-class migration to class '{c}' without also removing the binding that references it.")));
                }
                classes.remove(c);
            }
        }
        tag = m["new_tag"].as_str().map(str::to_string);
    }
    for b in &bindings {
        if b["type"] == "durable_object_namespace" && b["script_name"].is_null() {
            let c = b["class_name"].as_str().unwrap_or_default();
            if !classes.contains(c) {
                return Err((10061, format!("Cannot create binding for class '{c}' because it is not currently configured to implement Durable Objects. Ensure a --new-class migration has been applied to it.")));
            }
        }
    }
    // keep_bindings: the previous version's bindings of those types stay
    // unless this upload names them.
    let keep: Vec<&str> = meta["keep_bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if let Some(old) = s.scripts.get(name) {
        for b in &old.bindings {
            let kept = keep.contains(&b["type"].as_str().unwrap_or_default());
            if kept && !bindings.iter().any(|n| n["name"] == b["name"]) {
                bindings.push(b.clone());
            }
        }
    }
    let modules = parts
        .iter()
        .filter(|p| p.name != "metadata")
        .map(|p| (p.name.clone(), p.content_type.clone(), p.body.clone()))
        .collect();
    s.scripts.insert(
        name.to_string(),
        Script {
            entrypoint: main.to_string(),
            modules,
            bindings,
            metadata: meta.clone(),
        },
    );
    match tag {
        Some(t) => s.tags.insert(name.to_string(), t),
        None => s.tags.remove(name),
    };
    s.classes.insert(name.to_string(), classes);
    Ok(())
}
