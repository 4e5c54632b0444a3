//! `mock` (phase 9): the gateway answers without contacting any upstream.

use crate::gateway::context::Ctx;
use crate::gateway::ir_http;
use crate::gateway::phases::{Flow, PhaseHooks};
use crate::gateway::respond;
use bytes::Bytes;
use gatefold_compiler::ir::policy::{Mock, MockBody};
use http::header::CONTENT_TYPE;
use http::{request, HeaderMap, HeaderValue, StatusCode};

pub struct MockPolicy {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl MockPolicy {
    pub fn new(cfg: &Mock) -> Result<MockPolicy, String> {
        let status = StatusCode::from_u16(cfg.status).map_err(|e| e.to_string())?;
        let mut headers = HeaderMap::new();
        let (body, default_type) = match &cfg.body {
            MockBody::Empty => (Bytes::new(), None),
            MockBody::Text(t) => (Bytes::from(t.clone()), Some("text/plain; charset=utf-8")),
            MockBody::Json(v) => (Bytes::from(v.to_string()), Some("application/json")),
        };
        if let Some(t) = default_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(t));
        }
        for (k, v) in &cfg.headers {
            headers.insert(ir_http::name(k), ir_http::value(v));
        }
        Ok(MockPolicy {
            status,
            headers,
            body,
        })
    }
}

impl PhaseHooks for MockPolicy {
    fn request_filter(&self, _req: &request::Parts, _ctx: &mut Ctx) -> Flow {
        let mut resp = respond::with_body(self.status, self.body.clone());
        *resp.headers_mut() = self.headers.clone();
        Flow::Answer(resp)
    }
}
