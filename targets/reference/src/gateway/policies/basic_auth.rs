//! `basic-auth`: `authorization: Basic ...` with a consumer's user and password.
//!
//! How long a refusal takes depends only on what the client sent, not on
//! whether the user exists or on the stored password: the presented
//! password is hashed (SHA-256) and its digest compared in constant time
//! with the stored one, or with a stand-in when the user is unknown.

use super::auth::{Authenticator, Consumers, PasswordDigest, Verdict};
use crate::gateway::context::Ctx;
use crate::gateway::phases::UpstreamRequest;
use base64::Engine;
use http::header::AUTHORIZATION;
use http::{request, HeaderMap};
use std::sync::Arc;

pub struct BasicAuthMethod {
    consumers: Arc<Consumers>,
}

impl BasicAuthMethod {
    pub fn new(consumers: Arc<Consumers>) -> BasicAuthMethod {
        BasicAuthMethod { consumers }
    }
}

/// The base64 part of `authorization: Basic <b64>` (scheme case-insensitive).
fn basic_credential(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
}

impl Authenticator for BasicAuthMethod {
    fn authenticate(&self, req: &request::Parts, _ctx: &mut Ctx) -> Verdict {
        let Some(b64) = basic_credential(&req.headers) else {
            return Verdict::Refuse;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            return Verdict::Refuse;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return Verdict::Refuse;
        };
        let Some((user, password)) = text.split_once(':') else {
            return Verdict::Refuse;
        };
        let presented = PasswordDigest::of(password);
        match self.consumers.by_user.get(user) {
            Some((expected, c)) if expected.matches(&presented) => Verdict::Admit(Some(c.clone())),
            Some(_) => Verdict::Refuse,
            None => {
                // The comparison a known user's password gets; its answer
                // is unused.
                std::hint::black_box(PasswordDigest::STAND_IN.matches(&presented));
                Verdict::Refuse
            }
        }
    }

    fn upstream_request(&self, up: &mut UpstreamRequest, _ctx: &Ctx, _admitted: bool) {
        if basic_credential(&up.headers).is_some() {
            up.headers.remove(AUTHORIZATION);
        }
    }
}
