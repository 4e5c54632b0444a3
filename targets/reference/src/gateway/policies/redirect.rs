//! `redirect` (phase 9): an empty answer with `location`.
//!
//! With `to`, `{param}` takes the route's parameter and the request's query
//! string is appended (before a fragment `to` ends with). With parts
//! (`scheme`, `host`, `port`, `path` / `replace-prefix`), the request's own
//! URL with those parts replaced: scheme of the listener, host and port of
//! `host` / `:authority`, the normalized path, the query string.
//!
//! A parameter or a kept path that would turn the `location` into another
//! host's (`//...`, `/\...`) is refused with 400 (an open redirect), and so
//! is a request `host` that is not a plain host name or address.

use crate::gateway::context::Ctx;
use crate::gateway::phases::{Flow, PhaseHooks};
use crate::gateway::respond;
use crate::gateway::tls_listener::OverTls;
use gatefold_compiler::ir::matcher::host_without_port;
use gatefold_compiler::ir::policy::{
    Redirect, RedirectLocation, RedirectParts, RedirectPath, RedirectScheme, RedirectTo,
};
use gatefold_compiler::ir::PathPattern;
use http::header::LOCATION;
use http::{request, HeaderValue, StatusCode};

pub struct RedirectPolicy {
    target: Target,
    status: StatusCode,
    /// The route's own path, to bind `{params}` and find a prefix's rest.
    route_path: PathPattern,
}

/// What `location` is built from.
enum Target {
    /// `to`.
    To {
        /// `scheme://host[:port]`, or empty for a path on the request's host.
        origin: String,
        /// The path template, then `?query` if `to` has one: `{params}` filled in.
        template: String,
        has_query: bool,
        /// `#fragment`, if `to` has one: after the request's query.
        fragment: String,
    },
    /// `scheme`, `host`, `port`, `path` / `replace-prefix`.
    Parts(RedirectParts),
}

impl RedirectPolicy {
    pub fn new(cfg: &Redirect, route_path: &PathPattern) -> Result<RedirectPolicy, String> {
        let target = match &cfg.location {
            RedirectLocation::To(to) => {
                let origin = RedirectTo {
                    path: String::new(),
                    query: None,
                    fragment: None,
                    ..to.clone()
                };
                let mut template = to.path.clone();
                if let Some(q) = &to.query {
                    template.push('?');
                    template.push_str(q);
                }
                Target::To {
                    origin: origin.to_string(),
                    template,
                    has_query: to.query.is_some(),
                    fragment: to
                        .fragment
                        .as_ref()
                        .map_or(String::new(), |f| format!("#{f}")),
                }
            }
            RedirectLocation::Parts(p) => Target::Parts(p.clone()),
        };
        Ok(RedirectPolicy {
            target,
            status: StatusCode::from_u16(cfg.status.code()).map_err(|e| e.to_string())?,
            route_path: route_path.clone(),
        })
    }

    /// The `location` for this request, or `None` when it would be unsafe
    /// or cannot be built (answered 400).
    /// The `location` header, or `None` when the answer must be 400.
    fn location(&self, req: &request::Parts, ctx: &Ctx) -> Option<HeaderValue> {
        let params: Vec<_> = self
            .route_path
            .matches(&ctx.path)
            .into_iter()
            .flatten()
            .collect();
        match &self.target {
            Target::To {
                origin,
                template,
                has_query,
                fragment,
            } => {
                let mut location = origin.clone();
                location.push_str(&fill(template, &params));
                if network_path(&location) {
                    // A parameter made a local redirect point at another host
                    // (`/{id}` with `\evil.example`: browsers read `/\` as `//`).
                    return None;
                }
                if let Some(q) = &ctx.query {
                    location.push(if *has_query { '&' } else { '?' });
                    location.push_str(q);
                }
                location.push_str(fragment);
                HeaderValue::from_str(&location).ok()
            }
            Target::Parts(p) => {
                let path = match &p.path {
                    None => ctx.path.clone(),
                    Some(RedirectPath::Template(t)) => fill(t, &params),
                    Some(RedirectPath::ReplacePrefix(prefix)) => {
                        let tail = prefix_tail(&self.route_path, &ctx.path);
                        let mut path = prefix.trim_end_matches('/').to_string();
                        path.push_str(tail);
                        if path.is_empty() {
                            path.push('/');
                        }
                        path
                    }
                };
                let over_tls = req.extensions.get::<OverTls>().is_some();
                let listener = if over_tls {
                    RedirectScheme::Https
                } else {
                    RedirectScheme::Http
                };
                parts_location(
                    p,
                    listener,
                    ctx.host.as_deref(),
                    &path,
                    ctx.query.as_deref(),
                )
            }
        }
    }
}

