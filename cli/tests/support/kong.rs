//! `FakeKongAdmin`: a contract fake of DB-less Kong's Admin API (Kong
//! cannot run here), answering as kong/api/routes/config.lua and
//! health.lua do:
//!
//! - `GET /status`: `configuration_hash`, the MD5 of the config string last
//!   loaded (kong/db/declarative/init.lua hashes the posted string);
//! - `GET /config`: `{ "config": TEXT }`. Kong exports what it loaded (with
//!   ids and defaults, as YAML); the fake gives back the text it loaded;
//! - `POST /config` with `{ "config": TEXT }`: the config is checked against
//!   decK's Kong schema (`../shared/reference/kong/kong_json_schema.json`,
//!   copied in targets/kong/tests/schemas)
//!   and Kong's tag rule; 400 with Kong's error shape (flattened with
//!   `flatten_errors=1`), 304 with `check_hash=1` and an identical config,
//!   else 201 with the config.
//!
//! It can require a token (`Kong-Admin-Token`, 401 without), answer 500 to
//! posts, or never answer them (a timeout).

use super::http::{Request, Response, Server};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// What the fake holds; tests change it through [`FakeKongAdmin`].
struct State {
    config: String,
    posts: u32,
    fail_posts: u32,
    token: Option<String>,
}

pub struct FakeKongAdmin {
    server: Server,
    state: Arc<Mutex<State>>,
}

/// The hash Kong reports for a config string.
pub fn kong_hash(text: &str) -> String {
    gatefold_fleet::provider::md5::hex(text.as_bytes())
}

impl FakeKongAdmin {
    /// A fake running `config` (a Kong declarative config as JSON text),
    /// requiring `token` when given.
    pub fn start(config: &str, token: Option<&str>) -> FakeKongAdmin {
        let state = Arc::new(Mutex::new(State {
            config: config.to_string(),
            posts: 0,
            fail_posts: 0,
            token: token.map(str::to_string),
        }));
        // The repository's copy of ../shared/reference/kong (a fresh clone
        // in CI has no ../shared).
        let path = super::repo().join("targets/kong/tests/schemas/kong_json_schema.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
        let shared = state.clone();
        let server = Server::start(move |req| handle(&shared, &validator, req));
        FakeKongAdmin { server, state }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The config it runs, byte for byte.
    pub fn config(&self) -> String {
        self.state.lock().unwrap().config.clone()
    }

    /// How many `POST /config` it received.
    pub fn posts(&self) -> u32 {
        self.state.lock().unwrap().posts
    }

    /// Replaces the running config behind gatefold's back (a hand edit).
    pub fn set_config(&self, text: &str) {
        self.state.lock().unwrap().config = text.to_string();
    }

    /// Answers the next `n` posts 500.
    pub fn fail_posts(&self, n: u32) {
        self.state.lock().unwrap().fail_posts = n;
    }
}

fn handle(state: &Mutex<State>, schema: &jsonschema::Validator, req: &Request) -> Option<Response> {
    let mut s = state.lock().unwrap();
    if let Some(t) = &s.token {
        if req.headers.get("kong-admin-token") != Some(t) {
            return Some(Response::json(
                401,
                &json!({ "message": "Invalid credentials. Token or User credentials required" }),
            ));
        }
    }
    Some(match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/status") => Response::json(
            200,
            &json!({
                "configuration_hash": kong_hash(&s.config),
                "memory": { "workers_lua_vms": [], "lua_shared_dicts": {} },
                "server": { "connections_accepted": 1, "connections_active": 1, "total_requests": 1 }
            }),
        ),
        ("GET", "/config") => Response::json(200, &json!({ "config": s.config })),
        ("POST", "/config") => {
            s.posts += 1;
            if s.fail_posts > 0 {
                s.fail_posts -= 1;
                return Some(Response::json(
                    500,
                    &json!({ "message": "An unexpected error occurred" }),
                ));
            }
            match post(&s.config, schema, req) {
                Ok(None) => Response::json(304, &json!({})),
                Ok(Some((text, config))) => {
                    s.config = text;
                    Response::json(201, &config)
                }
                Err(body) => Response::json(400, &body),
            }
        }
        _ => Response::json(404, &json!({ "message": "Not found" })),
    })
}

