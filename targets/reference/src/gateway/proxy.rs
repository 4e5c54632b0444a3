//! Phase 12: send the request upstream, shaped by `timeout`, `retry` and
//! `traffic-split` (already folded into the route's [`ProxyPlan`]), and a
//! copy to the `mirror` upstream if the route has one
//! ([`super::policies::mirror`]).
//!
//! Timeouts: `connect` bounds opening a connection, `read` bounds waiting
//! for the response head and then each gap between two body reads. While a
//! request body streams up, `read` runs only while the upstream is the slow
//! side (taking what the client sent, or answering once it has all of it);
//! a client that is slow to send meets the client-body timeout instead (408,
//! not held against the target, see [`ClientBody`]). Retries:
//! `connect-failure` retries any method (the request never reached the
//! upstream; a connect timeout counts as one), `reset` (the upstream closed
//! or reset the connection before answering), `timeout` and status codes
//! only idempotent methods; each retry prefers a target not tried yet. After
//! the last try: a connect timeout or read timeout is 504, any other failure
//! 502, a retried status is passed on as the upstream sent it. A request
//! body is read whole before the first try only when retries are possible
//! (to replay it); otherwise it streams.

use super::client_body::{ClientBody, ClientBodyError, Progress};
use super::context::Ctx;
use super::deadline::Sleep;
use super::idle::IdleTimeout;
use super::phases::UpstreamRequest;
use super::policies::request_size_limit::RequestBody;
use super::runtime::{Dest, ProxyPlan};
use super::upstream::client::{self, Failed, UpstreamBody};
use super::upstream::pool::InflightGuard;
use super::{respond, Body, BoxError};
use gatefold_compiler::ir::policy::RetryOn;
use http::header::{CONNECTION, HOST, PROXY_AUTHENTICATE, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

/// Headers that describe one connection, never forwarded.
static HOP_BY_HOP: [HeaderName; 8] = [
    CONNECTION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    PROXY_AUTHENTICATE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

/// `n`'s bit in a set of [`HOP_BY_HOP`] names (bit i for entry i), 0 if
/// it is not one. Matched by text (names are lowercase), which is cheaper
/// than eight `HeaderName` comparisons per header.
fn hop_bit(n: &HeaderName) -> u8 {
    match n.as_str() {
        "connection" => 1,
        "te" => 1 << 1,
        "trailer" => 1 << 2,
        "transfer-encoding" => 1 << 3,
        "upgrade" => 1 << 4,
        "proxy-authenticate" => 1 << 5,
        "keep-alive" => 1 << 6,
        "proxy-connection" => 1 << 7,
        _ => 0,
    }
}

/// Whether a `connection` option names a hop-by-hop header, which goes
/// anyway. Options are case-insensitive.
fn is_hop_by_hop_option(option: &[u8]) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|n| option.eq_ignore_ascii_case(n.as_str().as_bytes()))
}

/// Removes hop-by-hop headers, including those `connection` names.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    // One pass over the names finds which are there: most requests have
    // none, and a response from an HTTP/1.1 upstream often has only
    // `connection: keep-alive`. Removing all eight by name, present or
    // not, and parsing `keep-alive` into a header name cost 995
    // instructions more per request (bench/instructions.sh, profile A).
    let present = h.keys().fold(0u8, |set, n| set | hop_bit(n));
    if present == 0 {
        return;
    }
    if present & hop_bit(&CONNECTION) != 0 {
        // The other names `connection` lists. Usually there are none: a
        // value that is one option naming a hop-by-hop header (the common
        // `keep-alive`) is not split. Read as bytes, so that one token
        // that is not text does not keep the others from being removed.
        let mut named: Vec<HeaderName> = Vec::new();
        for v in h.get_all(CONNECTION) {
            let v = v.as_bytes();
            if is_hop_by_hop_option(v) {
                continue;
            }
            named.extend(
                v.split(|b| *b == b',')
                    .map(<[u8]>::trim_ascii)
                    .filter(|t| !is_hop_by_hop_option(t))
                    .filter_map(|t| HeaderName::from_bytes(t).ok()),
            );
        }
        for n in named {
            h.remove(n);
        }
    }
    for (i, n) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            h.remove(n);
        }
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
    Connect {
        timed_out: bool,
    },
    /// The upstream closed or reset the connection before a whole response
    /// head arrived.
    Reset,
    ReadTimeout,
    Other,
}

