//! The admin API, on its own listener:
//!
//! | request | answer |
//! |---|---|
//! | `GET /healthz` | 200 `{"status":"ok"}` (no token needed) |
//! | `GET /status` | version, config hash, loaded-at, uptime, routes, rollback depth |
//! | `GET /config` | the running IR (`gatefold.ir.json`) |
//! | `PUT /config` | a spec (YAML) or a compiled IR (JSON): validated, loaded, swapped in atomically; 400 with diagnostics when it is bad (the old config keeps serving) |
//! | `POST /rollback` | back to the config before the running one; 409 when there is none |
//! | `GET /metrics` | Prometheus text |
//!
//! With a token set, every endpoint but `/healthz` needs
//! `authorization: Bearer <token>`.

use super::clock::rfc3339;
use super::policies::auth::constant_time_eq as auth_eq;
use super::respond;
use super::{Body, Shared};
use bytes::Bytes;
use gatefold_compiler::ir::ValidIr;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Largest config accepted by `PUT /config`.
const MAX_CONFIG_BYTES: usize = 64 << 20;

pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(shared, req).await) }
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
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    auth_eq(given.trim().as_bytes(), token.as_bytes())
}

/// A pushed config: a compiled IR (JSON with `format` and `hash`) or a spec.
/// Errors come as messages plus the compiler's JSON diagnostics.
pub fn parse_config(text: &str) -> Result<ValidIr, (Vec<String>, Value)> {
    if text.trim_start().starts_with('{') {
        if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text) {
            if o.contains_key("format") && o.contains_key("hash") {
                return ValidIr::from_json(text).map_err(|e| (vec![e], json!([])));
            }
        }
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

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return json_response(StatusCode::OK, &json!({ "status": "ok" }));
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
            let rt = shared.runtime.load();
            json_response(
                StatusCode::OK,
                &json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "config_hash": rt.ir.hash,
                    "loaded_at": rfc3339(rt.loaded_at),
                    "uptime_seconds": shared.started.elapsed().as_secs(),
                    "routes": rt.routes.len(),
                    "rollback_depth": shared.history_len(),
                }),
            )
        }
        (Method::GET, "/config") => {
            let rt = shared.runtime.load();
            let mut r = respond::with_body(StatusCode::OK, Bytes::from(rt.ir.to_json()));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        (Method::PUT, "/config") => {
            let body = match Limited::new(req.into_body(), MAX_CONFIG_BYTES)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    return json_response(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &json!({ "ok": false, "errors": ["the config is larger than 64MiB"] }),
                    )
                }
            };
            let Ok(text) = std::str::from_utf8(&body) else {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({ "ok": false, "errors": ["the config is not UTF-8 text"] }),
                );
            };
            // Compiling and building take a while for large configs (and
            // building spawns health checks): off the async workers.
            let text = text.to_string();
            let worker = shared.clone();
            let outcome = tokio::task::spawn_blocking(move || match parse_config(&text) {
                Ok(ir) => worker.apply(ir).map_err(|errors| (errors, json!([]))),
                Err((errors, diagnostics)) => {
                    worker
                        .metrics
                        .reloads_failed
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Err((errors, diagnostics))
                }
            })
            .await;
            match outcome {
                Ok(Ok(rt)) => json_response(
                    StatusCode::OK,
                    &json!({ "ok": true, "config_hash": rt.ir.hash, "routes": rt.routes.len() }),
                ),
                Ok(Err((errors, diagnostics))) => json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({ "ok": false, "errors": errors, "diagnostics": diagnostics }),
                ),
                Err(e) => json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({ "ok": false, "errors": [e.to_string()] }),
                ),
            }
        }
        (Method::POST, "/rollback") => match shared.rollback() {
            Ok(rt) => json_response(
                StatusCode::OK,
                &json!({ "ok": true, "config_hash": rt.ir.hash, "routes": rt.routes.len() }),
            ),
            Err(errors) => json_response(
                StatusCode::CONFLICT,
                &json!({ "ok": false, "errors": errors }),
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
        (_, "/status" | "/config" | "/rollback" | "/metrics") => {
            respond::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => respond::error(StatusCode::NOT_FOUND, "no route"),
    }
}