/// A `POST /config`: the new config (text and value), `None` for 304, or
/// Kong's 400 body.
#[allow(clippy::result_large_err)]
fn post(
    running: &str,
    schema: &jsonschema::Validator,
    req: &Request,
) -> Result<Option<(String, Value)>, Value> {
    let truthy = |k: &str| {
        req.query
            .get(k)
            .is_some_and(|v| ["1", "true", "on", "yes"].contains(&v.to_ascii_lowercase().as_str()))
    };
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|_| json!({ "message": "expected a declarative configuration" }))?;
    let text = match &body["config"] {
        Value::String(t) => t.clone(),
        // The config itself as the body: Kong hashes what it parsed; the
        // fake hashes the body as sent.
        _ if body.get("_format_version").is_some() => {
            String::from_utf8_lossy(&req.body).into_owned()
        }
        _ => return Err(json!({ "message": "expected a declarative configuration" })),
    };
    if req.query.get("check_hash").map(String::as_str) == Some("1")
        && kong_hash(&text) == kong_hash(running)
    {
        return Ok(None);
    }
    let config: Value = serde_json::from_str(&text).map_err(|e| {
        let err = format!("failed parsing declarative configuration: {e}");
        invalid(json!({ "error": err }), Vec::new(), false)
    })?;
    // Kong's tag rule (kong/db/schema/typedefs.lua, validate_tag): printable
    // ASCII except `,` and `/`, or UTF-8 beyond ASCII.
    let mut flat = Vec::new();
    let mut fields = serde_json::Map::new();
    for e in schema.iter_errors(&config) {
        let path = e.instance_path().to_string();
        fields.insert(path.clone(), e.to_string().into());
        flat.push(json!({ "entity_type": entity_type(&path), "errors": [{ "type": "field", "field": path, "message": e.to_string() }] }));
    }
    each_tag(&config, &mut |path, tag| {
        let ok = !tag.is_empty()
            && tag.chars().all(|c| {
                (c as u32 >= 128) || (c.is_ascii_graphic() && c != ',' && c != '/') || c == ' '
            });
        if !ok {
            let msg = format!("invalid tag '{tag}': expected printable ascii (except `,` and `/`) or valid utf-8 sequences");
            fields.insert(path.clone(), msg.clone().into());
            flat.push(json!({ "entity_type": entity_type(&path), "errors": [{ "type": "field", "field": path, "message": msg }] }));
        }
    });
    if !flat.is_empty() {
        return Err(invalid(
            Value::Object(fields),
            flat,
            truthy("flatten_errors"),
        ));
    }
    Ok(Some((text, config)))
}

/// Kong's `errors:declarative_config` body (code 14), or its flattened form.
fn invalid(fields: Value, flat: Vec<Value>, flatten: bool) -> Value {
    if flatten {
        json!({
            "code": 14,
            "name": "invalid declarative configuration",
            "message": format!("declarative config is invalid: {fields}"),
            "flattened_errors": flat,
            "fields": {}
        })
    } else {
        json!({
            "code": 14,
            "name": "invalid declarative configuration",
            "message": format!("declarative config is invalid: {fields}"),
            "fields": fields
        })
    }
}

/// `services` from `/services/0/port`.
fn entity_type(path: &str) -> String {
    let top = path.trim_start_matches('/').split('/').next().unwrap_or("");
    top.trim_end_matches('s').to_string()
}

/// Calls `f(path, tag)` for every entity tag in `v`.
fn each_tag(v: &Value, f: &mut dyn FnMut(String, &str)) {
    fn walk(v: &Value, path: String, f: &mut dyn FnMut(String, &str)) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = format!("{path}/{k}");
                    match (k.as_str(), x) {
                        ("tags", Value::Array(tags)) => {
                            for (i, t) in tags.iter().enumerate() {
                                if let Some(t) = t.as_str() {
                                    f(format!("{p}/{i}"), t);
                                }
                            }
                        }
                        _ => walk(x, p, f),
                    }
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, format!("{path}/{i}"), f);
                }
            }
            _ => {}
        }
    }
    walk(v, String::new(), f)
}
