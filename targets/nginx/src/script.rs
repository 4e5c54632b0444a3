//! `script`: each route holding a script gets `lua/gatefold/scripts/rN.lua`
//! (N its index), the chunks of `gatefold-lua-script` with its NGINX
//! adapter: `request()` runs at phase 8 from `access.lua` (after
//! authentication, acl and rate limiting, before the answer of mock or
//! redirect and phase 10), `header()` / `answer()` from the route's
//! `header_filter_by_lua` (its own location and its error locations, and
//! its answer's location) and `body()` from its `body_filter_by_lua` (the
//! 500 body of a failed response script).
//!
//! A route with a script adds its response headers in Lua, not with
//! `add_header`: nginx's Lua header filter runs before `add_header`'s, and
//! the response script must see the headers phase 13 and the earlier
//! phases promised (the request id, cors, rate limit, deprecation,
//! `response-headers`), and replace them. [`Promise`] is one such header;
//! `lua/gatefold/promised.lua` adds them. The route's locations keep one
//! `add_header` whose value is always empty (never sent): `add_header` is
//! inherited from the server all or nothing, and the server's request id
//! would otherwise come after the script.
//!
//! Variables carry what must survive the internal redirect to a route's
//! answer or error location: `$gf_spath` (the path `req.setPath` set, where
//! the upstream path starts), `$gf_script_ctx` and `$gf_script_passed`.

use crate::escape::lua as s;
use crate::model::{dr, gen, raw, Item, Model};
use gatefold_compiler::ir::policy::Policy;
use gatefold_compiler::ir::script::Side;
use gatefold_compiler::ir::{Ir, PolicyId, PolicyKind, Route, Script, ValidIr};
use gatefold_lua_script::{body_filter_chunk, emit_chunk, pass_chunk, Host, Places};
use std::fmt::Write;

/// `lua/gatefold/promised.lua`: adds a route's promised response headers.
pub const PROMISED: &str = include_str!("../lua/promised.lua");

/// The route's script, if its chain holds one.
pub fn script_of<'a>(ir: &'a Ir, r: &'a Route) -> Option<(&'a PolicyId, &'a Script)> {
    r.chain.iter().find_map(|id| {
        if id.kind != PolicyKind::Script {
            return None;
        }
        match &ir.policies.get(id)?.policy {
            Policy::Script(s) => Some((id, s)),
            _ => None,
        }
    })
}

/// Whether the route's request may change the upstream path (`$gf_spath`).
pub fn sets_path(ir: &Ir, r: &Route) -> bool {
    script_of(ir, r).is_some_and(|(_, s)| s.request.is_some())
}

/// A response header a route with a script adds in Lua before its response
/// script runs, where another route has `add_header`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promise {
    /// The header's name (lowercase).
    pub name: String,
    /// Where its value comes from.
    pub value: Value,
    /// Added to the values already there (`vary`, `response-headers`
    /// `add`), else replaces them.
    pub append: bool,
    /// On which responses.
    pub when: When,
}

/// The value of a [`Promise`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An nginx variable (its name without `$`); when empty the header is
    /// left off, as `add_header` does.
    Var(String),
    /// A value from the spec (an empty one is kept).
    Lit(String),
    /// Removed (`response-headers` `remove`).
    Gone,
}

/// The responses a [`Promise`] is added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Every response of the route (request id, cors, rate limit: their
    /// variables are empty before their phase).
    Always,
    /// Unless a phase before 7 refused the request (`$gf_stop`): deprecation.
    Live,
    /// Only when the request passed phase 8 (`$gf_script_passed`): the
    /// answer of mock or redirect, `response-headers`. A failed response
    /// script's 500 leaves these off and keeps the others.
    Passed,
}

impl Promise {
    /// A header from a variable (`$name` or `name`).
    pub fn var(name: &str, var: &str, when: When) -> Promise {
        Promise {
            name: name.to_string(),
            value: Value::Var(var.trim_start_matches('$').to_string()),
            append: name == "vary",
            when,
        }
    }

    /// A header removed.
    pub fn gone(name: &str, when: When) -> Promise {
        Promise {
            name: name.to_string(),
            value: Value::Gone,
            append: false,
            when,
        }
    }

    /// A header with a value from the spec.
    pub fn lit(name: &str, value: &str, append: bool, when: When) -> Promise {
        Promise {
            name: name.to_string(),
            value: Value::Lit(value.to_string()),
            append,
            when,
        }
    }

