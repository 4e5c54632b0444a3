//! The admin API, on its own listener:
//!
//! | request | answer |
//! |---|---|
//! | `GET /healthz` | 200 `{"status":"ok"}` (no token needed) |
//! | `GET /status` | version, config hash, loaded-at, uptime, routes, rollback depth |
//! | `GET /config` | the running IR (`gatefold.ir.json`) |
//! | `PUT /config` | a spec (YAML) or a compiled IR (JSON): validated, loaded, swapped in atomically; 400 with diagnostics when it is bad (the old config keeps serving) |
//! | `PATCH /config` | a compiled IR as its changes from the running one (`IrDelta`, what `gatefold apply` sends): made into the whole IR, checked and swapped in as `PUT` does; 412 when the gateway runs another config than the one they apply to; 422 (nothing changed, the whole config may be sent) when they are not changes, name another base than `if-match`, or do not make the IR they name here; 400 when the IR they make is refused as `PUT` would refuse it |
//! | `POST /rollback` | back to the config before the running one; 409 when there is none |
//! | `GET /manifest` | what the last fleet apply recorded (`gatefold apply`); 404 when none has |
//! | `GET /metrics` | Prometheus text |
//!
//! A successful `PUT` or `PATCH /config` answers `replaced_manifest`: the
//! manifest recorded before it, read under the apply lock (`null`: none).
//!
//! `PUT`/`PATCH /config` and `POST /rollback` are compare-and-swaps when they carry
//! `if-match: <config hash>`: 412 with the running `config_hash` when the
//! gateway runs another config. With `gatefold-manifest: <JSON object>`
//! (at most [`MAX_MANIFEST_BYTES`]), a successful change records it as the
//! manifest, under the same lock as the swap; without one the manifest
//! stays, so a config pushed by hand shows as drift against it.
//!
//! With a token set, every endpoint but `/healthz` needs
//! `authorization: Bearer <token>` (scheme in any case). Without one (the
//! loopback-only default), every endpoint but `/healthz` refuses with 403 a
//! request that carries an `origin` header or a `host` that is not a
//! loopback name: a web page the operator visits could otherwise push a
//! config (cross-site requests, DNS rebinding).
//!
//! `PUT /config` takes one config at a time: reading, parsing and applying
//! are serialized, so concurrent pushes never hold more than one config's
//! text and parse in memory. A body over [`MAX_CONFIG_BYTES`] is refused
//! with 413 before it is read when its length is declared, as soon as it
//! exceeds the limit otherwise.

use super::clock::rfc3339;
use super::policies::auth::constant_time_eq as auth_eq;
use super::respond;
use super::{Body, Refused, Shared};
use bytes::Bytes;
use gatefold_compiler::ir::delta::IrDelta;
use gatefold_compiler::ir::{ContentHash, ValidIr};
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Largest config accepted by `PUT /config`: the front end's default limit
/// on a spec file.
pub const MAX_CONFIG_BYTES: usize = gatefold_compiler::Limits::DEFAULT_MAX_FILE_BYTES as usize;

/// Largest `gatefold-manifest` header: a manifest is a few hundred bytes.
pub const MAX_MANIFEST_BYTES: usize = 4096;

/// The request header carrying a fleet manifest.
const MANIFEST_HEADER: &str = "gatefold-manifest";

