//! Phase 4 (authentication) as Lua in `pre-function`, where Kong's bundled
//! plugins cannot carry it out: a route with `jwt` (see `crate::jwt`), or
//! with two or more methods. Kong requires every authentication plugin on
//! a route to pass; the spec admits on any one, tried in the order
//! key-auth, basic-auth, jwt, the first that passes deciding the consumer.
//! A route with one `key-auth` or one `basic-auth` keeps Kong's plugin.
//!
//! As the NGINX target does: keys and passwords are read once per worker
//! (here through Kong's env vault), a header key is the header's first
//! value, a basic credential is decoded by `ngx.decode_base64` and its
//! password compared byte by byte; the credential checked is removed
//! before proxying, a token is forwarded. The consumer is authenticated in
//! Kong (`kong.client.load_consumer` + `authenticate`) so acl, rate-limit
//! and scripts see it.

use gatefold_compiler::diag::{Diagnostic, Diagnostics};
use gatefold_compiler::ir::policy::{KeyLocation, Policy};
use gatefold_compiler::ir::{Loc, PolicyId, PolicyKind, Route, ValidIr};
use gatefold_compiler::target::span_of;
use gatefold_lua_script::lua::string as s;

/// Whether phase 4 of `r` is Lua (so Kong's key-auth and basic-auth
/// plugins are not put on it).
pub fn in_lua(r: &Route) -> bool {
    r.lowered.auth.as_ref().is_some_and(|a| {
        a.methods.len() >= 2 || a.methods.iter().any(|m| m.kind == PolicyKind::Jwt)
    })
}

fn methods<'a>(ir: &'a ValidIr, r: &Route) -> Vec<(&'a PolicyId, &'a Policy)> {
    r.lowered
        .auth
        .iter()
        .flat_map(|a| a.methods.iter())
        .filter_map(|id| ir.policies.get_key_value(id).map(|(id, p)| (id, &p.policy)))
        .collect()
}