/// Whether an exchange error is the upstream closing or resetting the
/// connection (not answering badly, not the client's body failing).
fn is_reset(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_incomplete_message())
        {
            return true;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            if matches!(
                io.kind(),
                K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof
            ) {
                return true;
            }
        }
        cause = c.source();
    }
    false
}

/// `path?query` as the upstream receives it: the client's own bytes when
/// phase 10 left them as they were (the common case, no copy), else built.
fn origin_form(up: &UpstreamRequest, received: &http::Uri) -> Option<http::Uri> {
    if received.path() == up.path && received.query() == up.query.as_deref() {
        if let Some(pq) = received.path_and_query() {
            return Some(http::Uri::from(pq.clone()));
        }
    }
    let mut uri =
        String::with_capacity(up.path.len() + up.query.as_ref().map_or(0, |q| q.len() + 1));
    uri.push_str(&up.path);
    if let Some(q) = &up.query {
        uri.push('?');
        uri.push_str(q);
    }
    http::Uri::from_maybe_shared(bytes::Bytes::from(uri)).ok()
}

/// Sends the request and returns the upstream's response, or the gateway's
/// 502/503/504.
pub async fn forward(
    plan: &ProxyPlan,
    method: &Method,
    received: &http::Uri,
    mut up: UpstreamRequest,
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
    if let Some(m) = &plan.mirror {
        m.copy(method, &up, &mut body);
    }
    let host_set = up.headers.contains_key(HOST);
    let mut headers = Some(std::mem::take(&mut up.headers));
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
        let mut progress = None;
        let b: Body = match &mut body {
            RequestBody::Empty => respond::empty_body(),
            RequestBody::Bytes(bytes) => respond::full(bytes.clone()),
            RequestBody::Stream(_) => match std::mem::replace(&mut body, RequestBody::Empty) {
                RequestBody::Stream(mut s) => {
                    progress = Some(s.track());
                    stream_body(s)
                }
                _ => respond::empty_body(),
            },
        };
        let mut req = Request::new(b);
        *req.method_mut() = method.clone();
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = h;
        match origin_form(&up, received) {
            Some(uri) => *req.uri_mut() = uri,
            None => return respond::bad_request(),
        }
        let guard = dest.pool.begin(i);
        let sent = client::send(target, dest.connect, &dest.tls, req);
        let result = match &progress {
            None => {
                // `read` on the worker's deadlines; polled in place rather
                // than through a timeout combinator, which moved this large
                // future twice more per request.
                let mut sent = std::pin::pin!(sent);
                let mut limit = Sleep::new(dest.read);
                poll_fn(|cx| match sent.as_mut().poll(cx) {
                    Poll::Ready(r) => Poll::Ready(Ok(r)),
                    Poll::Pending => Pin::new(&mut limit)
                        .poll(cx)
                        .map(|()| Err(UpstreamTimedOut)),
                })
                .await
            }
            // Boxed: this future is twice the size of the common case's, and
            // every future around `forward` would carry it, copied whole at
            // each level on every request (bench/instructions.sh).
            Some(p) => Box::pin(while_uploading(dest.read, p, sent)).await,
        };
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
                last_failure = match e {
                    Failed::Connect { timed_out } => Failure::Connect { timed_out },
                    Failed::Exchange(e) => match ClientBodyError::find(&*e) {
                        // The client's fault: not held against the target.
                        Some(c) => return c.response(),
                        None if is_reset(&*e) => Failure::Reset,
                        None => Failure::Other,
                    },
                };
                dest.pool.record_live(i, false);
                let retry = match last_failure {
                    Failure::Connect { .. } => on.contains(&RetryOn::ConnectFailure),
                    // The request may have reached the upstream: like a
                    // timeout, only idempotent methods are sent again.
                    Failure::Reset => on.contains(&RetryOn::Reset) && idempotent(method),
                    _ => false,
                } && body.replayable();
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
        Failure::Connect { timed_out: false } | Failure::Reset | Failure::Other => {
            respond::bad_gateway()
        }
    }
}

