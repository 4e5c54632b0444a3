//! `jwt` (phase 4) as Lua in `pre-function`: the shared core
//! ([`gatefold_lua_script::JWT`], also run by the NGINX and Envoy targets)
//! decides the token, lua-resty-openssl (bundled with Kong) checks its
//! signature.
//!
//! Why not Kong's bundled `jwt` plugin: it finds a consumer by a credential
//! a claim names (`iss` by default) with one secret per credential, refuses
//! a token whose claim names none, and reads JSON and claims its own way;
//! the spec has one key per policy and admits a token naming no consumer.
//!
//! Why `pre-function` (priority 1,000,000): Kong has no plugin slot between
//! cors (2000) and acl (950) for Lua, and post-function runs after acl.
//! Phase 4 then runs before cors (phase 2), which matters only for a CORS
//! preflight, which cors answers at phase 2 (the chunk lets it through on
//! a route with `cors`). It follows phases 1 and 3 in the same plugin, so a
//! denied address without a token gets 403, not 401.
//!
//! Kong's sandbox (`untrusted_lua = sandbox`) gives neither `ffi`,
//! `setmetatable`, `getmetatable` nor (in older releases) `bit` and
//! `string.rep`: the core's chunk defines what the core uses of them in
//! plain Lua (see [`SHIMS`]); the route's chunk requires
//! `resty.openssl.hmac` or `resty.openssl.pkey`, which kong.conf must
//! allow (`untrusted_lua_sandbox_requires`, docs/kong.md).
//!
//! The core (22 KB) is in the config once, as the script runtime is (see
//! `crate::script`): [`core_chunk`] is a `rewrite` chunk of the global
//! pre-function, which Kong runs on every request, handing the core over
//! in `kong.ctx.shared`; each route's phase-4 chunk ([`prelude`]) holds
//! only its policy, key and signature check, and refuses every token
//! (logged) were the core not handed over.

use gatefold_compiler::ir::policy::{Jwt, JwtKey, PublicKey};
use gatefold_compiler::ir::{PolicyId, ValidIr};
use gatefold_lua_script::lua::string as s;

/// The modules a spec's `jwt` policies need Kong's sandbox to allow.
pub fn requires(ir: &ValidIr) -> std::collections::BTreeSet<&'static str> {
    ir.policies
        .values()
        .filter_map(|p| match &p.policy {
            gatefold_compiler::ir::policy::Policy::Jwt(j) => Some(module(&j.key)),
            _ => None,
        })
        .collect()
}

fn module(key: &JwtKey) -> &'static str {
    match key {
        JwtKey::Hs256 { .. } => "resty.openssl.hmac",
        JwtKey::Rs256(_) | JwtKey::Es256(_) => "resty.openssl.pkey",
    }
}

/// What the core uses that the sandbox may lack, for the core's uses only:
/// metatables kept in a private field (the core only tags its values and
/// reads the tag back), `bit` on the non-negative values below 2^31 the
/// core gives it (masks of the form 2^k - 1, `bor` of disjoint bits), and
/// `string.rep` by concatenation.
pub const SHIMS: &str = r#"local MT = {}
local function setmetatable(t, mt) t[MT] = mt; return t end
local function getmetatable(t) return t[MT] end
local bit = {
  lshift = function(a, n) return a * 2 ^ n end,
  rshift = function(a, n) return math.floor(a / 2 ^ n) end,
  band = function(a, mask) return a % (mask + 1) end,
  bor = function(a, b) return a + b end,
}
local string = (function()
  local t = {}
  for k, v in pairs(string) do t[k] = v end
  t.rep = function(x, n)
    local out = {}
    for i = 1, n do out[i] = x end
    return table.concat(out)
  end
  return t
end)()
"#;

/// Where a request's phase-4 chunk finds the core [`core_chunk`] handed over.
const CORE: &str = "kong.ctx.shared.gatefold_jwt_core";

/// Whether a route's phase 4 checks a `jwt` (in Lua): the core is needed.
pub fn used(ir: &ValidIr) -> bool {
    ir.routes.iter().any(|r| {
        r.lowered
            .auth
            .iter()
            .flat_map(|a| a.methods.iter())
            .any(|m| m.kind == gatefold_compiler::ir::PolicyKind::Jwt)
    })
}

/// The global pre-function's `rewrite` chunk holding the jwt core (under
/// the sandbox shims), built once per worker and config and handed to
/// each request in `kong.ctx.shared`.
pub fn core_chunk() -> String {
    format!(
        "-- gatefold: the jwt core, built once per worker and config; every request\n-- gets it in kong.ctx.shared for its route's phase-4 chunk\n{SHIMS}local core = (function()\n{}end)()\nreturn function()\n  {CORE} = core\nend\n",
        gatefold_lua_script::JWT
    )
}