    fn lua(&self) -> String {
        let mut out = format!("{{ n = {}", s(&self.name));
        match &self.value {
            Value::Var(v) => {
                let _ = write!(out, ", var = {}", s(v));
            }
            Value::Lit(v) => {
                let _ = write!(out, ", v = {}", s(v));
            }
            Value::Gone => out.push_str(", gone = true"),
        }
        if self.append {
            out.push_str(", add = true");
        }
        match self.when {
            When::Always => {}
            When::Live => out.push_str(", when = \"live\""),
            When::Passed => out.push_str(", when = \"passed\""),
        }
        out.push_str(" }");
        out
    }
}

/// What a route with a script adds in its header filter.
#[derive(Debug, Clone, Default)]
pub struct Promises {
    /// On the route's own responses (upstream, refusals, its errors).
    pub route: Vec<Promise>,
    /// On its answer's (mock or redirect), whose own headers come first.
    pub answer: Vec<Promise>,
}

/// The module path of route `i`'s script file.
fn module(i: usize) -> String {
    format!("gatefold.scripts.r{i}")
}

/// The file of route `i`'s script.
pub fn file_path(i: usize) -> String {
    format!("lua/gatefold/scripts/r{i}.lua")
}

/// Directives for the route's own location (before its access phase).
pub fn route_items(ir: &Ir, r: &Route) -> Vec<Item> {
    if script_of(ir, r).is_none() {
        return Vec::new();
    }
    vec![
        dr(["set", "$gf_spath", "$gf_path"]),
        Item::d(vec![raw("set"), raw("$gf_script_ctx"), gen("")]),
        Item::d(vec![raw("set"), raw("$gf_script_passed"), gen("")]),
    ]
}

/// The header and body filters of a location answering for route `i`:
/// `func` is `header` (the route's own location, its error locations) or
/// `answer` (its answer's location).
pub fn filter_items(i: usize, func: &str) -> Vec<Item> {
    vec![
        Item::d(vec![raw("add_header"), raw("x-gf-none"), gen("")])
            .note("never sent: keeps the server's add_header off (see lua/gatefold/promised.lua)"),
        Item::d(vec![
            raw("header_filter_by_lua"),
            gen(format!("require(\"{}\").{func}()", module(i))),
        ]),
        Item::d(vec![
            raw("body_filter_by_lua"),
            gen(format!("require(\"{}\").body()", module(i))),
        ]),
    ]
}

/// `lua/gatefold/scripts/rN.lua` for every route with a script.
pub fn files(ir: &ValidIr, model: &Model) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, r) in ir.routes.iter().enumerate() {
        let Some((id, s)) = script_of(ir, r) else {
            continue;
        };
        let promises = model
            .lua_routes
            .get(&i)
            .and_then(|l| l.script.clone())
            .unwrap_or_default();
        out.push((file_path(i), source(ir, id, s, &promises)));
    }
    out
}

fn source(ir: &ValidIr, id: &PolicyId, s: &Script, promises: &Promises) -> String {
    let places = Places::of(ir, id);
    let request = match &s.request {
        Some(p) => emit_chunk(p, Side::Request, Host::Nginx, &places),
        None => pass_chunk(Host::Nginx),
    };
    let mut out = String::from(
        "-- Generated by gatefold: a route's script (phase 8 and phase 13).\nlocal promised = require(\"gatefold.promised\")\nlocal M = {}\n",
    );
    out.push_str("M.request = (function()\n");
    out.push_str(&request);
    out.push_str("end)()\n");
    match &s.response {
        Some(p) => {
            out.push_str("local response = (function()\n");
            out.push_str(&emit_chunk(p, Side::Response, Host::Nginx, &places));
            out.push_str("end)()\n");
            out.push_str("M.body = (function()\n");
            out.push_str(&body_filter_chunk(Host::Nginx).unwrap_or_default());
            out.push_str("end)()\n");
        }
        None => out.push_str("local response = nil\nfunction M.body() end\n"),
    }
    for (name, list) in [("ROUTE", &promises.route), ("ANSWER", &promises.answer)] {
        let _ = writeln!(out, "local {name} = {{");
        for p in list.iter() {
            let _ = writeln!(out, "  {},", p.lua());
        }
        out.push_str("}\n");
    }
    let _ = writeln!(
        out,
        "local SERVER = {}",
        if ir.gateway.baseline.server_header {
            "true"
        } else {
            "false"
        }
    );
    out.push_str(
        "function M.header() promised.filter(ROUTE, SERVER, response) end\n\
         function M.answer() promised.filter(ANSWER, SERVER, response) end\n\
         return M\n",
    );
    out
}
