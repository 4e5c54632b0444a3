//! The Lua back end of portable scripts: one emitter from the script IR
//! ([`Program`]) to Lua, a runtime prelude that keeps JavaScript's
//! semantics (the reference gateway's evaluator is the meaning, see
//! `gatefold_compiler::ir::script`), and one small adapter per host
//! ([`Host`]): Kong's PDK, NGINX's `ngx.*`, Envoy's Lua filter handle.
//!
//! # What a chunk is
//!
//! [`emit_chunk`] gives a Lua chunk that, when loaded and run once, returns
//! the function to call for each request. It holds the prelude (adapter and
//! runtime), the compiled program, its cost bound and the spec positions of
//! its failure sites. Calling the function runs one side of the script and
//! tells the host the outcome: header changes and `req.setPath` applied
//! (only when the script lets the request go on), `respond()`'s answer
//! sent, or, on a run-time failure, 500 `{"error":"script failed"}` sent
//! and `gatefold: request script of `ID` failed at FILE:LINE:COL: REASON`
//! logged at error level. A response script runs only on a response made
//! after phase 8 was passed: the request side marks it (a policy with only
//! a response script uses [`pass_chunk`] at phase 8).
//!
//! # Wiring a host
//!
//! - **Kong** (`post-function`, which runs after authentication, ACL and
//!   rate limiting): `config.access = [emit_chunk(request) or pass_chunk]`,
//!   `config.header_filter = [emit_chunk(response)]`,
//!   `config.body_filter = [body_filter_chunk]`. Kong caches the returned
//!   function and calls it per request; the runtime uses only what Kong's
//!   `untrusted_lua = sandbox` allows.
//! - **NGINX**: load each chunk once, in `init_by_lua_block`, into a table
//!   (`gatefold_scripts["ID:request"] = (function() CHUNK end)()`); call it
//!   from `access_by_lua_block` (request side, or the pass chunk) and
//!   `header_filter_by_lua_block` (response side); call the body-filter
//!   chunk's function in `body_filter_by_lua_block`. `req.consumer` reads
//!   `ngx.ctx.gatefold_consumer`.
//! - **Envoy** (`envoy.filters.http.lua`, per route): `local req =
//!   (function() CHUNK end)()` and `function envoy_on_request(h) req(h)
//!   end`, likewise `envoy_on_response`; the handle is passed through to
//!   the adapter. ctx travels in dynamic metadata (`gatefold.script`);
//!   `req.consumer` reads the `consumer` key of the `gatefold` metadata.
//!
//! # The adapter contract
//!
//! An adapter is a Lua chunk returning a table `H` with: `begin(side,
//! ...)`, `method()`, `path()`, `ip()`, `consumer()` (nil when nobody),
//! `raw_query()` (nil when none), `req_header(name)` / `res_header(name)`
//! (lowercase name; the values joined by `, `, or nil), `status()`,
//! `set_header(side, name, value)`, `remove_header(side, name)`,
//! `set_path(p)`, `ctx_load()` / `ctx_store(t)` (the string map of `ctx`),
//! `pass()` / `passed()`, `log(msg)`, `log_error(msg)`, `respond(status,
//! body, headers)` (headers as `{ {name, value}, ... }`) and `fail(side)`
//! (answer 500 `{"error":"script failed"}`). Names and values reaching it
//! are checked already (HTTP tokens; printable ASCII without CR/LF).
//!
//! Every string from the spec reaches the Lua source as an escaped quoted
//! string ([`lua::string`]); the output depends only on its inputs.
//!
//! # Beside scripts
//!
//! [`JWT`] is the other Lua two hosts share: `jwt` verification (token,
//! JSON as serde_json reads and writes it, jsonwebtoken's header and claim
//! types), so NGINX and Envoy decide a token the same way and only the
//! signature check is each host's own.

#![forbid(unsafe_code)]

mod emit;
pub mod lua;

use gatefold_compiler::ir::script::{Program, Side};
use std::fmt::Write;

/// A runtime host the Lua runs in.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// Kong's PDK (`kong.request`, `kong.service.request`, `kong.response`,
    /// `kong.ctx.shared`), in `post-function`.
    Kong,
    /// OpenResty's `ngx.req`, `ngx.var`, `ngx.ctx`, `ngx.header`, `ngx.exit`.
    Nginx,
    /// Envoy's Lua filter: `handle:headers()`, `respond()`,
    /// `streamInfo():dynamicMetadata()`.
    Envoy,
}

/// `jwt` verification without a host API: a chunk returning a module
/// whose `check(p, authorization, now, verify)` gives `true, consumer,
/// headers` or `false`; `verify(p, signing_input, signature)` is the
/// host's signature check. Also `decode`/`encode` (JSON as serde_json) and
/// `b64url` (base64url as the `base64` crate's URL_SAFE_NO_PAD).
pub const JWT: &str = include_str!("lua/jwt.lua");

const RUNTIME: &str = include_str!("lua/runtime.lua");
const CASE_TABLES: &str = include_str!("lua/case.lua");

