//! `redirect` (phase 9): Lua in the route's `post-function`, after the rate
//! limit and the request script, as the spec orders them. Kong's bundled
//! `redirect` plugin (priority 779) takes one fixed `location` (or the
//! request's path and query on it): no route parameters, no part-wise
//! forms, no 400 for an unsafe location, no removal of a query key.
//!
//! With `to`, `{param}` takes the route's parameter and the request's query
//! string is appended (`&` when `to` has a query), then `to`'s fragment.
//! With parts (`scheme`, `host`, `port`, `path` / `replace-prefix`), the
//! request's own URL with those parts replaced: scheme of the listener
//! (`kong.request.get_scheme`), host and port of the client's `host`
//! header, Kong's normalized path, the query. A parameter or a kept path
//! that would make the location's path start with `//` or `/\` is answered
//! 400 `{"error":"bad request"}`, and so is a `host` that is not a plain
//! name or address when it would be written. The query is the request's
//! as received (`ngx.var.request_uri`, not `ngx.var.args`, which Kong's
//! key-auth rewrites with `+` as `%20` when it removes a key), without the
//! route's query key-auth parameter.

use gatefold_compiler::ir::policy::{
    KeyLocation, Policy, Redirect, RedirectLocation, RedirectPath, RedirectTo,
};
use gatefold_compiler::ir::{PolicyKind, Route, ValidIr};
use gatefold_lua_script::lua::string as s;

/// The phase 9 chunk of route `r`'s redirect.
pub fn chunk(ir: &ValidIr, r: &Route, red: &Redirect) -> String {
    let path = &r.matcher.path;
    let names: Vec<String> = path.params().map(s).collect();
    let mut fields = vec![
        format!("status = {}", red.status.code()),
        format!(
            "pattern = {}",
            s(&gatefold_lua_script::lua::path_pattern(path))
        ),
        format!("names = {}", crate::conditions::table(&names)),
    ];
    if let Some(key) = query_key(ir, r) {
        fields.push(format!("key = {}", s(&key)));
    }
    match &red.location {
        RedirectLocation::To(to) => {
            let mut template = to.path.clone();
            if let Some(q) = &to.query {
                template.push('?');
                template.push_str(q);
            }
            let origin = RedirectTo {
                path: String::new(),
                query: None,
                fragment: None,
                ..to.clone()
            };
            fields.push(format!("origin = {}", s(&origin.to_string())));
            fields.push(format!("template = {}", s(&template)));
            fields.push(format!("has_query = {}", to.query.is_some()));
            fields.push(format!(
                "fragment = {}",
                s(&to
                    .fragment
                    .as_ref()
                    .map_or(String::new(), |f| format!("#{f}")))
            ));
        }
        RedirectLocation::Parts(p) => {
            fields.push("parts = true".to_string());
            fields.push(format!("segments = {}", path.segments.len()));
            if let Some(scheme) = p.scheme {
                fields.push(format!("scheme = {}", s(scheme.as_str())));
            }
            if let Some(h) = &p.host {
                fields.push(format!("host = {}", s(h)));
            }
            if let Some(port) = p.port {
                fields.push(format!("port = {port}"));
            }
            match &p.path {
                None => {}
                Some(RedirectPath::Template(t)) => fields.push(format!("template = {}", s(t))),
                Some(RedirectPath::ReplacePrefix(x)) => {
                    fields.push(format!("replace_prefix = {}", s(x.trim_end_matches('/'))))
                }
            }
        }
    }
    format!(
        "-- gatefold: redirect (phase 9)\nlocal R = {{\n  {}\n}}\n{LOCATION_OF}return function()\n  L = {HANDED}\n  if not L then\n    kong.log.err({})\n    {}\n  end\n  local l = location(kong.request.get_path())\n  if not l then\n    {}\n  end\n  return kong.response.exit(R.status, \"\", {{ [\"location\"] = l }})\nend\n",
        fields.join(",\n  "),
        s("gatefold: redirect: no location module in kong.ctx.shared (the global pre-function's rewrite chunk hands it over)"),
        crate::functions::exit(500, "internal error"),
        crate::functions::exit(400, "bad request"),
    )
}

