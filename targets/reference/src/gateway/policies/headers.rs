//! `request-headers` (phase 10: what the upstream receives) and
//! `response-headers` (phase 13: what the client receives). Each applies
//! `remove`, then `set` (replace every value), then `add` (one more line).

use crate::gateway::context::Ctx;
use crate::gateway::ir_http;
use crate::gateway::phases::{PhaseHooks, UpstreamRequest};
use gatefold_compiler::ir;
use gatefold_compiler::ir::policy::HeaderTransform;
use gatefold_compiler::ir::PolicyId;
use http::{response, HeaderMap, HeaderName, HeaderValue};
use std::collections::HashMap;
use std::sync::Arc;

pub struct Transform {
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
}

fn pairs(map: &ir::HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    map.iter()
        .map(|(k, v)| (ir_http::name(k), ir_http::value(v)))
        .collect()
}

/// One [`Transform`] per policy instance, for every route whose chain has
/// it: a gateway-level header policy is in every route's chain.
#[derive(Default)]
pub struct Shared(HashMap<PolicyId, Arc<Transform>>);

impl Shared {
    /// The transform of instance `id`, built the first time it comes.
    pub fn shared(&mut self, id: &PolicyId, cfg: &HeaderTransform) -> Arc<Transform> {
        if let Some(t) = self.0.get(id) {
            return t.clone();
        }
        let t = Arc::new(Transform::new(cfg));
        self.0.insert(id.clone(), t.clone());
        t
    }
}

impl Transform {
    pub fn new(cfg: &HeaderTransform) -> Transform {
        Transform {
            remove: cfg.remove.iter().map(ir_http::name).collect(),
            set: pairs(&cfg.set),
            add: pairs(&cfg.add),
        }
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
pub struct RequestHeaders(pub Arc<Transform>);

impl PhaseHooks for RequestHeaders {
    fn upstream_request(&self, up: &mut UpstreamRequest, _ctx: &Ctx) {
        self.0.apply(&mut up.headers);
    }
}

/// `response-headers`.
pub struct ResponseHeaders(pub Arc<Transform>);

impl PhaseHooks for ResponseHeaders {
    fn response_filter(&self, resp: &mut response::Parts, _ctx: &Ctx) {
        self.0.apply(&mut resp.headers);
    }
}
