//! `script`: both sides of a script policy in a second Lua filter
//! ([`FILTER`]), after the policy filter (`gatefold.lua`, phases 2-6) and
//! before the router, so the request script runs at phase 8, after
//! authentication, acl and rate limiting. Each route holding a script gets
//! its own source ([`Any::LuaPerRoute`]): the chunks of
//! `gatefold-lua-script` with its Envoy adapter, wrapped in
//! `envoy_on_request` / `envoy_on_response`. On the way back the filter
//! runs before the policy filter and before Envoy adds the request id, so
//! the wrapper adds both the request id and the policy filter's promised
//! headers before the response script reads the response (phase 13 sees
//! what earlier phases promised).
//!
//! The consumer is the `consumer` key of the `gatefold` dynamic metadata
//! (set by `gatefold.lua` when a method admits); a key header and a basic
//! `authorization` are removed after the script (phase 10), which can
//! still read them: `gatefold.lua` leaves them to this filter on routes
//! whose metadata says `script`.

use crate::model::{Any, DataSource, NamedConfig, Route};
use gatefold_compiler::ir::policy::Policy;
use gatefold_compiler::ir::script::Side;
use gatefold_compiler::ir::{
    PolicyId, PolicyKind, Route as IrRoute, Script, UpstreamPath, ValidIr,
};
use gatefold_lua_script::{emit_chunk, pass_chunk, Host, Places};

/// The script filter's name.
pub const FILTER: &str = "gatefold.script";

/// Whether some route holds a script.
pub fn needed(ir: &ValidIr) -> bool {
    ir.routes.iter().any(|r| script_of(ir, r).is_some())
}

fn script_of<'a>(ir: &'a ValidIr, r: &'a IrRoute) -> Option<(&'a PolicyId, &'a Script)> {
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

/// The filter: nothing happens on routes without a script.
pub fn filter() -> NamedConfig {
    NamedConfig {
        name: FILTER.into(),
        typed_config: Any::LuaScripts {
            default_source_code: DataSource::InlineString(
                "function envoy_on_request(h) end\nfunction envoy_on_response(h) end\n".into(),
            ),
            clear_route_cache: false,
        },
    }
}

/// Gives a route entry its scripts (not a preflight's entry: preflights
/// are answered at phase 2). `filter`: the script filter is in the chain
/// ([`needed`], computed once by the caller: it reads every route).
pub fn decorate(ir: &ValidIr, r: &IrRoute, route: &mut Route, preflight: bool, filter: bool) {
    let script = if preflight { None } else { script_of(ir, r) };
    let Some((id, s)) = script else {
        if filter {
            // The filter's default does nothing: don't enter it.
            route
                .typed_per_filter_config
                .insert(FILTER.into(), Any::LuaDisabled { disabled: true });
        }
        return;
    };
    if let Some(md) = route.metadata.as_mut() {
        if let Some(serde_json::Value::Object(o)) = md.filter_metadata.get_mut(crate::lua::FILTER) {
            o.insert("script".into(), serde_json::Value::Bool(true));
        }
    }
    route.typed_per_filter_config.insert(
        FILTER.into(),
        Any::LuaPerRoute {
            source_code: DataSource::InlineString(source(ir, r, id, s)),
        },
    );
}

/// The route's Lua source.
pub fn source(ir: &ValidIr, r: &IrRoute, id: &PolicyId, s: &Script) -> String {
    let places = Places::of(ir, id);
    let request = match &s.request {
        Some(p) => emit_chunk(p, Side::Request, Host::Envoy, &places),
        None => pass_chunk(Host::Envoy),
    };
    let response = s
        .response
        .as_ref()
        .map(|p| emit_chunk(p, Side::Response, Host::Envoy, &places));
    // A whole-path template replaces any path the script set (phase 10
    // starts from the request's path there).
    let template = matches!(r.lowered.upstream_path, UpstreamPath::Template(_));
    let request_id = ir.gateway.baseline.request_id;
    // Envoy adds a route's response headers to every answer on it; a
    // script's own answer (respond(), or its failure) skips phase 13.
    let phase13: Vec<String> = match ir.policy(r, PolicyKind::ResponseHeaders) {
        Some(Policy::ResponseHeaders(h)) => h
            .set
            .keys()
            .chain(h.add.keys())
            .map(|n| gatefold_lua_script::lua::string(n.as_str()))
            .collect(),
        _ => Vec::new(),
    };
    let mut out = String::from("-- gatefold: the script of this route (generated; do not edit)\n");
    out.push_str("local NS = \"gatefold.script\"\n");
    out.push_str("local request = (function()\n");
    out.push_str(&request);
    out.push_str("end)()\n");
    match &response {
        Some(chunk) => {
            out.push_str("local response = (function()\n");
            out.push_str(chunk);
            out.push_str("end)()\n");
        }
        None => out.push_str("local response = nil\n"),
    }
    out.push_str(&format!(
        "local TEMPLATE, REQUEST_ID = {template}, {request_id}\nlocal PHASE13 = {{{}}}\n",
        phase13.join(", ")
    ));
    out.push_str(WRAPPER);
    out
}

const WRAPPER: &str = r#"function envoy_on_request(h)
  local hs = h:headers()
  local before = hs:get(":path")
  local md = h:streamInfo():dynamicMetadata()
  md:set(NS, "ran", true)
  if REQUEST_ID then md:set(NS, "request_id", hs:get("x-request-id") or "") end
  request(h)
  local m = md:get(NS)
  if not (m and m.passed) then return end
  if TEMPLATE then hs:replace(":path", before) end
  -- Phase 10: the credentials the policy filter left for after the script.
  local g = md:get("gatefold")
  if g and g.strip then
    for _, name in ipairs(g.strip) do
      if name == "authorization" then
        local v = hs:get("authorization")
        if v and v:lower():match("^%s*basic%s") then hs:remove("authorization") end
      else
        hs:remove(name)
      end
    end
  end
end

function envoy_on_response(h)
  local md = h:streamInfo():dynamicMetadata()
  local m = md:get(NS)
  if m and m.ran and not m.passed then
    -- The script answered (or failed): no phase 13.
    local hs = h:headers()
    for _, name in ipairs(PHASE13) do hs:remove(name) end
    -- Envoy drops content-type from a local reply without a body; the
    -- answer's own (H.respond kept it here) goes back on.
    if m.content_type then hs:replace("content-type", m.content_type) end
    return
  end
  if not (m and m.passed) or not response then return end
  local hs = h:headers()
  if REQUEST_ID and m.request_id and m.request_id ~= "" then hs:replace("x-request-id", m.request_id) end
  local g = md:get("gatefold.lua")
  if g and g.promised then
    for k, v in pairs(g.promised) do
      if k == "vary" then hs:add(k, v) else hs:replace(k, v) end
    end
    md:set("gatefold.lua", "promised", {})
  end
  response(h)
end
"#;