/// The query parameter a `key-auth` of the route's chain reads its key
/// from, if any: removed from the `location`.
fn query_key(ir: &ValidIr, r: &Route) -> Option<String> {
    let id = r.policy_id(PolicyKind::KeyAuth)?;
    match &ir.policies.get(id)?.policy {
        Policy::KeyAuth(k) if k.location == KeyLocation::Query => Some(k.name.to_string()),
        _ => None,
    }
}

/// Where the global pre-function's rewrite hands each request the
/// location module.
const HANDED: &str = "kong.ctx.shared.gatefold_location";

/// The global pre-function's `rewrite` chunk when a route redirects:
/// `gatefold_lua_script::LOCATION` (how every Lua target builds a
/// part-wise location) built once per worker and config, handed to each
/// request in `kong.ctx.shared`, so the routes' chunks do not each carry
/// a copy.
pub fn location_chunk(ir: &ValidIr) -> Option<String> {
    ir.routes
        .iter()
        .any(|r| r.policy_id(PolicyKind::Redirect).is_some())
        .then(|| {
            format!(
                "-- gatefold: the redirect location module, built once per worker and config;\n-- every request gets it in kong.ctx.shared for its route's redirect chunk\nlocal L = (function()\n{}end)()\nreturn function()\n  {HANDED} = L\nend\n",
                gatefold_lua_script::LOCATION
            )
        })
}

/// `location(path)`, reading `R`, and `L` from [`location_chunk`] (set per
/// request by the function [`chunk`] returns).
const LOCATION_OF: &str = r#"local L
local function fill(template, params)
  return (template:gsub("{([^}]*)}", function(name) return params[name] end))
end
-- Kong's normalized path has percent-decoded bytes (a space, UTF-8):
-- written back encoded, as the request had them.
local function enc(x)
  return (x:gsub("[^%w%-%._~!%$&'%(%)%*%+,;=:@/%%]", function(c) return string.format("%%%02X", c:byte()) end))
end
-- The request's query as received, without the key-auth parameter
-- (every `KEY=...` pair); nil when there is none or nothing is left.
local function query()
  local q = (ngx.var.request_uri or ""):match("%?(.*)$")
  if not q or not R.key then return q end
  local kept = {}
  for part in (q .. "&"):gmatch("([^&]*)&") do
    if (part:match("^([^=]*)") or part) ~= R.key then kept[#kept + 1] = part end
  end
  if #kept == 0 then return nil end
  return table.concat(kept, "&")
end
local function location(path)
  local caps = { path:match(R.pattern) }
  local raw, coded = {}, {}
  for i, name in ipairs(R.names) do
    raw[name] = caps[i]
    coded[name] = caps[i] and enc(caps[i])
  end
  local q = query()
  if not R.parts then
    if L.network_path(R.origin .. fill(R.template, raw)) then return nil end
    local out = R.origin .. fill(R.template, coded)
    if q then out = out .. (R.has_query and "&" or "?") .. q end
    return out .. R.fragment
  end
  local kept
  if R.template then
    kept = fill(R.template, raw)
    path = fill(R.template, coded)
  elseif R.replace_prefix then
    local tail = L.prefix_tail(path, R.segments)
    kept = R.replace_prefix .. tail
    path = R.replace_prefix .. enc(tail)
  else
    kept = path
    path = enc(path)
  end
  if kept == "" then kept, path = "/", "/" end
  if kept:sub(1, 1) ~= "/" or L.network_path(kept) then return nil end
  -- The client's host as it came (HTTP/2's :authority is nginx's host).
  return L.parts(R, kong.request.get_scheme(), kong.request.get_header("host"), path, q)
end
"#;