/// How long a client may take to send a pushed config.
const CONFIG_READ_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    // One pushed config at a time (see the module docs).
    let uploads = Arc::new(tokio::sync::Mutex::new(()));
    let mut backoff = super::conn::Backoff::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        backoff.failed("admin", &e).await;
                        continue;
                    }
                };
                backoff.reset();
                let uploads = uploads.clone();
                let shared = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let (shared, uploads) = (shared.clone(), uploads.clone());
                        async move { Ok::<_, Infallible>(handle(shared, &uploads, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            _ = stopped.changed() => return,
        }
    }
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = respond::with_body(status, Bytes::from(format!("{v:#}\n")));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn authorized(shared: &Shared, req: &Request<Incoming>) -> bool {
    let Some(token) = &shared.admin_token else {
        return true;
    };
    let Some(given) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
    else {
        return false;
    };
    auth_eq(given.trim().as_bytes(), token.as_bytes())
}

/// Whether a request to the tokenless admin API could come from a web page:
/// it names an `origin`, or a `host` other than a loopback one (a DNS name
/// rebound to 127.0.0.1).
fn from_a_browser(req: &Request<Incoming>) -> bool {
    if req.headers().contains_key(ORIGIN) {
        return true;
    }
    req.headers()
        .get_all(HOST)
        .iter()
        .any(|h| !h.to_str().is_ok_and(is_loopback_host))
}

/// `localhost`, `127.0.0.1`, `[::1]` and the like, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        // `[::1]:9901`, `127.0.0.1:9901`, `localhost:9901`; a bare `::1` has
        // more than one colon and no brackets.
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => {
            name
        }
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A pushed config: a compiled IR (JSON with `format` and `hash`) or a spec.
/// Errors come as messages plus the compiler's JSON diagnostics.
pub fn parse_config(text: &str) -> Result<ValidIr, (Vec<String>, Value)> {
    parse_config_as(text, claims_to_be_ir(text))
}

/// [`parse_config`] once [`claims_to_be_ir`] has been asked.
fn parse_config_as(text: &str, ir: bool) -> Result<ValidIr, (Vec<String>, Value)> {
    if ir {
        return ValidIr::from_json(text).map_err(|e| (vec![e], json!([])));
    }
    let compiled = gatefold_compiler::compile_str("config.yaml", text);
    match compiled.ir {
        Some(ir) => Ok(ir),
        None => Err((
            vec![format!(
                "{} error(s) in the pushed spec",
                compiled.diagnostics.error_count()
            )],
            compiled.diagnostics.to_json(&compiled.sources),
        )),
    }
}

/// Whether `text` is one JSON object with `format` and `hash` keys (an IR,
/// valid or not; a spec written as JSON has neither). Read without
/// building the document: parsing a large IR as a `Value` first, then
/// again as an IR, was a quarter of a fleet push's cost on the gateway.
/// gatefold writes `format` and `hash` first: a text that begins with them
/// makes the claim without being read through (a malformed rest is then
/// the IR parser's error to report).
fn claims_to_be_ir(text: &str) -> bool {
    let text = text.trim_start();
    if !text.starts_with('{') {
        return false;
    }
    if let Some(rest) = text.strip_prefix("{\"format\":") {
        if rest
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .starts_with(",\"hash\":")
        {
            return true;
        }
    }
    #[derive(serde::Deserialize)]
    struct Claims {
        #[allow(dead_code)]
        format: serde::de::IgnoredAny,
        #[allow(dead_code)]
        hash: serde::de::IgnoredAny,
    }
    serde_json::from_str::<Claims>(text).is_ok()
}

async fn handle(
    shared: Arc<Shared>,
    uploads: &tokio::sync::Mutex<()>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return json_response(StatusCode::OK, &json!({ "status": "ok" }));
    }
    if shared.admin_token.is_none() && from_a_browser(&req) {
        return json_response(
            StatusCode::FORBIDDEN,
            &json!({ "ok": false, "errors": [
                "the admin API without a token answers only local tools: no `origin` header, a loopback `host`"
            ] }),
        );
    }
    if !authorized(&shared, &req) {
        let mut r = respond::unauthorized();
        r.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
        return r;
    }
    let method = req.method().clone();
    match (method, path.as_str()) {
        (Method::GET, "/status") => {
            // The manifest too, read with the config it belongs to: a fleet
            // plan learns both in one round trip.
            let (rt, manifest) = shared.served();
            let mut status = json!({
                "version": env!("CARGO_PKG_VERSION"),
                "config_hash": rt.ir.hash,
                "loaded_at": rfc3339(rt.loaded_at),
                "uptime_seconds": shared.started.elapsed().as_secs(),
                "routes": rt.routes.len(),
                "rollback_depth": shared.history_len(),
            });
            // `null`: none recorded. One is recorded only once checked to be
            // a JSON object; were it not, the key is left out (ask
            // `GET /manifest`), never `null`.
            let manifest = match manifest {
                None => Some(Value::Null),
                Some(m) => serde_json::from_str(&m).ok(),
            };
            if let Some(m) = manifest {
                status["manifest"] = m;
            }
            json_response(StatusCode::OK, &status)
        }
        (Method::GET, "/config") => {
            let rt = shared.runtime.load();
            let mut r = respond::with_body(StatusCode::OK, rt.json());
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        (Method::PUT, "/config") => put_config(&shared, uploads, req, Push::Whole).await,
        (Method::PATCH, "/config") => put_config(&shared, uploads, req, Push::Changes).await,
        (Method::POST, "/rollback") => {
            let SwapHeaders { expect, manifest } = match swap_headers(&req) {
                Ok(h) => h,
                Err(r) => return r,
            };
            match shared.rollback_if(expect.as_deref(), manifest) {
                Ok(rt) => json_response(
                    StatusCode::OK,
                    &json!({ "ok": true, "config_hash": rt.ir.hash, "routes": rt.routes.len() }),
                ),
                Err(Refused::Conflict(running)) => conflict(&running),
                Err(Refused::Invalid(errors)) => json_response(
                    StatusCode::CONFLICT,
                    &json!({ "ok": false, "errors": errors }),
                ),
            }
        }
        (Method::GET, "/manifest") => match shared.manifest() {
            Some(m) => {
                let mut r = respond::with_body(StatusCode::OK, Bytes::from(format!("{m}\n")));
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r
            }
            None => json_response(
                StatusCode::NOT_FOUND,
                &json!({ "ok": false, "errors": ["no fleet apply has recorded a manifest here"] }),
            ),
        },
        (Method::GET, "/metrics") => {
            let health = shared.runtime.load().health();
            let mut r =
                respond::with_body(StatusCode::OK, Bytes::from(shared.metrics.render(&health)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        (_, "/status" | "/config" | "/rollback" | "/metrics" | "/manifest") => {
            respond::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => respond::error(StatusCode::NOT_FOUND, "no route"),
    }
}

/// 412: the gateway runs another config than the caller expected.
fn conflict(running: &ContentHash) -> Response<Body> {
    json_response(
        StatusCode::PRECONDITION_FAILED,
        &json!({ "ok": false, "config_hash": running, "errors": [format!(
            "the gateway runs config {running}, not the one expected (if-match); it was changed in between"
        )] }),
    )
}

/// The compare-and-swap headers: `if-match` (a config hash, quotes
/// allowed) and `gatefold-manifest` (a JSON object); 400 when either is
/// malformed.
#[allow(clippy::result_large_err)]
fn swap_headers<B>(req: &Request<B>) -> Result<SwapHeaders, Response<Body>> {
    let bad = |msg: &str| {
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "ok": false, "errors": [msg] }),
        )
    };
    let expect = match req.headers().get(http::header::IF_MATCH) {
        None => None,
        Some(v) => match v.to_str() {
            Ok(t) => Some(t.trim().trim_matches('"').to_string()),
            Err(_) => return Err(bad("`if-match` must be a config hash such as `sha256:...`")),
        },
    };
    let manifest = match req.headers().get(MANIFEST_HEADER) {
        None => None,
        Some(v) if v.len() > MAX_MANIFEST_BYTES => {
            return Err(bad("`gatefold-manifest` is larger than 4096 bytes"))
        }
        Some(v) => match v
            .to_str()
            .ok()
            .and_then(|t| matches!(serde_json::from_str(t), Ok(Value::Object(_))).then_some(t))
        {
            Some(t) => Some(Arc::from(t)),
            None => return Err(bad("`gatefold-manifest` must be a JSON object on one line")),
        },
    };
    Ok(SwapHeaders { expect, manifest })
}

/// The compare-and-swap headers of a config change.
struct SwapHeaders {
    /// `if-match`: the config hash the caller expects to be running.
    expect: Option<String>,
    /// `gatefold-manifest`: recorded with a successful change.
    manifest: Option<Arc<str>>,
}

fn too_large() -> Response<Body> {
    json_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &json!({ "ok": false, "errors": [format!(
            "the config is larger than {} MiB", MAX_CONFIG_BYTES >> 20
        )] }),
    )
}

/// What a config push carries.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Push {
    /// `PUT /config`: a spec or a compiled IR.
    Whole,
    /// `PATCH /config`: an IR as its changes from the running one
    /// ([`IrDelta`]).
    Changes,
}

