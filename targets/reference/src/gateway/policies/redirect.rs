//! `redirect` (phase 9): an empty answer with `location`; `{param}` takes the
//! route's parameter and the request's query string is appended. A
//! parameter that would turn the `location` into another host's (`//...`,
//! `/\...`) is refused with 400 (an open redirect).

use crate::gateway::context::Ctx;
use crate::gateway::phases::{Flow, Policy};
use crate::gateway::respond;
use gatefold_compiler::ir::policy::Redirect;
use gatefold_compiler::ir::PathPattern;
use http::header::LOCATION;
use http::{request, HeaderValue, StatusCode};

pub struct RedirectPolicy {
    to: String,
    status: StatusCode,
    /// The route's own path, to bind `{params}`.
    route_path: PathPattern,
}

impl RedirectPolicy {
    pub fn new(cfg: &Redirect, route_path: &PathPattern) -> Result<RedirectPolicy, String> {
        Ok(RedirectPolicy {
            to: cfg.to.clone(),
            status: StatusCode::from_u16(cfg.status.code()).map_err(|e| e.to_string())?,
            route_path: route_path.clone(),
        })
    }
}

/// Replaces `{name}` in `template` with the bound params.
pub fn fill(template: &str, params: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match params.iter().find(|(n, _)| *n == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether a `location` starts like a network-path reference (`//host`),
/// counting `\` as `/` the way browsers do.
fn network_path(location: &str) -> bool {
    let b = location.as_bytes();
    b.len() >= 2 && matches!(b[0], b'/' | b'\\') && matches!(b[1], b'/' | b'\\')
}

impl Policy for RedirectPolicy {
    fn request_filter(&self, _req: &request::Parts, ctx: &mut Ctx) -> Flow {
        let params: Vec<_> = self
            .route_path
            .matches(&ctx.path)
            .into_iter()
            .flatten()
            .collect();
        let mut location = fill(&self.to, &params);
        if network_path(&location) {
            // A parameter made a local redirect point at another host
            // (`/{id}` with `\evil.example`: browsers read `/\` as `//`).
            return Flow::Stop(respond::bad_request());
        }
        if let Some(q) = &ctx.query {
            location.push(if location.contains('?') { '&' } else { '?' });
            location.push_str(q);
        }
        let mut resp = respond::empty(self.status);
        match HeaderValue::from_str(&location) {
            Ok(v) => {
                resp.headers_mut().insert(LOCATION, v);
                Flow::Answer(resp)
            }
            Err(_) => Flow::Stop(respond::bad_request()),
        }
    }
}
