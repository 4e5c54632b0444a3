//! Phase 12: send the request upstream, shaped by `timeout`, `retry` and
//! `traffic-split` (already folded into the route's [`ProxyPlan`]).
//!
//! Timeouts: `connect` bounds opening a connection, `read` bounds waiting
//! for the response head and then each gap between two body reads. Retries:
//! `connect-failure` retries any method (the request never reached the
//! upstream; a connect timeout counts as one), `timeout` and status codes
//! only idempotent methods; each retry prefers a target not tried yet. After
//! the last try: a connect timeout or read timeout is 504, any other failure
//! 502, a retried status is passed on as the upstream sent it. A request
//! body is read whole before the first try only when retries are possible.

use super::context::Ctx;
use super::phases::UpstreamRequest;
use super::policies::request_size_limit::RequestBody;
use super::runtime::{Dest, ProxyPlan};
use super::upstream::client;
use super::upstream::pool::InflightGuard;
use super::{respond, Body, BoxError};
use gatefold_compiler::ir::policy::RetryOn;
use http::header::{CONNECTION, HOST, PROXY_AUTHENTICATE, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{sleep, timeout, Sleep};

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Headers that describe one connection, never forwarded.
fn is_hop_by_hop(n: &HeaderName) -> bool {
    n == CONNECTION
        || n == TE
        || n == TRAILER
        || n == TRANSFER_ENCODING
        || n == UPGRADE
        || n == PROXY_AUTHENTICATE
        || n == KEEP_ALIVE
        || n == PROXY_CONNECTION
}

/// Removes hop-by-hop headers, including those `connection` names.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Most messages have none: one pass over the names, no lookups.
    if !h.keys().any(is_hop_by_hop) {
        return;
    }
    if let Some(named) = h.get(CONNECTION) {
        let named: Vec<HeaderName> = named
            .to_str()
            .unwrap_or("")
            .split(',')
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for n in named {
            h.remove(n);
        }
    }
    for n in [
        &CONNECTION,
        &TE,
        &TRAILER,
        &TRANSFER_ENCODING,
        &UPGRADE,
        &PROXY_AUTHENTICATE,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
    ] {
        h.remove(n);
    }
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

fn status_retry(s: StatusCode) -> Option<RetryOn> {
    match s.as_u16() {
        500 => Some(RetryOn::Status500),
        502 => Some(RetryOn::Status502),
        503 => Some(RetryOn::Status503),
        504 => Some(RetryOn::Status504),
        _ => None,
    }
}

enum Failure {
    Connect { timed_out: bool },
    ReadTimeout,
    Other,
}

fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Sends the request and returns the upstream's response, or the gateway's
/// 502/503/504.
pub async fn forward(
    plan: &ProxyPlan,
    method: &Method,
    up: UpstreamRequest,
    mut body: RequestBody,
    ctx: &mut Ctx,
) -> Response<Body> {
    let dest: &Dest = match &plan.split {
        Some(s) => &plan.dests[s.choose(&up.headers)],
        None => &plan.dests[0],
    };
    ctx.upstream = Some(dest.pool.name.clone());
    let (mut attempts_left, on) = match &dest.retry {
        Some(r) => (r.attempts, r.on.clone()),
        None => (0, Default::default()),
    };
    if attempts_left > 0 {
        body = match body.buffer().await {
            Ok(b) => b,
            Err(r) => return r,
        };
    }
    let path_and_query = match &up.query {
        Some(q) => format!("{}?{q}", up.path),
        None => up.path.clone(),
    };
    let host_set = up.headers.contains_key(HOST);
    let mut headers = Some(up.headers);
    let mut tried: Vec<usize> = Vec::new();
    let mut last_failure = Failure::Other;
    loop {
        let Some(i) = dest
            .pool
            .pick(headers.as_ref().unwrap_or(&HeaderMap::new()), &tried)
        else {
            return if tried.is_empty() {
                respond::no_healthy_upstream()
            } else {
                failure_response(&last_failure)
            };
        };
        let target = &dest.pool.targets[i];
        ctx.target = Some(target.label.clone());
        let last_try = attempts_left == 0;
        let mut h = if last_try {
            headers.take().unwrap_or_default()
        } else {
            headers.clone().unwrap_or_default()
        };
        if !host_set {
            h.insert(HOST, target.authority.clone());
        }
        let b: Body = match &mut body {
            RequestBody::Empty => respond::empty_body(),
            RequestBody::Bytes(bytes) => respond::full(bytes.clone()),
            RequestBody::Stream(_) => match std::mem::replace(&mut body, RequestBody::Empty) {
                RequestBody::Stream(s) => s.map_err(|e| -> BoxError { Box::new(e) }).boxed_unsync(),
                _ => respond::empty_body(),
            },
        };
        let mut req = Request::new(b);
        *req.method_mut() = method.clone();
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = h;
        match format!("{}{}", target.label, path_and_query).parse() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return respond::bad_request(),
        }
        let guard = dest.pool.begin(i);
        let result = timeout(dest.read, client::request(dest.connect, &dest.tls, req)).await;
        match result {
            Ok(Ok(resp)) => {
                dest.pool.record_live(i, true);
                let retry = status_retry(resp.status())
                    .is_some_and(|r| on.contains(&r) && idempotent(method));
                if retry && !last_try {
                    attempts_left -= 1;
                    tried.push(i);
                    continue;
                }
                return wrap(resp, guard, dest.read);
            }
            Ok(Err(e)) => {
                dest.pool.record_live(i, false);
                last_failure = if e.is_connect() {
                    Failure::Connect {
                        timed_out: is_timeout(&e),
                    }
                } else {
                    Failure::Other
                };
                let retry = matches!(last_failure, Failure::Connect { .. })
                    && on.contains(&RetryOn::ConnectFailure)
                    && body.replayable();
                if !retry || last_try {
                    return failure_response(&last_failure);
                }
            }
            Err(_) => {
                dest.pool.record_live(i, false);
                last_failure = Failure::ReadTimeout;
                let retry =
                    on.contains(&RetryOn::Timeout) && idempotent(method) && body.replayable();
                if !retry || last_try {
                    return failure_response(&last_failure);
                }
            }
        }
        attempts_left -= 1;
        tried.push(i);
    }
}

fn failure_response(f: &Failure) -> Response<Body> {
    match f {
        Failure::Connect { timed_out: true } | Failure::ReadTimeout => respond::upstream_timeout(),
        Failure::Connect { timed_out: false } | Failure::Other => respond::bad_gateway(),
    }
}

fn wrap(resp: Response<Incoming>, guard: InflightGuard, read: Duration) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // The client's connection has its own version; an HTTP/1.0 upstream
    // must not turn it into HTTP/1.0.
    parts.version = Version::default();
    let body = UpstreamBody {
        inner: body,
        read,
        idle: None,
        _guard: guard,
    };
    Response::from_parts(parts, body.boxed_unsync())
}

/// An upstream response body with the read timeout between two reads; it
/// keeps the target's in-flight count until the body is done.
struct UpstreamBody {
    inner: Incoming,
    read: Duration,
    idle: Option<Pin<Box<Sleep>>>,
    _guard: InflightGuard,
}

impl HttpBody for UpstreamBody {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(f) => {
                this.idle = None;
                Poll::Ready(f.map(|r| r.map_err(|e| -> BoxError { Box::new(e) })))
            }
            Poll::Pending => {
                let read = this.read;
                let idle = this.idle.get_or_insert_with(|| Box::pin(sleep(read)));
                match idle.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err("upstream read timeout".into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
