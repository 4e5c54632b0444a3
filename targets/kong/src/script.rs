//! `script`: both sides of a script policy in one `post-function` plugin,
//! the Lua of `gatefold-lua-script` with its Kong PDK adapter.
//!
//! post-function (priority -1000) runs after every other plugin of the
//! phase: in `access` after authentication, ACL and rate limiting (phases
//! 4 to 6), as phase 8 must; in `header_filter` after
//! response-transformer, as phase 13 wants the response script after
//! `response-headers`. The same post-function answers a `mock` after the
//! script (see `functions`). request-transformer (phase 10) runs before
//! it in Kong, so [`conflicts`] refuses a route holding a request script
//! and `request-headers` (pre-function, priority 1,000,000, would run the
//! script before authentication, which is worse).
//!
//! The runtime (about 60 KB of Lua, more with the case tables) is in the
//! config once, not once per route: [`runtime_chunk`] is the global
//! pre-function's `rewrite` chunk. Kong loads a serverless chunk once per
//! worker and config and keeps the function it returns (its upvalues
//! with it: pre-function/_handler.lua); its `rewrite` phase runs the
//! global plugins only, whatever plugins the route has (kong/init.lua,
//! `execute_global_plugins_iterator`), so it runs on every request, before
//! any route's `access`. It hands the runtime over in `kong.ctx.shared`
//! (a table per request), where each route's chunks ([`chunks`]) read it.
//! A route chunk without it fails closed: the request side answers 500
//! `{"error":"script failed"}` and logs why.

use gatefold_compiler::diag::{Diagnostic, Diagnostics};
use gatefold_compiler::ir::policy::Policy;
use gatefold_compiler::ir::script::Side;
use gatefold_compiler::ir::{Loc, PolicyId, PolicyKind, Script, ValidIr};
use gatefold_compiler::target::span_of;
use gatefold_lua_script::lua::string as s;
use gatefold_lua_script::{
    bound_body_filter_chunk, bound_pass_chunk, emit_bound_chunk, Handed, Host, Places,
};

/// Where a request's chunks find the runtime the rewrite chunk handed over.
const RUNTIME: &str = "kong.ctx.shared.gatefold_script_runtime";

/// The scripts the routes run.
fn used(ir: &ValidIr) -> impl Iterator<Item = &Script> {
    let ids: std::collections::BTreeSet<&PolicyId> =
        ir.routes.iter().flat_map(|r| r.chain.iter()).collect();
    ids.into_iter()
        .filter_map(|id| match &ir.policies.get(id)?.policy {
            Policy::Script(sc) => Some(sc),
            _ => None,
        })
}

/// The global pre-function's `rewrite` chunk when a route runs a script:
/// the runtime built once per worker and config (with the case tables when
/// a script needs them), handed to each request in `kong.ctx.shared`.
pub fn runtime_chunk(ir: &ValidIr) -> Option<String> {
    let mut any = false;
    let mut case = false;
    for sc in used(ir) {
        any = true;
        case |= sc
            .request
            .iter()
            .chain(sc.response.iter())
            .any(gatefold_lua_script::uses_case);
    }
    any.then(|| {
        format!(
            "-- gatefold: the script runtime, built once per worker and config; every\n-- request gets it in kong.ctx.shared for its route's script chunks\nlocal R = (function()\n{}end)()\nreturn function()\n  {RUNTIME} = R\nend\n",
            gatefold_lua_script::runtime_chunk(Host::Kong, case)
        )
    })
}

/// The chunks carrying `s` out in the route's post-function: the access
/// chunk (the request script, or the pass chunk marking phase 8 passed),
/// then the header_filter and body_filter chunks of the response side.
/// Each reads the runtime [`runtime_chunk`] handed over.
pub fn chunks(ir: &ValidIr, id: &PolicyId, sc: &Script) -> (String, Vec<String>, Vec<String>) {
    let places = Places::of(ir, id);
    // Without the runtime the request side fails closed; the response
    // side then has nothing to do (its request never passed phase 8).
    let missing = format!(
        "    kong.log.err({})\n    {}",
        s(&format!(
            "gatefold: script `{id}` ({}) did not run: no script runtime in kong.ctx.shared (the global pre-function's rewrite chunk hands it over)",
            places.policy
        )),
        crate::functions::exit(500, "script failed")
    );
    let request = Handed {
        runtime: RUNTIME,
        missing: &missing,
    };
    let access = match &sc.request {
        Some(p) => emit_bound_chunk(p, Side::Request, &places, request),
        // The response script runs only on requests that passed phase 8.
        None => bound_pass_chunk(request),
    };
    let response = Handed {
        runtime: RUNTIME,
        missing: "    return",
    };
    let (header_filter, body_filter) = match &sc.response {
        Some(p) => (
            vec![emit_bound_chunk(p, Side::Response, &places, response)],
            bound_body_filter_chunk(Host::Kong, RUNTIME)
                .into_iter()
                .collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    (access, header_filter, body_filter)
}

/// Routes whose chain holds a script and a plugin Kong would run on the
/// wrong side of it (see the module docs): one error per route.
pub fn conflicts(ir: &ValidIr, out: &mut Diagnostics, origin: Loc) {
    for r in &ir.routes {
        let Some((sid, script)) =
            r.chain
                .iter()
                .find_map(|id| match &ir.policies.get(id)?.policy {
                    Policy::Script(s) => Some((id, s)),
                    _ => None,
                })
        else {
            continue;
        };
        // The mock is answered in the same post-function, after the script.
        if script.request.is_none() {
            continue;
        }
        let Some(other) = r.policy_id(PolicyKind::RequestHeaders) else {
            continue;
        };
        let (plugin, why) = (
            "request-transformer",
            "the request script would see and could undo the headers phase 10 sets",
        );
        let loc = ir.sources.policies.get(sid).copied().unwrap_or(origin);
        out.push(
            Diagnostic::error(
                "unsupported-policy",
                span_of(loc),
                format!(
                    "target `kong` cannot order `{sid}` and `{other}` on route `{}`: Kong runs {plugin} before post-function, which runs scripts, so {why}",
                    r.id
                ),
            )
            .with_help(format!(
                "for the Kong target, keep `{other}` off routes with this script, or do its work in the script"
            )),
        );
    }
}
