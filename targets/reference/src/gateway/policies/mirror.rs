//! `mirror` (phase 12, language 1.1): a copy of the request, as it goes to
//! the upstream (path, query and headers after phase 10, the body up to the
//! route's limit), sent to another upstream on a task of its own; the
//! answer is read and dropped.
//!
//! The copy never delays or fails the request: it starts once the body has
//! passed (a streamed body is copied as it goes to the main upstream, not
//! read ahead), it is bounded by the mirror upstream's timeouts, and at
//! most [`MAX_IN_FLIGHT`] copies per policy are under way, so a slow or
//! dead mirror costs memory for no more than that many bodies; further
//! copies are skipped. A mirror's failures are not held against its health.

use crate::gateway::phases::UpstreamRequest;
use crate::gateway::policies::request_size_limit::RequestBody;
use crate::gateway::upstream::client;
use crate::gateway::upstream::pool::Pool;
use crate::gateway::{respond, Body};
use bytes::Bytes;
use gatefold_compiler::ir::policy::Mirror;
use http::header::HOST;
use http::{HeaderMap, Method, Request, Version};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};

/// Copies under way at once, per mirror policy.
pub const MAX_IN_FLIGHT: usize = 64;

/// A route's mirror, ready to send copies.
pub struct MirrorPlan {
    pool: Arc<Pool>,
    tls: Arc<rustls::ClientConfig>,
    connect: Duration,
    /// Bounds the whole exchange with the mirror, answer body included.
    read: Duration,
    percent: u8,
    slots: Arc<Semaphore>,
}

/// The copy's body: known now, or once the request's has passed.
enum CopyBody {
    Now(Bytes),
    Later(oneshot::Receiver<Bytes>),
}

impl MirrorPlan {
    pub fn new(
        cfg: &Mirror,
        pool: Arc<Pool>,
        tls: Arc<rustls::ClientConfig>,
        connect: Duration,
        read: Duration,
    ) -> MirrorPlan {
        MirrorPlan {
            pool,
            tls,
            connect,
            read,
            percent: cfg.percent,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// Sends a copy of `up` with `body` for `percent` % of the requests.
    /// A streamed body is marked to be copied as it passes.
    pub fn copy(&self, method: &Method, up: &UpstreamRequest, body: &mut RequestBody) {
        if self.percent == 0 || (self.percent < 100 && fastrand::u8(0..100) >= self.percent) {
            return;
        }
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            // The mirror is behind: skip this copy rather than pile up bodies.
            return;
        };
        let copy_body = match body {
            RequestBody::Empty => CopyBody::Now(Bytes::new()),
            RequestBody::Bytes(b) => CopyBody::Now(b.clone()),
            RequestBody::Stream(s) => CopyBody::Later(s.copy()),
        };
        let mut uri = up.path.clone();
        if let Some(q) = &up.query {
            uri.push('?');
            uri.push_str(q);
        }
        let Ok(uri) = http::Uri::try_from(uri) else {
            return;
        };
        let job = Copy {
            pool: self.pool.clone(),
            tls: self.tls.clone(),
            connect: self.connect,
            read: self.read,
            method: method.clone(),
            uri,
            headers: up.headers.clone(),
        };
        tokio::spawn(async move {
            let _slot = slot;
            job.send(copy_body).await;
        });
    }
}

/// One copy on its way.
struct Copy {
    pool: Arc<Pool>,
    tls: Arc<rustls::ClientConfig>,
    connect: Duration,
    read: Duration,
    method: Method,
    uri: http::Uri,
    headers: HeaderMap,
}

impl Copy {
    async fn send(self, body: CopyBody) {
        let bytes = match body {
            CopyBody::Now(b) => b,
            // The request's body failed or was never read whole: no copy.
            CopyBody::Later(rx) => match rx.await {
                Ok(b) => b,
                Err(_) => return,
            },
        };
        let Some(i) = self.pool.pick(&self.headers, &[]) else {
            return;
        };
        let target = &self.pool.targets[i];
        let mut headers = self.headers;
        if !headers.contains_key(HOST) {
            headers.insert(HOST, target.authority.clone());
        }
        let b: Body = if bytes.is_empty() {
            respond::empty_body()
        } else {
            respond::full(bytes)
        };
        let mut req = Request::new(b);
        *req.method_mut() = self.method;
        *req.version_mut() = Version::HTTP_11;
        *req.uri_mut() = self.uri;
        *req.headers_mut() = headers;
        let _guard = self.pool.begin(i);
        let exchange = async {
            if let Ok(resp) = client::send(target, self.connect, &self.tls, req).await {
                // Read to the end, so the connection can be used again.
                let _ = resp.into_body().collect().await;
            }
        };
        let _ = tokio::time::timeout(self.connect + self.read, exchange).await;
    }
}
