//! Responses the gateway makes itself (policy-spec "Responses the gateway makes").

use super::context::error_body;
use super::{Body, BoxError};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};

pub fn full(b: Bytes) -> Body {
    Full::new(b)
        .map_err(|e| -> BoxError { match e {} })
        .boxed_unsync()
}

pub fn empty_body() -> Body {
    Empty::new()
        .map_err(|e| -> BoxError { match e {} })
        .boxed_unsync()
}

/// A response with a body and no headers.
pub fn with_body(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(empty_body());
    *r.status_mut() = status;
    r
}

/// `{"error":"..."}` with `content-type: application/json`.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = with_body(status, error_body(message));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub fn bad_request() -> Response<Body> {
    error(StatusCode::BAD_REQUEST, "bad request")
}
pub fn unauthorized() -> Response<Body> {
    error(StatusCode::UNAUTHORIZED, "unauthorized")
}
pub fn forbidden() -> Response<Body> {
    error(StatusCode::FORBIDDEN, "forbidden")
}
pub fn payload_too_large() -> Response<Body> {
    error(StatusCode::PAYLOAD_TOO_LARGE, "payload too large")
}
pub fn bad_gateway() -> Response<Body> {
    error(StatusCode::BAD_GATEWAY, "bad gateway")
}
pub fn no_healthy_upstream() -> Response<Body> {
    error(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream")
}
pub fn upstream_timeout() -> Response<Body> {
    error(StatusCode::GATEWAY_TIMEOUT, "upstream timeout")
}