/// A part-wise redirect's `location`: the request's URL (the `listener`'s
/// scheme, the client's `authority` with its port, `path`, `query`) with
/// the parts `p` gives replaced (its `path` is already in `path`). `None`
/// when the answer must be 400: a path that is not absolute or starts
/// like another host's, an authority that is not a plain host and port,
/// or a location no header value can hold (a control character). The Lua
/// targets build the same (`gatefold_lua_script::LOCATION`, tested against
/// this).
pub fn parts_location(
    p: &RedirectParts,
    listener: RedirectScheme,
    authority: Option<&str>,
    path: &str,
    query: Option<&str>,
) -> Option<HeaderValue> {
    // Even after an authority, a path that starts like another host's is
    // refused: the rule is the same for every form.
    if !path.starts_with('/') || network_path(path) {
        return None;
    }
    let authority = authority?;
    let req_host = host_without_port(authority);
    if !plain_host(req_host) {
        return None;
    }
    let req_port = match &authority[req_host.len()..] {
        "" => None,
        p => Some(p.strip_prefix(':')?.parse::<u16>().ok()?),
    };
    let scheme = p.scheme.unwrap_or(listener);
    // A new scheme has its own default port; the request's would be the
    // old scheme's.
    let port = p.port.or(if p.scheme.is_none() { req_port } else { None });
    let host = p.host.as_deref().unwrap_or(req_host);
    let mut location = format!("{}://{host}", scheme.as_str());
    if let Some(port) = port.filter(|port| *port != scheme.default_port()) {
        location.push(':');
        location.push_str(&port.to_string());
    }
    location.push_str(path);
    if let Some(q) = query {
        location.push('?');
        location.push_str(q);
    }
    HeaderValue::from_str(&location).ok()
}

/// The rest of `path` after the segments a prefix route's pattern matched,
/// with its leading `/`: `/v1/*` on `/v1/a/b` gives `/a/b`, on `/v1` gives ``.
fn prefix_tail<'p>(pattern: &PathPattern, path: &'p str) -> &'p str {
    let mut tail = path;
    for _ in &pattern.segments {
        let after = tail.strip_prefix('/').unwrap_or(tail);
        tail = after.find('/').map_or("", |i| &after[i..]);
    }
    tail
}

/// Whether a request's host (without port) is a plain DNS name, IPv4 or
/// bracketed IPv6 address, safe to write into a `location`.
fn plain_host(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Replaces `{name}` in `template` with the bound params.
pub fn fill(template: &str, params: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match params.iter().find(|(n, _)| *n == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether a `location` starts like a network-path reference (`//host`),
/// counting `\` as `/` the way browsers do.
fn network_path(location: &str) -> bool {
    let b = location.as_bytes();
    b.len() >= 2 && matches!(b[0], b'/' | b'\\') && matches!(b[1], b'/' | b'\\')
}

impl PhaseHooks for RedirectPolicy {
    fn request_filter(&self, req: &request::Parts, ctx: &mut Ctx) -> Flow {
        let Some(location) = self.location(req, ctx) else {
            return Flow::Stop(respond::bad_request());
        };
        let mut resp = respond::empty(self.status);
        resp.headers_mut().insert(LOCATION, location);
        Flow::Answer(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_routes_rest_keeps_its_leading_slash() {
        let p: PathPattern = "/v1/*".parse().unwrap();
        assert_eq!(prefix_tail(&p, "/v1/a/b"), "/a/b");
        assert_eq!(prefix_tail(&p, "/v1/"), "/");
        assert_eq!(prefix_tail(&p, "/v1"), "");
        let p: PathPattern = "/api/v1/*".parse().unwrap();
        assert_eq!(prefix_tail(&p, "/api/v1/x//y"), "/x//y");
        let p: PathPattern = "/*".parse().unwrap();
        assert_eq!(prefix_tail(&p, "//evil.example"), "//evil.example");
    }

    #[test]
    fn only_plain_hosts_go_into_a_location() {
        for ok in [
            "example.com",
            "a-b.example.com",
            "127.0.0.1",
            "[::1]",
            "localhost",
        ] {
            assert!(plain_host(ok), "{ok}");
        }
        for bad in ["", "evil.example/x", "a@b", "[::1", "a b", "ex\\ample"] {
            assert!(!plain_host(bad), "{bad}");
        }
    }
}