/// The access chunk of `r`'s phase 4, when it is Lua.
pub fn chunk(ir: &ValidIr, r: &Route, cors: bool) -> Option<String> {
    if !in_lua(r) {
        return None;
    }
    let mut out = String::from("-- gatefold: authentication (phase 4): ");
    let list = methods(ir, r);
    let names: Vec<String> = list.iter().map(|(id, _)| id.to_string()).collect();
    out.push_str(&names.join(", "));
    out.push_str(", the first that passes admits\n");
    let mut checks = Vec::new();
    let mut clear = Vec::new();
    for (id, p) in &list {
        match p {
            Policy::KeyAuth(k) => {
                // Query keys are refused here (`conflicts`); were one
                // here, it would admit nobody (fail closed).
                let read = match k.location {
                    KeyLocation::Header => "kong.request.get_header(KEY_NAME)",
                    KeyLocation::Query => "nil",
                };
                let refs: Vec<String> = ir
                    .consumers
                    .iter()
                    .flat_map(|(c, x)| {
                        x.keys.iter().map(move |k| {
                            format!("{{ {}, {} }}", s(c.as_str()), s(&crate::vault(k)))
                        })
                    })
                    .collect();
                out.push_str(&format!(
                    r#"local KEY_NAME = {name}
local KEY_REFS = {{ {refs} }}
-- Key value -> consumer, made once per worker; a key the vault has no
-- value for lets nobody in.
local keys
local function key_check()
  if not keys then
    keys = {{}}
    for _, kr in ipairs(KEY_REFS) do
      local v = kong.vault.get(kr[2])
      if v and v ~= "" then keys[v] = kr[1] end
    end
  end
  local k = {read}
  local c = k and keys[k]
  return c ~= nil, c
end
"#,
                    name = s(&k.name),
                    refs = refs.join(", "),
                ));
                checks.push("key_check");
                clear.push("  ngx.req.clear_header(KEY_NAME)\n".to_string());
            }
            Policy::BasicAuth(_) => {
                let users: Vec<String> = ir
                    .consumers
                    .iter()
                    .filter_map(|(c, x)| {
                        x.basic.as_ref().map(|b| {
                            format!(
                                "{{ {}, {}, {} }}",
                                s(&b.user),
                                s(c.as_str()),
                                s(&crate::vault(&b.password))
                            )
                        })
                    })
                    .collect();
                out.push_str(&format!(
                    r#"local USERS = {{ {users} }}
-- User -> {{ password, consumer }}, made once per worker.
local users
local function basic_credential()
  local h = kong.request.get_header("authorization")
  if not h then return nil end
  local sp = h:find(" ", 1, true)
  if not sp or h:sub(1, sp - 1):lower() ~= "basic" then return nil end
  return (h:sub(sp + 1):match("^%s*(.-)%s*$"))
end
local function basic_check()
  if not users then
    users = {{}}
    for _, u in ipairs(USERS) do
      local p = kong.vault.get(u[3])
      if p and p ~= "" then users[u[1]] = {{ password = p, consumer = u[2] }} end
    end
  end
  local b64 = basic_credential()
  local text = b64 and ngx.decode_base64(b64)
  local colon = text and text:find(":", 1, true)
  if not colon then return false end
  local e = users[text:sub(1, colon - 1)]
  local given = text:sub(colon + 1)
  if e and #e.password == #given then
    local diff = 0
    for i = 1, #given do
      if e.password:byte(i) ~= given:byte(i) then diff = diff + 1 end
    end
    if diff == 0 then return true, e.consumer end
  end
  return false
end
"#,
                    users = users.join(", ")
                ));
                checks.push("basic_check");
                clear.push(
                    "  if basic_credential() then ngx.req.clear_header(\"authorization\") end\n"
                        .to_string(),
                );
            }
            Policy::Jwt(j) => {
                out.push_str(&crate::jwt::prelude(id, j));
                checks.push("jwt_check");
                // The token goes on; client copies of claim headers never do.
                clear.push(
                    "  for _, pair in ipairs(JWT_CLAIMS) do ngx.req.clear_header(pair[2]) end\n"
                        .to_string(),
                );
            }
            _ => {}
        }
    }
    let consumers: Vec<String> = ir
        .consumers
        .keys()
        .map(|c| format!("[{}] = true", s(c.as_str())))
        .collect();
    let realm = r
        .lowered
        .auth
        .as_ref()
        .and_then(|a| a.realm.as_ref())
        .map_or(String::new(), |realm| {
            format!(
                ", [\"www-authenticate\"] = {}",
                s(&format!("Basic realm=\"{realm}\""))
            )
        });
    let preflight = if cors {
        // Kong's cors answers a preflight at phase 2 (cors handler.lua:
        // OPTIONS with an origin and access-control-request-method).
        "  if kong.request.get_method() == \"OPTIONS\" and (kong.request.get_header(\"origin\") or \"\") ~= \"\"\n     and kong.request.get_header(\"access-control-request-method\") then\n    return\n  end\n"
    } else {
        ""
    };
    out.push_str(&format!(
        r#"local CONSUMERS = {{ {consumers} }}
local METHODS = {{ {checks} }}
return function()
{preflight}  local admitted, name, claims = false, nil, nil
  for _, check in ipairs(METHODS) do
    local ok, n, c = check()
    if ok then
      admitted, name, claims = true, n, c
      break
    end
  end
  if not admitted then
    return kong.response.exit(401, '{{"error":"unauthorized"}}', {{ ["content-type"] = "application/json"{realm} }})
  end
  -- The consumer, if the method names one of the spec's; acl then reads
  -- its groups. None (a token naming nobody): no groups, so acl `allow`
  -- refuses and `deny` admits.
  if name and CONSUMERS[name] then
    local c, err = kong.client.load_consumer(name, true)
    if not c or c.username ~= name then
      kong.log.err("gatefold: authentication: consumer ", name, " not loaded: ", err)
      return kong.response.exit(401, '{{"error":"unauthorized"}}', {{ ["content-type"] = "application/json"{realm} }})
    end
    kong.client.authenticate(c, nil)
  else
    kong.ctx.shared.authenticated_groups = {{}}
  end
  -- Credentials never reach the upstream.
{clear}  -- Then the admitting token's claims, in claim order (a leading ""
  -- clears; the values after it are added as they are, an empty one too,
  -- as the NGINX target sends them).
  local values, order = {{}}, {{}}
  for _, pair in ipairs(claims or {{}}) do
    if not values[pair[1]] then
      values[pair[1]] = {{}}
      order[#order + 1] = pair[1]
    end
    local v = values[pair[1]]
    v[#v + 1] = pair[2]
  end
  for _, n in ipairs(order) do ngx.req.set_header(n, {{ "", unpack(values[n]) }}) end
end
"#,
        consumers = consumers.join(", "),
        checks = checks.join(", "),
        clear = clear.concat(),
    ));
    Some(out)
}

/// Routes whose phase 4 is Lua with what the Lua does not carry out yet:
/// a query key (removing it from the query as the spec does is not built
/// here), and two or more methods beside a request script (the spec lets
/// the script read the credential, removed only after it).
pub fn conflicts(ir: &ValidIr, out: &mut Diagnostics, origin: Loc) {
    for r in &ir.routes {
        if !in_lua(r) {
            continue;
        }
        let list = methods(ir, r);
        let at = |id: &PolicyId| span_of(ir.sources.policies.get(id).copied().unwrap_or(origin));
        for (id, p) in &list {
            if matches!(p, Policy::KeyAuth(k) if k.location == KeyLocation::Query) {
                out.push(
                    Diagnostic::error(
                        "unsupported-policy",
                        at(id),
                        format!("target `kong` cannot carry out `{id}` (a query key) on route `{}` beside `jwt` or another authentication method: its Lua does not remove a query key yet", r.id),
                    )
                    .with_help("for the Kong target, read the key from a header (`in: header`), or keep key-auth alone on this route"),
                );
            }
        }
        let script =
            r.policy_id(PolicyKind::Script)
                .and_then(|id| match &ir.policies.get(id)?.policy {
                    Policy::Script(sc) if sc.request.is_some() => Some(id),
                    _ => None,
                });
        if let (Some(sid), true) = (script, list.len() >= 2) {
            out.push(
                Diagnostic::error(
                    "unsupported-policy",
                    at(sid),
                    format!("target `kong` cannot carry out the request script `{sid}` on route `{}` beside a choice of authentication methods: the spec lets the script read the credential, which the Kong target removes at phase 4", r.id),
                )
                .with_help("for the Kong target, keep one authentication method on this route, or move the script"),
            );
        }
    }
}
