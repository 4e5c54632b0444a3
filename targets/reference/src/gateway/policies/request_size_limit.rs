//! `request-size-limit` (phase 3) and the baseline `max-body` it replaces
//! (the route's lowered `max-body`): a request body larger than the limit gets 413. The size is the
//! `content-length`, or the bytes actually received for a body without one
//! (those are read, up to the limit, before phase 4 runs).

use crate::gateway::idle::IdleTimeout;
use crate::gateway::respond;
use crate::gateway::Body;
use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body as _, Incoming};
use std::time::Duration;

/// A request body that passed the limit.
pub enum RequestBody {
    /// No body at all.
    Empty,
    /// Streamed as it arrives (its `content-length` is within the limit).
    Stream(IdleTimeout<Incoming>),
    /// Read whole: a body without `content-length`, or one kept to replay on retries.
    Bytes(Bytes),
}

impl RequestBody {
    /// Whether the body can be sent more than once.
    pub fn replayable(&self) -> bool {
        !matches!(self, RequestBody::Stream(_))
    }

    /// Reads a streamed body whole (for retries); already bounded by the limit.
    pub async fn buffer(self) -> Result<RequestBody, Response<Body>> {
        match self {
            RequestBody::Stream(b) => match b.collect().await {
                Ok(c) => Ok(RequestBody::Bytes(c.to_bytes())),
                Err(_) => Err(respond::bad_request()),
            },
            other => Ok(other),
        }
    }
}

/// Checks the body against `max`: 413 when it is larger, 400 when the client
/// breaks off while it is read or sends nothing for `idle`.
pub async fn enforce(
    headers: &HeaderMap,
    body: Incoming,
    max: u64,
    idle: Duration,
) -> Result<RequestBody, Response<Body>> {
    if body.is_end_stream() {
        return Ok(RequestBody::Empty);
    }
    let body = IdleTimeout::new(body, idle, "client body read timeout", ());
    if let Some(len) = headers.get(CONTENT_LENGTH) {
        // hyper has already refused a malformed content-length.
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(respond::bad_request)?;
        return if len > max {
            Err(respond::payload_too_large())
        } else {
            Ok(RequestBody::Stream(body))
        };
    }
    match Limited::new(body, usize::try_from(max).unwrap_or(usize::MAX))
        .collect()
        .await
    {
        Ok(c) => Ok(RequestBody::Bytes(c.to_bytes())),
        Err(e) if e.is::<LengthLimitError>() => Err(respond::payload_too_large()),
        Err(_) => Err(respond::bad_request()),
    }
}
