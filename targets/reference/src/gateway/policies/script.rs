//! `script`: the request script at phase 8, the response script at phase 13
//! (after `response-headers`), both evaluated natively ([`crate::script`]).
//!
//! A request script's header changes and `req.setPath` are applied when it
//! lets the request go on (so the upstream, and every later phase, sees
//! them); its `respond()` answers before phase 9. A run-time failure on
//! either side answers 500 `{"error":"script failed"}` and is logged with
//! the failing operation's place in the spec.

use crate::gateway::context::Ctx;
use crate::gateway::phases::{Flow, PhaseHooks};
use crate::gateway::respond;
use crate::script::{run, Answer, Failure, Host, Outcome};
use gatefold_compiler::ir::script::{Program, ReqField, Side};
use gatefold_compiler::ir::{Loc, PolicyId, Script};
use http::header::CONTENT_TYPE;
use http::{request, response, HeaderMap, HeaderName, HeaderValue, StatusCode};

/// One side of a `script` policy instance: the request script (placed at
/// phase 8) or the response script (placed after `response-headers`).
pub struct ScriptPolicy {
    program: Program,
    side: Side,
    /// `file:line:col` of each failure site, and of the policy itself.
    sites: Vec<String>,
    place: String,
    id: PolicyId,
}

/// A request script's changes, applied by `settle_request`.
#[derive(Default)]
pub struct Pending {
    /// In order; `None` removes the header.
    edits: Vec<(HeaderName, Option<HeaderValue>)>,
}

/// Marks a response whose response script failed: the gateway replaces it
/// with 500 `{"error":"script failed"}` (see `service::late`).
#[derive(Clone, Copy, Debug)]
pub struct ScriptFailed;

impl ScriptPolicy {
    /// The request and the response side of a script, as it has them;
    /// `describe` turns a spec location into `file:line:col`.
    pub fn new(
        id: &PolicyId,
        s: &Script,
        sites: &[Loc],
        place: Option<Loc>,
        describe: impl Fn(Loc) -> String,
    ) -> (Option<ScriptPolicy>, Option<ScriptPolicy>) {
        let sites: Vec<String> = sites.iter().map(|l| describe(*l)).collect();
        let place = place.map_or_else(|| "?".to_string(), describe);
        let make = |program: &Option<Program>, side| {
            program.as_ref().map(|p| ScriptPolicy {
                program: p.clone(),
                side,
                sites: sites.clone(),
                place: place.clone(),
                id: id.clone(),
            })
        };
        (
            make(&s.request, Side::Request),
            make(&s.response, Side::Response),
        )
    }

    fn report(&self, side: &str, f: &Failure) {
        let at = f
            .site
            .and_then(|s| self.sites.get(s.0 as usize))
            .unwrap_or(&self.place);
        crate::say!(
            "gatefold: {side} script of `{}` failed at {at}: {}",
            self.id,
            f.reason
        );
    }
}

fn answer(a: Answer) -> http::Response<crate::gateway::Body> {
    let mut r = respond::with_body(
        StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        a.body.into(),
    );
    if let Some(ct) = a.content_type {
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    for (n, v) in a.headers {
        // Names and values were checked by the evaluator.
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            r.headers_mut().insert(n, v);
        }
    }
    r
}

/// The request as a request script sees it.
struct RequestHost<'a> {
    head: &'a request::Parts,
    path: &'a str,
    query: Option<&'a str>,
    ip: &'a str,
    consumer: Option<&'a str>,
    pending: Pending,
    set_path: Option<String>,
    id: &'a PolicyId,
}

impl Host for RequestHost<'_> {
    fn req_field(&self, field: ReqField) -> Option<String> {
        match field {
            ReqField::Method => Some(self.head.method.as_str().to_string()),
            ReqField::Path => Some(self.set_path.as_deref().unwrap_or(self.path).to_string()),
            ReqField::Ip => Some(self.ip.to_string()),
            ReqField::Consumer => self.consumer.map(str::to_string),
        }
    }
    fn status(&self) -> u16 {
        0
    }
    fn header(&self, _side: Side, name: &str) -> Option<String> {
        // The script's own changes first, the last one winning.
        if let Some((_, v)) = self.pending.edits.iter().rev().find(|(n, _)| n == name) {
            return v
                .as_ref()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        }
        joined(&self.head.headers, name)
    }
    fn query(&self, name: &str) -> Option<String> {
        query_param(self.query?, name)
    }
    fn set_header(&mut self, _side: Side, name: &str, value: &str) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.pending.edits.push((n, Some(v)));
        }
    }
    fn remove_header(&mut self, _side: Side, name: &str) {
        if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
            self.pending.edits.push((n, None));
        }
    }
    fn set_path(&mut self, path: &str) {
        self.set_path = Some(path.to_string());
    }
    fn log(&mut self, message: &str) {
        crate::say!("gatefold: script `{}`: {message}", self.id);
    }
}

/// The response as a response script sees it (changed in place).
struct ResponseHost<'a> {
    parts: &'a mut response::Parts,
    id: &'a PolicyId,
}

