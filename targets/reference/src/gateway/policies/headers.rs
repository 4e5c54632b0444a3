//! `request-headers` (phase 10: what the upstream receives) and
//! `response-headers` (phase 13: what the client receives). Each applies
//! `remove`, then `set` (replace every value), then `add` (one more line).

use crate::gateway::context::Ctx;
use crate::gateway::ir_http;
use crate::gateway::phases::{PhaseHooks, UpstreamRequest};
use gatefold_compiler::ir;
use gatefold_compiler::ir::policy::HeaderTransform;
use http::{response, HeaderMap, HeaderName, HeaderValue};
use rustc_hash::FxHashMap;
use std::marker::PhantomData;
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
/// it: a gateway-level header policy is in every route's chain. Keyed by
/// where the instance's options sit in the IR being built (`'ir`), one per
/// instance: a pointer hashes in a step, a policy id's strings do not.
#[derive(Default)]
pub struct Shared<'ir>(
    FxHashMap<*const HeaderTransform, Arc<Transform>>,
    PhantomData<&'ir HeaderTransform>,
);

impl<'ir> Shared<'ir> {
    /// The transform of the instance whose options are `cfg`, built the
    /// first time it comes.
    pub fn shared(&mut self, cfg: &'ir HeaderTransform) -> Arc<Transform> {
        self.0
            .entry(cfg as *const HeaderTransform)
            .or_insert_with(|| Arc::new(Transform::new(cfg)))
            .clone()
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
