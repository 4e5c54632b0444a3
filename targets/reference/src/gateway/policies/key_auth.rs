//! `key-auth`: a consumer's key in a header or a query parameter.

use super::auth::{Authenticator, Consumers, GuessedKey, Verdict};
use crate::gateway::context::Ctx;
use crate::gateway::phases::UpstreamRequest;
use gatefold_compiler::ir::policy::{KeyAuth, KeyLocation};
use http::{request, HeaderName};
use std::borrow::Cow;
use std::sync::Arc;

pub struct KeyAuthMethod {
    location: Location,
    consumers: Arc<Consumers>,
}

enum Location {
    Header(HeaderName),
    Query(String),
}

impl KeyAuthMethod {
    pub fn new(cfg: &KeyAuth, consumers: Arc<Consumers>) -> Result<KeyAuthMethod, String> {
        let location = match cfg.location {
            KeyLocation::Header => Location::Header(
                HeaderName::from_bytes(cfg.name.as_bytes())
                    .map_err(|_| format!("key-auth: `{}` is not a header name", cfg.name))?,
            ),
            KeyLocation::Query => Location::Query(cfg.name.clone()),
        };
        Ok(KeyAuthMethod {
            location,
            consumers,
        })
    }
}

/// The first `name=value` pair of a query, value percent-decoded.
fn query_param<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

pub fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

impl Authenticator for KeyAuthMethod {
    fn authenticate(&self, req: &request::Parts, ctx: &mut Ctx) -> Verdict {
        let key: Option<Cow<'_, str>> = match &self.location {
            Location::Header(h) => req
                .headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(Cow::Borrowed),
            Location::Query(name) => ctx.query.as_deref().and_then(|q| query_param(q, name)),
        };
        match key.and_then(|k| self.consumers.by_key.get(&GuessedKey(&k))) {
            Some(c) => Verdict::Admit(Some(c.clone())),
            None => Verdict::Refuse,
        }
    }

    /// A query key is removed as soon as phase 4 is done, so nothing the
    /// gateway sends carries it: not the upstream request, not a
    /// redirect's `location`.
    fn settle(&self, _req: &mut request::Parts, ctx: &mut Ctx) {
        if let (Location::Query(name), Some(q)) = (&self.location, &ctx.query) {
            ctx.query = without_param(q, name);
        }
    }

    fn upstream_request(&self, up: &mut UpstreamRequest, _ctx: &Ctx, _admitted: bool) {
        if let Location::Header(h) = &self.location {
            up.headers.remove(h);
        }
    }
}

/// `query` without any `name=...` pair; `None` when nothing is left.
fn without_param(query: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split_once('=').map_or(*pair, |(k, _)| k) != name)
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_query_keys() {
        assert_eq!(query_param("a=1&api_key=k%2By", "api_key").unwrap(), "k+y");
        assert!(query_param("a=1", "api_key").is_none());
        assert_eq!(percent_decode("%4"), "%4");
    }
}