/// The Unicode case tables (generated from Rust's mappings; 13 kB): a chunk
/// returning the table to store as `R.case`. [`emit_chunk`] adds them to a
/// chunk whose program calls `toLowerCase` or `toUpperCase`; a host that
/// loads the prelude once (NGINX) can set `R.case` once instead.
pub fn case_tables() -> &'static str {
    CASE_TABLES
}

macro_rules! prelude_of {
    ($adapter:literal) => {
        concat!(
            "local H = (function()\n",
            include_str!($adapter),
            "end)()\n",
            include_str!("lua/runtime.lua")
        )
    };
}

impl Host {
    /// The adapter's Lua text (a chunk returning `H`).
    pub fn adapter(self) -> &'static str {
        match self {
            Host::Kong => include_str!("lua/kong.lua"),
            Host::Nginx => include_str!("lua/nginx.lua"),
            Host::Envoy => include_str!("lua/envoy.lua"),
        }
    }
}

/// The runtime alone: Lua text that expects the adapter as the local `H`
/// and returns the runtime table `R`.
pub fn runtime() -> &'static str {
    RUNTIME
}

/// The prelude for a host: its adapter and the runtime, a chunk that
/// returns the runtime table `R` (with `R.run` and `R.pass`).
pub fn prelude(host: Host) -> &'static str {
    match host {
        Host::Kong => prelude_of!("lua/kong.lua"),
        Host::Nginx => prelude_of!("lua/nginx.lua"),
        Host::Envoy => prelude_of!("lua/envoy.lua"),
    }
}

/// The prelude for an adapter given as text (a test host, another host).
pub fn prelude_with(adapter: &str) -> String {
    format!("local H = (function()\n{adapter}end)()\n{RUNTIME}")
}

/// Where a script is in the spec, for the failure log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Places {
    /// The policy instance's id, as `gatefold explain` prints it.
    pub id: String,
    /// `file:line:col` of the policy (failures without a site).
    pub policy: String,
    /// `file:line:col` of each failure site, indexed by [`Site`](gatefold_compiler::ir::script::Site).
    pub sites: Vec<String>,
}

impl Places {
    /// The places of policy instance `id` in `ir`'s source map (`?` for
    /// a policy the map does not place).
    pub fn of(ir: &gatefold_compiler::ir::ValidIr, id: &gatefold_compiler::ir::PolicyId) -> Places {
        let describe = |l: gatefold_compiler::ir::Loc| ir.sources.describe(l);
        Places {
            id: id.to_string(),
            policy: ir
                .sources
                .policies
                .get(id)
                .map_or_else(|| "?".to_string(), |l| describe(*l)),
            sites: ir
                .sources
                .scripts
                .get(id)
                .map_or_else(Vec::new, |ls| ls.iter().map(|l| describe(*l)).collect()),
        }
    }
}

/// The program alone: a Lua expression `function(R) ... end` returning the
/// program function (of its fuel) bound to the runtime `R`.
pub fn program(p: &Program) -> String {
    emit::program(p)
}

/// A whole chunk for one side of a script on `host` (see the crate docs).
pub fn emit_chunk(p: &Program, side: Side, host: Host, places: &Places) -> String {
    emit_chunk_with(prelude(host), p, side, places)
}

/// [`emit_chunk`] with a prelude of the caller's ([`prelude_with`]).
pub fn emit_chunk_with(prelude: &str, p: &Program, side: Side, places: &Places) -> String {
    let side = match side {
        Side::Request => "request",
        Side::Response => "response",
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- gatefold: {side} script of policy {} (generated; do not edit)",
        lua::string(&places.id)
    );
    out.push_str("local R = (function()\n");
    out.push_str(prelude);
    out.push_str("end)()\n");
    if emit::uses_case(&p.body) {
        out.push_str("R.case = (function()\n");
        out.push_str(CASE_TABLES);
        out.push_str("end)()\n");
    }
    let _ = writeln!(out, "local P = ({})(R)", program(p));
    let sites: Vec<String> = places.sites.iter().map(|s| lua::string(s)).collect();
    let _ = writeln!(out, "local S = {{{}}}", sites.join(", "));
    let _ = writeln!(
        out,
        "return function(...) return R.run(P, \"{side}\", {}, S, {}, {}, ...) end",
        p.cost,
        lua::string(&places.policy),
        lua::string(&places.id)
    );
    out
}

/// The chunk for phase 8 of a policy with only a response script: marks
/// that the request passed phase 8, so the response script runs.
pub fn pass_chunk(host: Host) -> String {
    format!(
        "local H = (function()\n{}end)()\nreturn function(...) H.begin(\"request\", ...) H.pass() end\n",
        host.adapter()
    )
}

/// The body-filter chunk a host with a separate body phase needs (Kong's
/// `body_filter`, NGINX's `body_filter_by_lua_block`): it replaces the
/// body of a response whose response script failed. Envoy replaces the
/// body in the response call itself: `None`.
pub fn body_filter_chunk(host: Host) -> Option<String> {
    match host {
        Host::Envoy => None,
        _ => Some(format!(
            "local H = (function()\n{}end)()\nreturn function() H.body_filter() end\n",
            host.adapter()
        )),
    }
}
