//! `request-size-limit` (phase 3) and the baseline `max-body` it replaces
//! (the route's lowered `max-body`): a request body larger than the limit
//! gets 413.
//!
//! Phase 3 reads nothing: a `content-length` over the limit is refused
//! there, before authentication; a body without one is counted as it
//! streams upstream (after phases 4-9, so an unauthenticated client never
//! gets its body read) and gets 413 once it passes the limit. A body is read
//! whole only when a policy needs it whole: today only `retry` (to replay
//! it), up to the limit.

use crate::gateway::client_body::{ClientBody, ClientBodyError};
use crate::gateway::Body;
use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Response};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use std::time::Duration;

/// A request body that passed the phase 3 check.
pub enum RequestBody {
    /// No body at all.
    Empty,
    /// Streamed as it arrives, still counted against the limit.
    Stream(ClientBody),
    /// Read whole, to replay on retries.
    Bytes(Bytes),
}

impl RequestBody {
    /// Whether the body can be sent more than once.
    pub fn replayable(&self) -> bool {
        !matches!(self, RequestBody::Stream(_))
    }

    /// Reads a streamed body whole (for retries), up to the limit: 413 past
    /// it, 408 when the client stalls, 400 when it breaks off.
    pub async fn buffer(self) -> Result<RequestBody, Response<Body>> {
        match self {
            RequestBody::Stream(b) => match b.collect().await {
                Ok(c) => Ok(RequestBody::Bytes(c.to_bytes())),
                Err(e) => Err(e.response()),
            },
            other => Ok(other),
        }
    }
}

/// Phase 3: refuses a `content-length` over `max` (413) without reading
/// anything; otherwise the body streams, limited to `max` bytes and cut
/// off when the client sends nothing of it for `idle`.
pub fn enforce(
    headers: &HeaderMap,
    body: Incoming,
    max: u64,
    idle: Duration,
) -> Result<RequestBody, ClientBodyError> {
    if body.is_end_stream() {
        return Ok(RequestBody::Empty);
    }
    if let Some(len) = headers.get(CONTENT_LENGTH) {
        // hyper has already refused a malformed content-length.
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(ClientBodyError::BadLength)?;
        if len > max {
            return Err(ClientBodyError::TooLarge);
        }
    }
    Ok(RequestBody::Stream(ClientBody::new(body, max, idle)))
}