/// Why `PUT /config` changed nothing.
enum PutFailed {
    /// The gateway runs another config than `if-match` named.
    Conflict(ContentHash),
    /// The config is bad: messages and the compiler's JSON diagnostics.
    Invalid(Vec<String>, Value),
    /// `PATCH /config`: the changes make no config here (not changes,
    /// for another config, or not making the IR they name): 422, and the
    /// whole config may still be sent.
    Unusable(String),
}

/// Why loading a pushed config failed.
enum LoadFailed {
    /// As [`PutFailed::Invalid`].
    Invalid(Vec<String>, Value),
    /// As [`PutFailed::Unusable`].
    Unusable(String),
}

async fn put_config(
    shared: &Arc<Shared>,
    uploads: &tokio::sync::Mutex<()>,
    req: Request<Incoming>,
    push: Push,
) -> Response<Body> {
    // Refused before a byte of it is read when the length says so.
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_CONFIG_BYTES as u64) {
        return too_large();
    }
    let SwapHeaders { expect, manifest } = match swap_headers(&req) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let _one_at_a_time = uploads.lock().await;
    let read = Limited::new(req.into_body(), MAX_CONFIG_BYTES).collect();
    let body = match tokio::time::timeout(CONFIG_READ_TIMEOUT, read).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => return too_large(),
        Ok(Err(e)) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({ "ok": false, "errors": [format!("reading the config failed: {e}")] }),
            )
        }
        Err(_) => {
            return json_response(
                StatusCode::REQUEST_TIMEOUT,
                &json!({ "ok": false, "errors": ["the config was not sent in time"] }),
            )
        }
    };
    let Ok(text) = String::from_utf8(body.into()) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "ok": false, "errors": ["the config is not UTF-8 text"] }),
        );
    };
    // Compiling and building take a while for large configs (and building
    // spawns health checks): off the async workers, under the apply lock.
    let worker = shared.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        // Changes carry the config they apply to: their compare-and-swap
        // when `if-match` does not name it.
        let (changes, expect) = match push {
            Push::Whole => (None, expect),
            Push::Changes => {
                let changes: IrDelta = serde_json::from_str(&text).map_err(|e| {
                    PutFailed::Unusable(format!("not the changes of a gatefold IR: {e}"))
                })?;
                if let Some(e) = expect.as_deref().filter(|e| *e != changes.base.as_str()) {
                    return Err(PutFailed::Unusable(format!(
                        "`if-match` names config {e}, but the changes apply to {}",
                        changes.base
                    )));
                }
                let expect = changes.base.to_string();
                (Some(changes), Some(expect))
            }
        };
        let pushed_ir = changes.is_none() && claims_to_be_ir(&text);
        // The routes' JSON as the hash read it, kept with the runtime for
        // the changes that may come next.
        let mut meanings = None;
        // What ran before, read under the apply lock: a push of the config
        // already running leaves that runtime (and its source map) as it is.
        let mut before = None;
        // The manifest this change replaces, read with the running config:
        // what a fleet apply puts back if its verify fails.
        let mut replaced = None;
        let load = || {
            // Under the lock, after the compare-and-swap: the running
            // config is the one the changes are for.
            let (running, manifest) = worker.served();
            let running = before.insert(running);
            replaced = manifest;
            let loaded = match changes {
                Some(c) => c
                    .apply_keeping(&running.ir, running.meanings())
                    .map_err(LoadFailed::Unusable),
                None if pushed_ir => ValidIr::from_json_keeping(&text)
                    .map_err(|e| LoadFailed::Invalid(vec![e], json!([]))),
                None => {
                    return parse_config_as(&text, false)
                        .map_err(|(e, d)| LoadFailed::Invalid(e, d))
                }
            };
            let (ir, kept) = loaded?;
            meanings = Some(kept);
            Ok(ir)
        };
        match worker.load_and_apply_if(expect.as_deref(), manifest, load) {
            Ok(Ok(rt)) => {
                // A pushed IR is answered back as it came: `GET /config`
                // need not serialize it again. Not onto the runtime that
                // was already running: the text may hold another source map.
                let swapped = !before.is_some_and(|b| Arc::ptr_eq(&b, &rt));
                if pushed_ir && swapped {
                    rt.keep_json(Bytes::from(text));
                }
                if let Some(m) = meanings {
                    rt.keep_meanings(m);
                }
                Ok((rt, replaced))
            }
            Ok(Err(Refused::Conflict(running))) => Err(PutFailed::Conflict(running)),
            Ok(Err(Refused::Invalid(errors))) => Err(PutFailed::Invalid(errors, json!([]))),
            Err(LoadFailed::Invalid(errors, diagnostics)) => {
                worker
                    .metrics
                    .reloads_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(PutFailed::Invalid(errors, diagnostics))
            }
            // Nothing was loaded: not a failed reload.
            Err(LoadFailed::Unusable(why)) => Err(PutFailed::Unusable(why)),
        }
    })
    .await;
    match outcome {
        Ok(Ok((rt, replaced))) => {
            let mut answer =
                json!({ "ok": true, "config_hash": rt.ir.hash, "routes": rt.routes.len() });
            // `null`: no apply had recorded a manifest. Left out when the
            // recorded one does not parse (it always should).
            let replaced = match replaced {
                None => Some(Value::Null),
                Some(m) => serde_json::from_str::<Value>(&m).ok(),
            };
            if let Some(m) = replaced {
                answer["replaced_manifest"] = m;
            }
            json_response(StatusCode::OK, &answer)
        }
        Ok(Err(PutFailed::Conflict(running))) => conflict(&running),
        Ok(Err(PutFailed::Unusable(why))) => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({ "ok": false, "errors": [why] }),
        ),
        Ok(Err(PutFailed::Invalid(errors, diagnostics))) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "ok": false, "errors": errors, "diagnostics": diagnostics }),
        ),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({ "ok": false, "errors": [e.to_string()] }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "gatefold: 1\napis:\n  a:\n    routes:\n      r: { path: /, policies: [ { mock: { status: 204 } } ] }\n";

    #[test]
    fn a_pushed_ir_is_read_as_one_and_a_spec_in_json_is_compiled() {
        let ir = gatefold_compiler::compile_str("s.yaml", SPEC)
            .ir
            .expect("compiles");
        let text = ir.to_json();
        assert!(claims_to_be_ir(&text));
        assert_eq!(parse_config(&text).expect("loads").hash, ir.hash);
        // The same spec as JSON (YAML's subset) has no `format` or `hash`:
        // it is compiled, not refused as a bad IR.
        let as_json = r#"{"gatefold": 1, "apis": {"a": {"routes": {"r": {"path": "/", "policies": [{"mock": {"status": 204}}]}}}}}"#;
        assert!(!claims_to_be_ir(as_json));
        assert_eq!(parse_config(as_json).expect("compiles").hash, ir.hash);
        // Cut short, it still claims to be an IR (its first keys say so) and
        // is refused as one, not compiled as a spec.
        let cut = &text[..text.len() / 2];
        assert!(claims_to_be_ir(cut));
        let (errors, _) = parse_config(cut).expect_err("refused");
        assert!(!errors.is_empty());
        // An IR whose content was edited is refused for its hash.
        let edited = text.replace("204", "205");
        let (errors, _) = parse_config(&edited).expect_err("refused");
        assert!(errors[0].contains("does not match its hash"), "{errors:?}");
    }
}
