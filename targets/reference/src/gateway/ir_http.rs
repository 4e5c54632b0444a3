//! The IR's checked header names and values as the `http` crate's types.
//!
//! The front end checked them once ([`ir::HeaderName`]: a lower-case HTTP
//! token; [`ir::HeaderValue`]: printable ASCII and tabs), and loading an IR
//! checks them again through the same parsers, so every one is valid here:
//! the gateway has no error path for them.

use gatefold_compiler::ir;
use http::{HeaderName, HeaderValue};

/// `name` as an `http` header name.
pub fn name(name: &ir::HeaderName) -> HeaderName {
    HeaderName::from_bytes(name.as_str().as_bytes())
        .expect("an IR header name is an HTTP token, which http accepts")
}

/// `value` as an `http` header value.
pub fn value(value: &ir::HeaderValue) -> HeaderValue {
    HeaderValue::from_str(value.as_str())
        .expect("an IR header value is printable ASCII or tabs, which http accepts")
}
