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
//!   rate limiting): the runtime once per configuration, [`runtime_chunk`]
//!   in the global `pre-function`'s `rewrite` (Kong runs only global
//!   plugins there, on every request), handing `R` to the request in
//!   `kong.ctx.shared`; each route's `config.access = [emit_bound_chunk(request)
//!   or bound_pass_chunk]`, `config.header_filter = [emit_bound_chunk(response)]`,
//!   `config.body_filter = [bound_body_filter_chunk]`, reading it from
//!   there. Kong caches the function a chunk returns and calls it per
//!   request; the runtime uses only what Kong's `untrusted_lua = sandbox`
//!   allows.
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

/// A part-wise `redirect`'s `location` without a host API: a chunk
/// returning a module whose `parts(r, listener, authority, path, query)`
/// gives the location or nil (answer 400), with the helpers it is made of
/// (`network_path`, `prefix_tail`, `plain_host`, `authority`). The NGINX,
/// Envoy and Kong targets all use it, so they build the same location as
/// the reference gateway.
pub const LOCATION: &str = include_str!("lua/location.lua");

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
    let mut out = header(side, places);
    out.push_str("local R = (function()\n");
    out.push_str(prelude);
    out.push_str("end)()\n");
    if uses_case(p) {
        out.push_str("R.case = (function()\n");
        out.push_str(CASE_TABLES);
        out.push_str("end)()\n");
    }
    let _ = writeln!(out, "local P = ({})(R)", program(p));
    out.push_str(&sites(places));
    let _ = writeln!(
        out,
        "return function(...) {} end",
        run_call(p, side, places)
    );
    out
}

/// Whether `p` calls `toLowerCase` or `toUpperCase`: the runtime it runs
/// on then needs the Unicode case tables ([`case_tables`]).
pub fn uses_case(p: &Program) -> bool {
    emit::uses_case(&p.body)
}

/// The runtime alone, for a host that loads it once (per worker and
/// configuration) and hands it to the chunks of [`emit_bound_chunk`]:
/// Lua statements ending in `return R`, the prelude of `host` with the
/// case tables set as `R.case` when `case` (when any program run on it
/// [`uses_case`]). `R.H` is the adapter.
pub fn runtime_chunk(host: Host, case: bool) -> String {
    let mut out = String::from("local R = (function()\n");
    out.push_str(prelude(host));
    out.push_str("end)()\n");
    if case {
        out.push_str("R.case = (function()\n");
        out.push_str(CASE_TABLES);
        out.push_str("end)()\n");
    }
    out.push_str("return R\n");
    out
}

/// How a chunk of a shared runtime ([`runtime_chunk`]) finds it per call.
#[derive(Copy, Clone, Debug)]
pub struct Handed<'a> {
    /// A Lua expression giving the runtime `R`, or nil when it was not
    /// handed over.
    pub runtime: &'a str,
    /// Lua statements run instead when `runtime` gives nil, ending the
    /// call (a `return` last). Kong's: the request side answers 500 and
    /// logs why, the response side returns (its request never passed
    /// phase 8).
    pub missing: &'a str,
}

/// One side of a script on a runtime loaded elsewhere and handed over per
/// call ([`Handed`]): [`emit_chunk`] without the prelude, so the chunk
/// holds only the program, its failure sites and its places. The program
/// is bound to the first runtime it is handed, and bound again when handed
/// another (a new configuration's); then the outcome is as [`emit_chunk`]'s.
pub fn emit_bound_chunk(p: &Program, side: Side, places: &Places, handed: Handed<'_>) -> String {
    let mut out = header(side, places);
    let _ = writeln!(out, "local PROGRAM = {}", program(p));
    out.push_str(&sites(places));
    out.push_str("local bound, P\nreturn function(...)\n");
    out.push_str(&fetch(handed));
    out.push_str("  if R ~= bound then bound, P = R, PROGRAM(R) end\n");
    let _ = writeln!(out, "  {}\nend", run_call(p, side, places));
    out
}

/// [`pass_chunk`] on a handed runtime ([`Handed`]).
pub fn bound_pass_chunk(handed: Handed<'_>) -> String {
    format!(
        "-- gatefold: phase 8 passed (the response script runs)\nreturn function(...)\n{}  return R.pass(...)\nend\n",
        fetch(handed)
    )
}

/// [`body_filter_chunk`] on a handed runtime (`runtime` as in [`Handed`]):
/// nothing when it was not handed over (no script ran, none failed).
pub fn bound_body_filter_chunk(host: Host, runtime: &str) -> Option<String> {
    match host {
        Host::Envoy => None,
        _ => Some(format!(
            "-- gatefold: the body of a response whose script failed\nreturn function()\n  local R = {runtime}\n  if R then return R.H.body_filter() end\nend\n"
        )),
    }
}

/// The first line of a script chunk: what it is.
fn header(side: Side, places: &Places) -> String {
    format!(
        "-- gatefold: {} script of policy {} (generated; do not edit)\n",
        side_name(side),
        lua::string(&places.id)
    )
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Request => "request",
        Side::Response => "response",
    }
}

/// `local S = { sites }`: the failure sites' spec positions.
fn sites(places: &Places) -> String {
    let sites: Vec<String> = places.sites.iter().map(|s| lua::string(s)).collect();
    format!("local S = {{{}}}\n", sites.join(", "))
}

/// The call running `P` (bound to `R`) on one side, as a return statement.
fn run_call(p: &Program, side: Side, places: &Places) -> String {
    format!(
        "return R.run(P, \"{}\", {}, S, {}, {}, ...)",
        side_name(side),
        p.cost,
        lua::string(&places.policy),
        lua::string(&places.id)
    )
}

/// `local R = <handed runtime>`, or the missing statements.
fn fetch(h: Handed<'_>) -> String {
    format!(
        "  local R = {}\n  if not R then\n{}\n  end\n",
        h.runtime, h.missing
    )
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
