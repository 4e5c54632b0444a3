//! One request through the phases: route lookup, the route's policies, the
//! proxy, and the baseline (request id, metrics, access log) around them.

use super::access_log::Line;
use super::context::Ctx;
use super::phases::{Flow, UpstreamRequest};
use super::policies::rate_limit::RateHeaders;
use super::policies::request_size_limit;
use super::policies::script::ScriptFailed;
use super::proxy::{self, strip_hop_by_hop};
use super::respond;
use super::runtime::{RouteRt, Runtime};
use super::{Body, Shared};
use gatefold_compiler::dispatch::Dispatch;
use gatefold_compiler::ir::Method as IrMethod;
use http::header::{ACCESS_CONTROL_REQUEST_METHOD, ALLOW, FORWARDED, HOST, ORIGIN, SERVER};
use http::{
    request, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version,
};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

fn ir_method(m: &Method) -> Option<IrMethod> {
    Some(match *m {
        Method::GET => IrMethod::Get,
        Method::HEAD => IrMethod::Head,
        Method::POST => IrMethod::Post,
        Method::PUT => IrMethod::Put,
        Method::PATCH => IrMethod::Patch,
        Method::DELETE => IrMethod::Delete,
        Method::OPTIONS => IrMethod::Options,
        Method::TRACE => IrMethod::Trace,
        _ => return None,
    })
}

/// Each byte's two lowercase hex digits.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

/// Keeps a well-formed incoming `x-request-id` (1-128 of `A-Z a-z 0-9 . _ : -`),
/// otherwise makes a random UUID.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(&X_REQUEST_ID) {
        let b = v.as_bytes();
        if (1..=128).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
        {
            return v.clone();
        }
    }
    // A version 4 UUID, written straight into a buffer: each byte's two hex
    // digits from a table, at offsets fixed around the dashes (a loop
    // deciding where the dashes go cost 270 instructions more per request).
    let r = fastrand::u128(..);
    let r = (r & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut out = *b"00000000-0000-0000-0000-000000000000";
    for (b, at) in r.to_be_bytes().into_iter().zip(AT) {
        out[at..at + 2].copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
    HeaderValue::from_bytes(&out).unwrap_or(HeaderValue::from_static("0"))
}

/// Adds the request id and the headers earlier phases promised: each
/// replaces the response's own, except `vary`, which is added to.
fn apply_promised(h: &mut HeaderMap, ctx: &Ctx) {
    // One growth of the map at most, not one per header past its capacity.
    let rate = ctx.rate_headers.as_ref().map_or(0, |_| RateHeaders::COUNT);
    h.reserve(usize::from(ctx.request_id.is_some()) + rate + ctx.promised.len());
    // Kept out of `promised`, which then stays empty (unallocated) on most
    // requests.
    if let Some(id) = &ctx.request_id {
        h.insert(X_REQUEST_ID.clone(), id.clone());
    }
    if let Some(rate) = &ctx.rate_headers {
        rate.write(h);
    }
    ctx.promised.apply(h);
}

/// A response made before phase 9: promised headers only.
fn early(mut resp: Response<Body>, ctx: &Ctx) -> Response<Body> {
    apply_promised(resp.headers_mut(), ctx);
    resp
}

/// A response from phase 9 on: promised headers, then phase 13. A response
/// script that failed replaces the response with 500 `{"error":"script failed"}`.
fn late(resp: Response<Body>, route: &RouteRt, ctx: &Ctx) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    apply_promised(&mut parts.headers, ctx);
    for p in &route.policies {
        p.response_filter(&mut parts, ctx);
    }
    if parts.extensions.get::<ScriptFailed>().is_some() {
        return early(
            respond::error(StatusCode::INTERNAL_SERVER_ERROR, "script failed"),
            ctx,
        );
    }
    Response::from_parts(parts, body)
}

