//! `request-headers` (phase 10: what the upstream receives) and
//! `response-headers` (phase 13: what the client receives). Each applies
//! `remove`, then `set` (replace every value), then `add` (one more line).

use crate::gateway::context::Ctx;
use crate::gateway::phases::{PhaseHooks, UpstreamRequest};
use gatefold_compiler::ir::policy::HeaderTransform;
use http::{response, HeaderMap, HeaderName, HeaderValue};

pub struct Transform {
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
}

fn pairs(
    map: &std::collections::BTreeMap<gatefold_compiler::ir::HeaderName, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    map.iter()
        .map(|(k, v)| {
            Ok((
                HeaderName::from_bytes(k.as_str().as_bytes()).map_err(|e| e.to_string())?,
                HeaderValue::from_str(v).map_err(|e| e.to_string())?,
            ))
        })
        .collect()
}

impl Transform {
    pub fn new(cfg: &HeaderTransform) -> Result<Transform, String> {
        Ok(Transform {
            remove: cfg
                .remove
                .iter()
                .map(|h| HeaderName::from_bytes(h.as_str().as_bytes()).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?,
            set: pairs(&cfg.set)?,
            add: pairs(&cfg.add)?,
        })
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        for h in &self.remove {
            headers.remove(h);
        }
        for (k, v) in &self.set {
            headers.insert(k.clone(), v.clone());
        }
        for (k, v) in &self.add {
            headers.append(k.clone(), v.clone());
        }
    }
}

/// `request-headers`.
pub struct RequestHeaders(pub Transform);

impl PhaseHooks for RequestHeaders {
    fn upstream_request(&self, up: &mut UpstreamRequest, _ctx: &Ctx) {
        self.0.apply(&mut up.headers);
    }
}

/// `response-headers`.
pub struct ResponseHeaders(pub Transform);

impl PhaseHooks for ResponseHeaders {
    fn response_filter(&self, resp: &mut response::Parts, _ctx: &Ctx) {
        self.0.apply(&mut resp.headers);
    }
}
