//! `script`: both sides of a script policy in one `post-function` plugin,
//! the Lua of `gatefold-lua-script` with its Kong PDK adapter.
//!
//! post-function (priority -1000) runs after every other plugin of the
//! phase: in `access` after authentication, ACL and rate limiting (phases
//! 4 to 6), as phase 8 must; in `header_filter` after
//! response-transformer, as phase 13 wants the response script after
//! `response-headers`. Two plugins the spec runs after phase 8 run before
//! it in Kong, request-transformer (phase 10) and request-termination
//! (`mock`, phase 9), so [`conflicts`] refuses a route holding a script
//! with either (pre-function, priority 1,000,000, would run the script
//! before authentication, which is worse).

use crate::model::PluginConfig;
use gatefold_compiler::diag::{Diagnostic, Diagnostics};
use gatefold_compiler::ir::policy::Policy;
use gatefold_compiler::ir::script::Side;
use gatefold_compiler::ir::{Loc, PolicyId, PolicyKind, Script, ValidIr};
use gatefold_compiler::target::span_of;
use gatefold_lua_script::{body_filter_chunk, emit_chunk, pass_chunk, Host, Places};

/// The post-function config carrying `s` out.
pub fn config(ir: &ValidIr, id: &PolicyId, s: &Script) -> PluginConfig {
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
    PluginConfig::Functions {
        access: vec![access],
        header_filter,
        body_filter,
    }
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
        let clash = r.chain.iter().find(|id| match id.kind {
            PolicyKind::Mock => true,
            PolicyKind::RequestHeaders => script.request.is_some(),
            _ => false,
        });
        let Some(other) = clash else { continue };
        let (plugin, why) = if other.kind == PolicyKind::Mock {
            (
                "request-termination",
                "the mock would answer before the script runs (phase 8) and the response script would not see its answer",
            )
        } else {
            (
                "request-transformer",
                "the request script would see and could undo the headers phase 10 sets",
            )
        };
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
