//! The request phases as trait hooks, in the spirit of Pingora's `ProxyHttp`.
//!
//! ```text
//!  request ─> route lookup ─> request_filter (phases 1-2: ip-filter, cors)
//!          ─> body limit (phase 3) ─> request_filter (phases 4-9: auth, acl,
//!             rate-limit, deprecation, mock/redirect)
//!          ─> upstream_request (phase 10: strip-base-path, rewrite, request-headers)
//!          ─> cache lookup (11) ─> proxy (12) ─> cache store (11)
//!          ─> response_filter (phase 13: response-headers) ─> client
//! ```
//!
//! Each policy kind is one module under `policies/` implementing only the
//! hooks it needs; a route runs only the policies in its chain, so a plain
//! proxied route runs none. A [`Flow::Stop`] (a refusal, a preflight answer)
//! skips phases 9-13; a [`Flow::Answer`] (mock, redirect) skips the proxy but
//! goes through phase 13. Headers in [`Ctx::promised`] (and `rate-limit`'s,
//! in [`Ctx::rate_headers`]) are added to every response made after the
//! phase that promised them.

use super::context::Ctx;
use super::Body;
use http::{request, response, HeaderMap, Response};

/// What a request filter decided.
pub enum Flow {
    /// Go on with the next phase.
    Continue,
    /// Answer now, before phase 9: phases 9-13 are skipped.
    Stop(Response<Body>),
    /// Answer now from phase 9 (mock, redirect): phase 13 still runs.
    Answer(Response<Body>),
}

/// What goes upstream, as phase 10 shapes it.
pub struct UpstreamRequest {
    /// Starts as the normalized request path.
    pub path: String,
    /// Without `?`; kept unchanged unless a credential is removed from it.
    pub query: Option<String>,
    pub headers: HeaderMap,
}

/// The hooks a policy kind implements (named apart from the IR's
/// [`gatefold_compiler::ir::Policy`], the options they carry out). Every
/// hook has a no-op default.
pub trait PhaseHooks: Send + Sync {
    /// Phases 1-9: may refuse or answer the request.
    fn request_filter(&self, _req: &request::Parts, _ctx: &mut Ctx) -> Flow {
        Flow::Continue
    }

    /// Phases 1-9, right after `request_filter` let the request go on:
    /// change the request as every later phase sees it. Authentication uses
    /// it so that a header it writes (jwt `claims-to-headers`) replaces the
    /// client's copy before rate-limit keys, cache keys and balancing read
    /// it, and a query credential is gone from everything sent on.
    fn settle_request(&self, _req: &mut request::Parts, _ctx: &mut Ctx) {}

    /// Phase 10: change what the upstream receives.
    fn upstream_request(&self, _up: &mut UpstreamRequest, _ctx: &Ctx) {}

    /// Phase 13: change what the client receives (responses from phase 9 on).
    fn response_filter(&self, _resp: &mut response::Parts, _ctx: &Ctx) {}
}