fn stream_body(b: ClientBody) -> Body {
    b.map_err(|e| -> BoxError { Box::new(e) }).boxed_unsync()
}

/// The upstream took longer than `read` on its turn.
struct UpstreamTimedOut;

/// Waits for the response to a request whose body is still streaming from
/// the client: `read` runs only while the upstream is the one keeping the
/// exchange waiting, and restarts at every step the upload makes.
async fn while_uploading<F: std::future::Future>(
    read: Duration,
    progress: &Progress,
    sent: F,
) -> Result<F::Output, UpstreamTimedOut> {
    tokio::pin!(sent);
    loop {
        let upstreams_turn = !progress.waiting_on_client();
        tokio::select! {
            r = &mut sent => return Ok(r),
            _ = progress.changed() => {}
            _ = tokio::time::sleep(read), if upstreams_turn => return Err(UpstreamTimedOut),
        }
    }
}

fn wrap(resp: Response<UpstreamBody>, guard: InflightGuard, read: Duration) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // The client's connection has its own version; an HTTP/1.0 upstream
    // must not turn it into HTTP/1.0.
    parts.version = Version::default();
    let body = IdleTimeout::new(body, read, "upstream read timeout", guard);
    Response::from_parts(parts, body.boxed_unsync())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<&str> {
        let mut n: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        n.sort_unstable();
        n
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut h = map(&[
            ("connection", "Keep-Alive, x-hop"),
            ("connection", "X-Other , close"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "1"),
            ("x-other", "2"),
            ("close", "3"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("trailer", "x-t"),
            ("proxy-authenticate", "Basic"),
            ("proxy-connection", "keep-alive"),
            ("x-kept", "4"),
            ("content-type", "text/plain"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["content-type", "x-kept"]);
    }

    #[test]
    fn each_hop_by_hop_name_has_its_own_bit() {
        for (i, n) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_bit(n), 1 << i, "{n}");
        }
        assert_eq!(hop_bit(&HOST), 0);
        assert_eq!(hop_bit(&HeaderName::from_static("x-keep-alive")), 0);
    }

    #[test]
    fn hop_by_hop_headers_go_without_a_connection_header_too() {
        let mut h = map(&[
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("x-a", "1"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["x-a"]);
        let mut h = map(&[
            ("connection", "x-a, TE"),
            ("te", "trailers"),
            ("x-a", "1"),
            ("x-b", "2"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["x-b"]);
    }

    #[test]
    fn a_token_that_is_not_text_does_not_shield_the_others() {
        let mut h = map(&[("x-a", "1"), ("x-b", "2"), ("x-c", "3")]);
        h.insert(
            CONNECTION,
            HeaderValue::from_bytes(b"x-a, \xe9t\xe9, x-b").unwrap(),
        );
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["x-c"]);
    }

    #[test]
    fn a_keep_alive_response_loses_only_its_connection_header() {
        let mut h = map(&[
            ("connection", "keep-alive"),
            ("content-length", "3"),
            ("server", "nginx"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["content-length", "server"]);
        let mut none = map(&[("content-length", "3"), ("x-a", "1")]);
        strip_hop_by_hop(&mut none);
        assert_eq!(names(&none), ["content-length", "x-a"]);
    }
}
