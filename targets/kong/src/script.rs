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

use gatefold_compiler::diag::{Diagnostic, Diagnostics};
use gatefold_compiler::ir::policy::Policy;
use gatefold_compiler::ir::script::Side;
use gatefold_compiler::ir::{Loc, PolicyId, PolicyKind, Script, ValidIr};
use gatefold_compiler::target::span_of;
use gatefold_lua_script::{body_filter_chunk, emit_chunk, pass_chunk, Host, Places};

/// The chunks carrying `s` out in the route's post-function: the access
/// chunk (the request script, or the pass chunk marking phase 8 passed),
/// then the header_filter and body_filter chunks of the response side.
pub fn chunks(ir: &ValidIr, id: &PolicyId, s: &Script) -> (String, Vec<String>, Vec<String>) {
    let places = Places::of(ir, id);
    let access = match &s.request {
        Some(p) => emit_chunk(p, Side::Request, Host::Kong, &places),
        // The response script runs only on requests that passed phase 8.
        None => pass_chunk(Host::Kong),
    };
    let (header_filter, body_filter) = match &s.response {
        Some(p) => (
            vec![emit_chunk(p, Side::Response, Host::Kong, &places)],
            body_filter_chunk(Host::Kong).into_iter().collect(),
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
