//! `cache` (phase 11): a bounded in-memory store of upstream responses, per
//! attached policy. The key is the method, host, path and query as received,
//! the consumer (so one consumer never sees another's response) and the
//! `vary` headers. Only 200 responses without `set-cookie` and without
//! `cache-control: no-store` or `private` are stored; they are served for
//! `ttl` whatever their own cache headers say. A hit skips the proxy and goes
//! through phase 13.
//!
//! Bounds: at most [`MAX_ENTRIES`] entries and [`MAX_BYTES`] of bodies per
//! policy; a body over [`MAX_ENTRY_BYTES`] is passed through and not stored.
//! When full, expired entries go first, then the oldest.

use crate::gateway::clock::Clock;
use crate::gateway::context::Ctx;
use crate::gateway::{respond, Body, BoxError};
use bytes::{Bytes, BytesMut};
use gatefold_compiler::ir::policy::Cache;
use gatefold_compiler::ir::Method;
use http::header::{CACHE_CONTROL, SET_COOKIE};
use http::{request, HeaderMap, HeaderName, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

pub const MAX_ENTRIES: usize = 10_000;
pub const MAX_ENTRY_BYTES: usize = 1 << 20;
pub const MAX_BYTES: usize = 64 << 20;

struct Entry {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    expires_ms: u64,
}

#[derive(Default)]
struct Store {
    map: HashMap<String, Entry>,
    order: VecDeque<(String, u64)>,
    bytes: usize,
}

pub struct ResponseCache {
    ttl_ms: u64,
    methods: Vec<http::Method>,
    vary: Vec<HeaderName>,
    clock: Arc<dyn Clock>,
    store: Mutex<Store>,
}

impl ResponseCache {
    pub fn new(cfg: &Cache, clock: Arc<dyn Clock>) -> Result<ResponseCache, String> {
        Ok(ResponseCache {
            ttl_ms: cfg.ttl.millis,
            methods: cfg
                .methods
                .iter()
                .map(|m| match m {
                    Method::Head => http::Method::HEAD,
                    _ => http::Method::GET,
                })
                .collect(),
            vary: cfg
                .vary
                .iter()
                .map(|h| HeaderName::from_bytes(h.as_str().as_bytes()).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?,
            clock,
            store: Mutex::new(Store::default()),
        })
    }

    fn now_ms(&self) -> u64 {
        self.clock.now().as_millis() as u64
    }

    /// The key of a request, or `None` when its method is not cached.
    pub fn key(&self, req: &request::Parts, ctx: &Ctx) -> Option<String> {
        if !self.methods.contains(&req.method) {
            return None;
        }
        let mut k = String::with_capacity(128);
        k.push_str(req.method.as_str());
        k.push('\n');
        k.push_str(&ctx.host.as_deref().unwrap_or("").to_ascii_lowercase());
        k.push('\n');
        k.push_str(req.uri.path_and_query().map_or("/", |p| p.as_str()));
        k.push('\n');
        k.push_str(ctx.consumer.as_ref().map_or("", |c| &c.name));
        for h in &self.vary {
            k.push('\n');
            for v in req.headers.get_all(h) {
                k.push_str(&String::from_utf8_lossy(v.as_bytes()));
                k.push(',');
            }
        }
        Some(k)
    }

    pub fn lookup(&self, key: &str) -> Option<Response<Body>> {
        let now = self.now_ms();
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let e = store.map.get(key).filter(|e| e.expires_ms > now)?;
        let mut resp = respond::with_body(e.status, e.body.clone());
        *resp.headers_mut() = e.headers.clone();
        Some(resp)
    }

    /// Whether a response may be stored at all.
    fn storable(resp: &Response<Body>) -> bool {
        resp.status() == StatusCode::OK
            && !resp.headers().contains_key(SET_COOKIE)
            && !resp.headers().get_all(CACHE_CONTROL).iter().any(|v| {
                let v = String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase();
                v.split(',')
                    .any(|d| matches!(d.trim(), "no-store" | "private"))
            })
    }

    /// Passes the response through, storing it once its body has been sent whole.
    pub fn store(self: &Arc<Self>, key: String, resp: Response<Body>) -> Response<Body> {
        if !Self::storable(&resp) {
            return resp;
        }
        let (parts, body) = resp.into_parts();
        if body.is_end_stream() {
            // An empty body (HEAD, or zero length) is never polled.
            self.insert(key, parts.status, parts.headers.clone(), Bytes::new());
            return Response::from_parts(parts, body);
        }
        let tee = TeeBody {
            inner: body,
            buf: Some(BytesMut::new()),
            pending: Some((key, parts.status, parts.headers.clone())),
            cache: self.clone(),
        };
        Response::from_parts(parts, tee.boxed_unsync())
    }

    fn insert(&self, key: String, status: StatusCode, headers: HeaderMap, body: Bytes) {
        let expires_ms = self.now_ms() + self.ttl_ms;
        let mut s = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = s.map.remove(&key) {
            s.bytes -= old.body.len();
        }
        // One TTL per cache, so the oldest insertion expires first: evicting
        // from the front drops expired entries before live ones. A queue item
        // whose entry was replaced since (another expiry) is skipped.
        while s.map.len() >= MAX_ENTRIES || s.bytes + body.len() > MAX_BYTES {
            let Some((k, exp)) = s.order.pop_front() else {
                break;
            };
            if s.map.get(&k).is_some_and(|e| e.expires_ms == exp) {
                if let Some(e) = s.map.remove(&k) {
                    s.bytes -= e.body.len();
                }
            }
        }
        s.bytes += body.len();
        s.order.push_back((key.clone(), expires_ms));
        s.map.insert(
            key,
            Entry {
                status,
                headers,
                body,
                expires_ms,
            },
        );
        // Queue items of replaced entries pile up only with repeated stores of
        // one key; compact once they outnumber the entries.
        if s.order.len() > 2 * MAX_ENTRIES.min(s.map.len().max(64)) {
            let Store { map, order, .. } = &mut *s;
            order.retain(|(k, exp)| map.get(k).is_some_and(|e| e.expires_ms == *exp));
        }
    }
}

/// Streams a response to the client while keeping a copy for the cache.
struct TeeBody {
    inner: Body,
    /// `None` once the body outgrew [`MAX_ENTRY_BYTES`].
    buf: Option<BytesMut>,
    pending: Option<(String, StatusCode, HeaderMap)>,
    cache: Arc<ResponseCache>,
}

impl TeeBody {
    /// The whole body went through: store it (once).
    fn finish(&mut self) {
        if let (Some(buf), Some((key, status, headers))) = (self.buf.take(), self.pending.take()) {
            self.cache.insert(key, status, headers, buf.freeze());
        }
    }
}

impl HttpBody for TeeBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => match f.data_ref() {
                Some(data) => {
                    if let Some(buf) = &mut this.buf {
                        if buf.len() + data.len() > MAX_ENTRY_BYTES {
                            this.buf = None;
                        } else {
                            buf.extend_from_slice(data);
                        }
                    }
                    // A server stops polling once a body of known length
                    // is complete, so the end may never be seen as `None`.
                    if this.inner.is_end_stream() {
                        this.finish();
                    }
                }
                // Trailers: not stored.
                None => this.buf = None,
            },
            Some(Err(_)) => this.buf = None,
            None => this.finish(),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