/// The Lua defining `jwt_check()` for one `jwt` instance: true, the
/// consumer claim's value and the claim headers (in claim order), or
/// false; and `JWT_CLAIMS`, the `{ claim, header }` pairs. It runs the
/// core [`core_chunk`] handed over.
pub fn prelude(id: &PolicyId, j: &Jwt) -> String {
    let (alg, key) = match &j.key {
        JwtKey::Hs256 { secret } => (
            "HS256",
            format!("{{ vault = {} }}", s(&crate::vault(secret))),
        ),
        JwtKey::Rs256(k) => ("RS256", public_key(k)),
        JwtKey::Es256(k) => ("ES256", public_key(k)),
    };
    let issuer = j.issuer.as_deref().map_or("nil".to_string(), s);
    let audiences = if j.audiences.is_empty() {
        "nil".to_string()
    } else {
        let set: Vec<String> = j
            .audiences
            .iter()
            .map(|a| format!("[{}] = true", s(a)))
            .collect();
        format!("{{ {} }}", set.join(", "))
    };
    let claims: Vec<String> = j
        .claims_to_headers
        .iter()
        .map(|(c, h)| format!("{{ {}, {} }}", s(c), s(h.as_str())))
        .collect();
    format!(
        r#"local P = {{ id = {idq}, alg = "{alg}", issuer = {issuer}, audiences = {audiences},
  consumer_claim = {claim}, claims = {{ {claims} }}, leeway = {leeway} }}
local JWT_CLAIMS = P.claims
local KEY = {key}
local MODULE = "{module}"
local lib_ok, lib = pcall(require, MODULE)
local byte = string.byte

-- Every byte compared, whatever differs first.
local function same(a, b)
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do
    if byte(a, i) ~= byte(b, i) then diff = diff + 1 end
  end
  return diff == 0
end

-- The key, made once per worker (false when unusable: every token is then
-- refused, as the NGINX target does). An RSA key of at most 4096 bits (512
-- bytes of modulus, the `rsa` crate's limit) for RS256, a P-256 key
-- (NID 415, prime256v1) for ES256.
local key
local function load_key()
  if not lib_ok then
    kong.log.err("gatefold: jwt ", P.id, " needs ", MODULE, " in kong.conf's untrusted_lua_sandbox_requires: ", lib)
    return false
  end
  local v = KEY.pem
  if KEY.vault then
    local err
    v, err = kong.vault.get(KEY.vault)
    if not v or v == "" then
      kong.log.err("gatefold: jwt ", P.id, ": no key from ", KEY.vault, ": ", err)
      return false
    end
  end
  if P.alg == "HS256" then return v end
  local k = lib.new(v, {{ format = "PEM", type = "pu" }})
  local t = k and k:get_key_type()
  local params = k and k:get_parameters()
  if P.alg == "RS256" and t and t.id == 6 and params and #params.n:to_binary() <= 512 then return k end
  if P.alg == "ES256" and t and t.id == 408 and params and params.group == 415 then return k end
  kong.log.err("gatefold: jwt ", P.id, ": no usable ", P.alg, " public key")
  return false
end

local function verify(p, msg, sig)
  if key == nil then key = load_key() end
  if not key then return false end
  if p.alg == "HS256" then
    local h = lib.new(key, "sha256")
    local mac = h and h:final(msg)
    return mac ~= nil and same(mac, sig)
  elseif p.alg == "RS256" then
    return key:verify(sig, msg, "sha256") == true
  end
  -- ES256: JWS's fixed r||s.
  if #sig ~= 64 then return false end
  return key:verify(sig, msg, "sha256", nil, {{ ecdsa_use_raw = true }}) == true
end

local function jwt_check()
  local core = {CORE}
  if not core then
    kong.log.err("gatefold: jwt ", P.id, ": no jwt core in kong.ctx.shared (the global pre-function's rewrite chunk hands it over)")
    return false
  end
  ngx.update_time()
  return core.check(P, kong.request.get_header("authorization"), ngx.now(), verify)
end
"#,
        idq = s(&id.to_string()),
        claim = s(&j.consumer_claim),
        claims = claims.join(", "),
        leeway = j.leeway.millis as f64 / 1000.0,
        module = module(&j.key),
    )
}

/// A public key: the PEM compiled in (public), or from the environment
/// through Kong's env vault.
fn public_key(k: &PublicKey) -> String {
    match k {
        PublicKey::File { pem, .. } => format!("{{ pem = {} }}", s(pem)),
        PublicKey::Env(name) => format!("{{ vault = {} }}", s(&format!("{{vault://env/{name}}}"))),
    }
}