/// Serves one request on the runtime current when it arrived.
pub async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let rt = shared.runtime.load_full();
    let (mut head, body) = req.into_parts();
    let source = &rt.ir.gateway.baseline.client_address;
    let client = match source.header() {
        None => peer.ip().to_canonical(),
        Some(name) => source.client(
            peer.ip(),
            head.headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        ),
    };
    let mut ctx = Ctx::new(peer, client, Instant::now());
    if rt.request_id {
        ctx.request_id = Some(request_id(&head.headers));
    }
    let method = head.method.clone();
    // The route is found by a plain function and its future awaited here:
    // one future fewer around the request's (each level copies the one
    // inside it when it starts).
    let (route, mut resp) = match find_route(&rt, &mut head, &mut ctx) {
        Found::Route(i) => (
            Some(i),
            run_route(&rt.routes[i], &shared, &mut head, body, &mut ctx).await,
        ),
        Found::Answer(resp) => (None, resp),
    };
    if rt.server_header && !resp.headers().contains_key(SERVER) {
        resp.headers_mut().insert(
            SERVER,
            HeaderValue::from_static(concat!("gatefold/", env!("CARGO_PKG_VERSION"))),
        );
    }
    let latency = ctx.started.elapsed();
    let status = resp.status().as_u16();
    match route {
        Some(i) => rt.routes[i].metrics.observe(status, latency),
        None => rt.no_route.observe(status, latency),
    }
    if shared.access_log.enabled() {
        let mut line = Line {
            time: Default::default(),
            request_id: ctx.request_id.as_ref().and_then(|v| v.to_str().ok()),
            client: ctx.client_text(),
            method: method.as_str(),
            host: ctx.host.as_deref(),
            path: if ctx.path.is_empty() {
                head.uri.path()
            } else {
                &ctx.path
            },
            route: route.map(|i| &*rt.routes[i].id),
            consumer: ctx.consumer.as_ref().map(|c| &*c.name),
            status,
            upstream: ctx.upstream.as_deref(),
            target: ctx.target.as_deref(),
            cache: route.filter(|i| rt.routes[*i].cache.is_some()).map(|_| {
                if ctx.cache_hit {
                    "hit"
                } else {
                    "miss"
                }
            }),
            latency_ms: latency.as_secs_f64() * 1000.0,
        };
        if !shared.access_log.write(&*shared.clock, &mut line) {
            shared
                .metrics
                .access_log_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }
    resp
}

/// The request's `host` field, if it has one; `Err` when it is malformed.
/// RFC 9112 3.2: an HTTP/1.1 request carries exactly one `host`; no
/// request may carry two (which one would route it, which one the upstream
/// would believe?).
fn host_field(head: &request::Parts) -> Result<Option<&HeaderValue>, ()> {
    let mut hosts = head.headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (_, Some(_)) => Err(()),
        (None, _) if head.version == Version::HTTP_11 => Err(()),
        (host, None) => Ok(host),
    }
}

/// What route lookup found.
enum Found {
    /// The index of the route that serves the request.
    Route(usize),
    /// The gateway's answer when no route does (400, 404, 405).
    Answer(Response<Body>),
}

fn find_route(rt: &Runtime, head: &mut request::Parts, ctx: &mut Ctx) -> Found {
    let Ok(path) = rt.ir.gateway.baseline.path.normalize(head.uri.path()) else {
        return Found::Answer(early(respond::bad_request(), ctx));
    };
    let Ok(host_hdr) = host_field(head) else {
        return Found::Answer(early(respond::bad_request(), ctx));
    };
    ctx.path = path.into_owned();
    ctx.query = head.uri.query().map(str::to_string);
    ctx.host = match head.uri.authority() {
        Some(a) => Some(a.as_str().to_string()),
        None => host_hdr.and_then(|h| h.to_str().ok()).map(str::to_string),
    };
    let host = ctx.host.as_deref();

    // Whether the request meets a route's `match` conditions (asked only
    // of routes that have some): headers by their first field line, the
    // query as received.
    let headers = &head.headers;
    let query = head.uri.query();
    let holds = |r: usize| {
        rt.ir.routes[r]
            .matcher
            .conditions
            .holds(|n| headers.get(n).map(|v| v.as_bytes()), query)
    };
    // A CORS preflight goes to the route the view names for the method it
    // asks about (one with `cors`); otherwise it is an ordinary OPTIONS
    // request.
    let mut found = None;
    if head.method == Method::OPTIONS && head.headers.contains_key(ORIGIN) {
        if let Some(asked) = head.headers.get(ACCESS_CONTROL_REQUEST_METHOD) {
            if let Ok(asked) = Method::from_bytes(asked.as_bytes()) {
                found = rt
                    .view
                    .preflight_with(host, &ctx.path, ir_method(&asked), holds);
                ctx.preflight = found.is_some();
            }
        }
    }
    if let Some(i) = found {
        return Found::Route(i);
    }
    match rt
        .view
        .dispatch_with(host, &ctx.path, ir_method(&head.method), holds)
    {
        Dispatch::Route(i) => Found::Route(i),
        Dispatch::MethodNotAllowed(allow) => {
            let mut resp = respond::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            if let Ok(v) = HeaderValue::from_str(&allow.to_string()) {
                resp.headers_mut().insert(ALLOW, v);
            }
            Found::Answer(early(resp, ctx))
        }
        Dispatch::NotFound => Found::Answer(early(
            respond::error(StatusCode::NOT_FOUND, "no route"),
            ctx,
        )),
    }
}