impl Host for ResponseHost<'_> {
    fn req_field(&self, _field: ReqField) -> Option<String> {
        None
    }
    fn status(&self) -> u16 {
        self.parts.status.as_u16()
    }
    fn header(&self, _side: Side, name: &str) -> Option<String> {
        joined(&self.parts.headers, name)
    }
    fn query(&self, _name: &str) -> Option<String> {
        None
    }
    fn set_header(&mut self, _side: Side, name: &str, value: &str) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.parts.headers.insert(n, v);
        }
    }
    fn remove_header(&mut self, _side: Side, name: &str) {
        self.parts.headers.remove(name);
    }
    fn set_path(&mut self, _path: &str) {}
    fn log(&mut self, message: &str) {
        crate::say!("gatefold: script `{}`: {message}", self.id);
    }
}

/// A header's values joined by `, ` (as `Headers.get` does), or `None`.
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut out = String::from_utf8_lossy(first.as_bytes()).into_owned();
    for v in values {
        out.push_str(", ");
        out.push_str(&String::from_utf8_lossy(v.as_bytes()));
    }
    Some(out)
}

/// The first value of `name` in a query string, decoded as
/// `URLSearchParams` does (`+` is a space, `%XX` a byte, bad escapes kept,
/// empty pairs such as `&&` skipped, so the name `""` is not found there).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').filter(|p| !p.is_empty()).find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let found = if plain(k) {
            k == name
        } else {
            form_decode(k) == name
        };
        found.then(|| form_decode(v))
    })
}

/// Nothing to decode: no `+`, no `%`.
fn plain(s: &str) -> bool {
    !s.bytes().any(|b| b == b'+' || b == b'%')
}

fn form_decode(s: &str) -> String {
    if plain(s) {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            // Two hex digits exactly: `from_str_radix` alone would take
            // `%+1` as byte 1 (it accepts a sign).
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII digits");
                out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl PhaseHooks for ScriptPolicy {
    fn request_filter(&self, req: &request::Parts, ctx: &mut Ctx) -> Flow {
        if self.side != Side::Request {
            return Flow::Continue;
        }
        let program = &self.program;
        let mut vars = std::mem::take(&mut ctx.script_vars);
        let mut host = RequestHost {
            head: req,
            path: ctx.script_path.as_deref().unwrap_or(&ctx.path),
            query: ctx.query.as_deref(),
            ip: ctx.client_text(),
            consumer: ctx.consumer.as_ref().map(|c| &*c.name),
            pending: Pending::default(),
            set_path: None,
            id: &self.id,
        };
        let result = run(program, &mut host, &mut vars);
        let (pending, set_path) = (host.pending, host.set_path);
        ctx.script_vars = vars;
        match result {
            Ok(Outcome::Continue) => {
                if set_path.is_some() {
                    ctx.script_path = set_path;
                }
                ctx.script_pending.push(pending);
                Flow::Continue
            }
            Ok(Outcome::Respond(a)) => Flow::Stop(answer(a)),
            Err(f) => {
                self.report("request", &f);
                Flow::Stop(respond::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "script failed",
                ))
            }
        }
    }

    fn settle_request(&self, req: &mut request::Parts, ctx: &mut Ctx) {
        for pending in ctx.script_pending.drain(..) {
            for (name, value) in pending.edits {
                match value {
                    Some(v) => {
                        req.headers.insert(name, v);
                    }
                    None => {
                        req.headers.remove(name);
                    }
                }
            }
        }
    }

    fn response_filter(&self, resp: &mut response::Parts, ctx: &Ctx) {
        if self.side != Side::Response {
            return;
        }
        let program = &self.program;
        if resp.extensions.get::<ScriptFailed>().is_some() {
            return;
        }
        let mut vars = ctx.script_vars.clone();
        let mut host = ResponseHost {
            parts: resp,
            id: &self.id,
        };
        match run(program, &mut host, &mut vars) {
            Ok(_) => {}
            Err(f) => {
                self.report("response", &f);
                resp.extensions.insert(ScriptFailed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_decode_as_url_search_params_does() {
        let q = "a=1&tenant=Acme+Corp&x=%41%2&tenant=second&e=%C3%A9";
        assert_eq!(query_param(q, "tenant").as_deref(), Some("Acme Corp"));
        assert_eq!(query_param(q, "x").as_deref(), Some("A%2"));
        assert_eq!(query_param(q, "e").as_deref(), Some("é"));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param("flag", "flag").as_deref(), Some(""));
        // Empty pairs are skipped; `=x` is a pair with an empty name.
        assert_eq!(query_param("&&a=1&", ""), None);
        assert_eq!(query_param("", ""), None);
        assert_eq!(query_param("&=x", "").as_deref(), Some("x"));
        // A sign is not a hex digit: kept as written, `+` still a space.
        assert_eq!(query_param("x=%+1&y=%-1", "x").as_deref(), Some("% 1"));
        assert_eq!(query_param("x=%+1&y=%-1", "y").as_deref(), Some("%-1"));
    }
}
