//! `cors` (phase 2): answer preflights 204 (never proxied) and mark responses
//! to allowed origins. Requests from other origins get no CORS headers; the
//! browser enforces CORS, not the gateway.
//!
//! With `credentials`, browsers read every `*` literally, so the answer
//! then echoes what was asked instead: the request's origin (with
//! `vary: origin`), the asked method for `methods: ["*"]`, the asked
//! headers for `headers: ["*"]`.

use crate::gateway::context::Ctx;
use crate::gateway::phases::{Flow, PhaseHooks};
use crate::gateway::respond;
use gatefold_compiler::ir::policy::{Cors, CorsOrigin};
use gatefold_compiler::ir::Method;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{request, HeaderValue, StatusCode};

pub struct CorsPolicy {
    any_origin: bool,
    /// Exact origins and wildcard patterns.
    origins: Vec<CorsOrigin>,
    /// `None`: `methods: ["*"]`.
    methods: Option<HeaderValue>,
    /// `None`: echo the preflight's `access-control-request-headers`.
    headers: Option<HeaderValue>,
    any_header: bool,
    expose: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
}

const DEFAULT_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

fn joined<T: AsRef<str>>(items: &[T]) -> Option<HeaderValue> {
    if items.is_empty() {
        return None;
    }
    let s = items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    HeaderValue::from_str(&s).ok()
}

impl CorsPolicy {
    pub fn new(cfg: &Cors) -> CorsPolicy {
        let methods: Vec<&str> = cfg.methods.iter().map(|m: &Method| m.as_str()).collect();
        CorsPolicy {
            any_origin: cfg.origins.contains(&CorsOrigin::Any),
            origins: cfg
                .origins
                .iter()
                .filter(|o| **o != CorsOrigin::Any)
                .cloned()
                .collect(),
            methods: (!cfg.any_method)
                .then(|| joined(&methods).unwrap_or(HeaderValue::from_static(DEFAULT_METHODS))),
            headers: joined(&cfg.headers.iter().map(|h| h.as_str()).collect::<Vec<_>>()),
            any_header: cfg.any_header,
            expose: joined(&cfg.expose.iter().map(|h| h.as_str()).collect::<Vec<_>>()),
            credentials: cfg.credentials,
            max_age: cfg.max_age.map(|d| HeaderValue::from(d.millis / 1000)),
        }
    }

    fn allowed<'a>(&self, req: &'a request::Parts) -> Option<&'a HeaderValue> {
        let origin = req.headers.get(ORIGIN)?;
        let text = origin.to_str().ok()?;
        (self.any_origin || self.origins.iter().any(|o| o.allows(text))).then_some(origin)
    }

    /// Whether the answer is `*` for every origin, the same for all (so no
    /// `vary: origin`).
    fn star(&self) -> bool {
        self.any_origin && !self.credentials
    }

    fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        if self.star() {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    /// `access-control-allow-methods` for a preflight.
    fn allow_methods(&self, req: &request::Parts) -> Option<HeaderValue> {
        match &self.methods {
            Some(list) => Some(list.clone()),
            None if self.credentials => req.headers.get(ACCESS_CONTROL_REQUEST_METHOD).cloned(),
            None => Some(HeaderValue::from_static("*")),
        }
    }

    /// `access-control-allow-headers` for a preflight.
    fn allow_headers(&self, req: &request::Parts) -> Option<HeaderValue> {
        let echoed = req.headers.get(ACCESS_CONTROL_REQUEST_HEADERS);
        if self.any_header && !self.credentials {
            return Some(HeaderValue::from_static("*"));
        }
        self.headers.as_ref().or(echoed).cloned()
    }
}

impl PhaseHooks for CorsPolicy {
    fn request_filter(&self, req: &request::Parts, ctx: &mut Ctx) -> Flow {
        let origin = self.allowed(req);
        if ctx.preflight {
            let mut resp = respond::empty(StatusCode::NO_CONTENT);
            if let Some(origin) = origin {
                let h = resp.headers_mut();
                h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin(origin));
                if !self.star() {
                    h.append(VARY, HeaderValue::from_static("origin"));
                }
                if let Some(allow) = self.allow_methods(req) {
                    h.insert(ACCESS_CONTROL_ALLOW_METHODS, allow);
                }
                if let Some(allow) = self.allow_headers(req) {
                    h.insert(ACCESS_CONTROL_ALLOW_HEADERS, allow);
                }
                if let Some(expose) = &self.expose {
                    h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
                }
                if self.credentials {
                    h.insert(
                        ACCESS_CONTROL_ALLOW_CREDENTIALS,
                        HeaderValue::from_static("true"),
                    );
                }
                if let Some(age) = &self.max_age {
                    h.insert(ACCESS_CONTROL_MAX_AGE, age.clone());
                }
            }
            return Flow::Stop(resp);
        }
        if let Some(origin) = origin {
            let p = &mut ctx.promised;
            p.insert(ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin(origin));
            if !self.star() {
                p.append(VARY, HeaderValue::from_static("origin"));
            }
            if self.credentials {
                p.insert(
                    ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            if let Some(expose) = &self.expose {
                p.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
            }
        }
        Flow::Continue
    }
}