async fn run_route(
    route: &RouteRt,
    shared: &Shared,
    head: &mut request::Parts,
    body: Incoming,
    ctx: &mut Ctx,
) -> Response<Body> {
    // Phases 1-2.
    for p in &route.policies[..route.after_body] {
        match p.request_filter(head, ctx) {
            Flow::Continue => p.settle_request(head, ctx),
            Flow::Stop(r) => return early(r, ctx),
            Flow::Answer(r) => return late(r, route, ctx),
        }
    }
    // Phase 3: checks `content-length` only; the body is read later, after
    // authentication, as the upstream takes it.
    let body = match request_size_limit::enforce(
        &head.headers,
        body,
        route.max_body,
        shared.body_read_timeout,
    ) {
        Ok(b) => b,
        Err(e) => return early(e.response(), ctx),
    };
    // Phases 4-9.
    for p in &route.policies[route.after_body..] {
        match p.request_filter(head, ctx) {
            Flow::Continue => p.settle_request(head, ctx),
            Flow::Stop(r) => return early(r, ctx),
            Flow::Answer(r) => return late(r, route, ctx),
        }
    }
    let Some(plan) = &route.proxy else {
        // Only routes that always answer at phase 9 have no upstream.
        return late(respond::bad_gateway(), route, ctx);
    };
    // Phase 11, lookup: keyed by the request as received.
    let cache_key = route.cache.as_ref().and_then(|c| c.key(head, ctx));
    if let (Some(cache), Some(key)) = (&route.cache, &cache_key) {
        if let Some(hit) = cache.lookup(key) {
            ctx.cache_hit = true;
            return late(hit, route, ctx);
        }
    }
    // Phase 10.
    let mut headers = std::mem::take(&mut head.headers);
    strip_hop_by_hop(&mut headers);
    // The gateway speaks `x-forwarded-*` (below). A client's `forwarded` or
    // `x-real-ip` would claim an address the gateway never saw, to an
    // upstream that may believe it: removed.
    // Checked in one pass over the names: a hashed lookup for each of
    // these headers, which few requests carry, cost 370 instructions.
    let (mut claims, mut earlier_hops) = (false, false);
    for name in headers.keys() {
        claims |= name == FORWARDED || name == X_REAL_IP;
        earlier_hops |= name == X_FORWARDED_FOR;
    }
    if claims {
        headers.remove(FORWARDED);
        headers.remove(&X_REAL_IP);
    }
    // The client's host goes on as x-forwarded-host (the Host header as is,
    // unless the request line carried an authority, which wins, as HTTP/2's
    // `:authority` does); the target's host replaces it at phase 12, unless
    // the route preserves it (a `request-headers` `set: { host }` still
    // wins over both).
    let client_host = headers.remove(HOST);
    let client_host = match head.uri.authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => client_host,
    };
    if let Some(h) = client_host {
        if route.preserve_host {
            headers.insert(HOST, h.clone());
        }
        headers.insert(X_FORWARDED_HOST.clone(), h);
    }
    // x-forwarded-for: every earlier hop, then the peer (the hop that
    // reached the gateway, whatever `client-address` believes).
    let mut xff = String::with_capacity(48);
    if earlier_hops {
        for prev in headers.get_all(&X_FORWARDED_FOR) {
            if let Ok(p) = prev.to_str() {
                xff.push_str(p);
                xff.push_str(", ");
            }
        }
    }
    xff.push_str(&ctx.peer_text());
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(xff)) {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    let over_tls = head
        .extensions
        .get::<super::tls_listener::OverTls>()
        .is_some();
    let proto = if over_tls { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    if let Some(id) = &ctx.request_id {
        headers.insert(X_REQUEST_ID.clone(), id.clone());
    }
    let mut up = UpstreamRequest {
        // A request script's `req.setPath`, else the normalized path.
        path: ctx.script_path.take().unwrap_or_else(|| ctx.path.clone()),
        query: ctx.query.clone(),
        headers,
    };
    for p in &route.policies {
        p.upstream_request(&mut up, ctx);
    }
    // Phase 12.
    let resp = proxy::forward(plan, &head.method, &head.uri, up, body, ctx).await;
    // Phase 11, store.
    let resp = match (&route.cache, cache_key) {
        (Some(cache), Some(key)) if ctx.target.is_some() => cache.store(key, resp),
        _ => resp,
    };
    late(resp, route, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_request_ids_are_version_4_uuids() {
        let a = request_id(&HeaderMap::new());
        let a = a.to_str().unwrap();
        let groups: Vec<&str> = a.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        assert_eq!(lengths, [8, 4, 4, 4, 12], "{a}");
        assert!(a
            .bytes()
            .all(|c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert!(groups[2].starts_with('4'), "{a}");
        assert!(groups[3].starts_with(['8', '9', 'a', 'b']), "{a}");
        assert_ne!(request_id(&HeaderMap::new()).to_str().unwrap(), a);
    }
}
