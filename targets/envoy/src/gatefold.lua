-- gatefold's request phases 2 to 6 for Envoy (cors, request-size-limit,
-- authentication, acl, rate-limit), driven by each route's metadata under
-- the filter name `gatefold.lua`. Generated data (CONSUMERS, and JWT: each
-- jwt policy's algorithm, key or the variable holding it, issuer,
-- audiences and leeway; secrets read from the environment at start-up)
-- comes before this text.
--
-- Rate-limit counters live in this Lua state, one per Envoy worker: exact
-- with one worker (`--concurrency 1`, as gatefold runs Envoy).

local function json_reply(h, status, message, extra)
  local headers = { [":status"] = tostring(status), ["content-type"] = "application/json" }
  for k, v in pairs(extra or {}) do headers[k] = v end
  h:respond(headers, '{"error":"' .. message .. '"}')
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64index = {}
for i = 1, 64 do b64index[b64chars:byte(i)] = i - 1 end

local function b64decode(s)
  s = s:gsub("=+$", "")
  if #s % 4 == 1 or s:find("[^%w%+/]") then return nil end
  local out, bits, n = {}, 0, 0
  for i = 1, #s do
    bits = bits * 64 + b64index[s:byte(i)]
    n = n + 6
    if n >= 8 then
      n = n - 8
      local byte = math.floor(bits / 2 ^ n) % 256
      out[#out + 1] = string.char(byte)
      bits = bits % 2 ^ n
    end
  end
  return table.concat(out)
end

-- jwt: tokens are verified here, as the reference gateway does: the token,
-- its JSON and claims by the core shared with NGINX (`JWT_CORE`, from
-- gatefold-lua-script), HMAC-SHA256 in Lua since Envoy's Lua has no HMAC,
-- RS256 and ES256 through Envoy's importPublicKey/verifySignature. Envoy's jwt_authn is
-- not used: it also reads an `access_token` query parameter, refuses the
-- scheme `bearer` in lower case and claims of other types than it expects
-- (a numeric `sub`, a fractional `iat`), and cannot take an HMAC secret or
-- a PEM key from the environment (it reads only a JWKS).

local bit = bit or require("bit")
local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local rshift, lshift, ror, tobit = bit.rshift, bit.lshift, bit.ror, bit.tobit

local K256 = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local function be32(x)
  return string.char(band(rshift(x, 24), 255), band(rshift(x, 16), 255),
    band(rshift(x, 8), 255), band(x, 255))
end

local function sha256(msg)
  local H = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }
  for i = 1, 8 do H[i] = tobit(H[i]) end
  local bits = #msg * 8
  msg = msg .. "\128" .. string.rep("\0", (55 - #msg) % 64)
    .. be32(math.floor(bits / 4294967296)) .. be32(bits % 4294967296)
  local w = {}
  for chunk = 1, #msg, 64 do
    for i = 0, 15 do
      local a, b, c, d = msg:byte(chunk + i * 4, chunk + i * 4 + 3)
      w[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
    end
    for i = 16, 63 do
      local x, y = w[i - 15], w[i - 2]
      local s0 = bxor(ror(x, 7), ror(x, 18), rshift(x, 3))
      local s1 = bxor(ror(y, 17), ror(y, 19), rshift(y, 10))
      w[i] = tobit(w[i - 16] + s0 + w[i - 7] + s1)
    end
    local a, b, c, d, e, f, g, h = H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8]
    for i = 0, 63 do
      local s1 = bxor(ror(e, 6), ror(e, 11), ror(e, 25))
      local ch = bxor(band(e, f), band(bnot(e), g))
      local t1 = h + s1 + ch + K256[i + 1] + w[i]
      local s0 = bxor(ror(a, 2), ror(a, 13), ror(a, 22))
      local maj = bxor(band(a, b), band(a, c), band(b, c))
      h, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + s0 + maj)
    end
    H[1], H[2], H[3], H[4] = tobit(H[1] + a), tobit(H[2] + b), tobit(H[3] + c), tobit(H[4] + d)
    H[5], H[6], H[7], H[8] = tobit(H[5] + e), tobit(H[6] + f), tobit(H[7] + g), tobit(H[8] + h)
  end
  local out = {}
  for i = 1, 8 do out[i] = be32(H[i]) end
  return table.concat(out)
end

local function hmac_sha256(key, msg)
  if #key > 64 then key = sha256(key) end
  key = key .. string.rep("\0", 64 - #key)
  local ipad, opad = {}, {}
  for i = 1, 64 do
    local k = key:byte(i)
    ipad[i] = string.char(bxor(k, 0x36))
    opad[i] = string.char(bxor(k, 0x5c))
  end
  return sha256(table.concat(opad) .. sha256(table.concat(ipad) .. msg))
end

-- key -> consumer, "user:password" -> consumer, from the generated data.
local by_key, by_basic = {}, {}
for name, c in pairs(CONSUMERS) do
  for _, var in ipairs(c.keys) do
    local v = os.getenv(var)
    if v and v ~= "" then by_key[v] = name end
  end
  if c.user then
    local p = os.getenv(c.password)
    if p and p ~= "" then by_basic[c.user .. ":" .. p] = name end
  end
end

local windows = {}

-- The DER of a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), or nil.
local function pem_der(pem)
  local body = pem and pem:match("%-%-%-%-%-BEGIN PUBLIC KEY%-%-%-%-%-(.-)%-%-%-%-%-END PUBLIC KEY%-%-%-%-%-")
  if not body then return nil end
  return b64decode((body:gsub("%s", "")))
end

-- A DER element at i: its tag and the bounds of its content, or nil.
local function der_at(s, i)
  local tag, len = s:byte(i), s:byte(i + 1)
  if not tag or not len then return nil end
  local a = i + 2
  if len >= 128 then
    local n = len - 128
    if n < 1 or n > 3 then return nil end
    len = 0
    for k = 0, n - 1 do
      local c = s:byte(a + k)
      if not c then return nil end
      len = len * 256 + c
    end
    a = a + n
  end
  local b = a + len - 1
  if b > #s then return nil end
  return tag, a, b
end

-- Whether a SubjectPublicKeyInfo holds a key the reference gateway takes
-- for the algorithm: RS256 an RSA key of at most 4096 bits (the `rsa`
-- crate's limit), ES256 a P-256 key. Envoy's importPublicKey takes any
-- type, and its verifySignature any algorithm the key has.
local RSA_OID = "\6\9\42\134\72\134\247\13\1\1\1"
local EC_P256 = "\6\7\42\134\72\206\61\2\1\6\8\42\134\72\206\61\3\1\7"
local function key_fits(der, alg)
  local t, a = der_at(der, 1)
  if t ~= 0x30 then return false end
  local t2, a2, b2 = der_at(der, a)
  if t2 ~= 0x30 then return false end
  local algid = der:sub(a2, b2)
  local t3, a3 = der_at(der, b2 + 1)
  if t3 ~= 0x03 then return false end
  if alg == "ES256" then return algid == EC_P256 end
  if algid:sub(1, #RSA_OID) ~= RSA_OID then return false end
  -- The BIT STRING: a byte of unused bits, then RSAPublicKey { n, e }.
  local t4, a4 = der_at(der, a3 + 1)
  if t4 ~= 0x30 then return false end
  local t5, a5, b5 = der_at(der, a4)
  if t5 ~= 0x02 then return false end
  local n = der:sub(a5, b5):gsub("^%z+", "")
  if n == "" then return false end
  local top, bits = n:byte(1), 0
  while top > 0 do bits, top = bits + 1, math.floor(top / 2) end
  return (#n - 1) * 8 + bits <= 4096
end

-- Each jwt policy's key, read once at start-up: the HMAC secret's bytes,
-- or the public key's DER. A key that is missing refuses every token.
for _, j in pairs(JWT) do
  if j.secret_env then
    local v = os.getenv(j.secret_env)
    if v and v ~= "" then j.secret = v end
  else
    local der = pem_der(j.pem or os.getenv(j.pem_env))
    if der and key_fits(der, j.alg) then j.der = der end
  end
end

-- An ES256 signature (r and s, 32 bytes each) as the DER sequence
-- OpenSSL verifies.
local function der_integer(b)
  b = b:gsub("^%z+", "")
  if b == "" or b:byte(1) >= 128 then b = "\0" .. b end
  return "\2" .. string.char(#b) .. b
end

local function ecdsa_der(sig)
  local body = der_integer(sig:sub(1, 32)) .. der_integer(sig:sub(33))
  return "\48" .. string.char(#body) .. body
end

local function same_bytes(a, b)
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do diff = bor(diff, bxor(a:byte(i), b:byte(i))) end
  return diff == 0
end

-- The signature check `JWT_CORE.check` asks for (the token, its JSON and
-- claims are the shared core's, as on NGINX): HS256 by the HMAC above,
-- RS256 and ES256 by Envoy's verifySignature.
local function verifier(h)
  return function(j, signed, sig)
    if j.alg == "HS256" then
      return j.secret ~= nil and same_bytes(hmac_sha256(j.secret, signed), sig)
    end
    if not j.der then return false end
    if j.alg == "ES256" then
      if #sig ~= 64 then return false end
      sig = ecdsa_der(sig)
    end
    local key = h:importPublicKey(j.der, #j.der):get()
    if not key then return false end
    return h:verifySignature("sha256", key, sig, #sig, signed, #signed) and true or false
  end
end

-- The value of `authorization` when it is visible ASCII and its scheme
-- (before the first space, any case) is `scheme`: the rest, trimmed.
local function credential(hdrs, scheme)
  local v = hdrs:get("authorization")
  if not v or v:find("[^\t\32-\126]") then return nil end
  local s, rest = v:match("^([^ ]*) (.*)$")
  if not s or s:lower() ~= scheme then return nil end
  return rest:match("^%s*(.-)%s*$")
end

-- Whether an origin pattern (`{ scheme, suffix }` of `scheme://*suffix`)
-- takes `origin`: the wildcard stands for one or more whole labels.
local function origin_pattern_allows(patterns, origin)
  local o = origin:lower()
  for _, p in ipairs(patterns) do
    local prefix = p[1] .. "://"
    local rest = o:sub(1, #prefix) == prefix and o:sub(#prefix + 1) or nil
    local labels = nil
    if rest and #rest >= #p[2] and rest:sub(#rest - #p[2] + 1) == p[2] then
      labels = rest:sub(1, #rest - #p[2])
    end
    if labels and labels ~= "" then
      local ok = true
      for label in (labels .. "."):gmatch("([^.]*)%.") do
        if not label:match("^[%w%-]+$") then ok = false end
      end
      if ok then return true end
    end
  end
  return false
end

-- `template` with each `{name}` replaced by the bound param (kept as it
-- is when unbound).
local function fill(template, params)
  return (template:gsub("{([^}]*)}", function(name) return params[name] end))
end

-- A part-wise redirect's location (language 1.1): the request's URL with
-- the given parts replaced (scheme of the listener, host and port from the
-- client's host, the normalized path, the query). nil when it would be
-- unsafe or cannot be built. `LOC` is gatefold_lua_script::LOCATION, put
-- before this script when a route redirects.
local function parts_location(h, hdrs, r, path, query, params)
  if r.template then
    path = fill(r.template, params)
  elseif r.replace_prefix then
    path = r.replace_prefix .. LOC.prefix_tail(path, r.segments)
    if path == "" then path = "/" end
  end
  -- The client's host as it came: the front filter copied it here.
  local listener = h:connection():ssl() and "https" or "http"
  return LOC.parts(r, listener, hdrs:get("x-forwarded-host"), path, query)
end

local function client_ip(h)
  local addr = h:streamInfo():downstreamDirectRemoteAddress() or ""
  local v6 = addr:match("^%[(.*)%]:%d+$")
  if v6 then return v6 end
  return (addr:gsub(":%d+$", ""))
end

local function query_param(path, name)
  local q = path:match("%?(.*)$")
  if not q then return nil end
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    if k == name then
      return (v:gsub("%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end))
    end
  end
  return nil
end

local function without_query_param(path, name)
  local base, q = path:match("^([^?]*)%?(.*)$")
  if not base then return path end
  local kept = {}
  for pair in q:gmatch("[^&]+") do
    local k = pair:match("^([^=]*)")
    if k ~= name then kept[#kept + 1] = pair end
  end
  if #kept == 0 then return base end
  return base .. "?" .. table.concat(kept, "&")
end

function envoy_on_request(h)
  local md = h:metadata()
  local hdrs = h:headers()
  local promised = {}
  local cors = md:get("cors")
  if cors then
    local origin = hdrs:get("origin")
    local allowed = origin ~= nil and (cors.any or cors.origins[origin:lower()] ~= nil
      or origin_pattern_allows(cors.patterns, origin))
    -- `*` when every origin gets the same answer, else the origin itself.
    local allow_origin = cors.star and "*" or origin
    if md:get("preflight") then
      local reply = { [":status"] = "204" }
      if allowed then
        reply["access-control-allow-origin"] = allow_origin
        if not cors.star then reply["vary"] = "origin" end
        local asked_method = hdrs:get("access-control-request-method")
        if cors.methods then
          reply["access-control-allow-methods"] = cors.methods
        elseif cors.credentials then
          reply["access-control-allow-methods"] = asked_method
        else
          reply["access-control-allow-methods"] = "*"
        end
        local allow_headers
        if cors.any_header and not cors.credentials then
          allow_headers = "*"
        else
          allow_headers = cors.headers or hdrs:get("access-control-request-headers")
        end
        if allow_headers then reply["access-control-allow-headers"] = allow_headers end
        if cors.expose then reply["access-control-expose-headers"] = cors.expose end
        if cors.credentials then reply["access-control-allow-credentials"] = "true" end
        if cors.max_age then reply["access-control-max-age"] = cors.max_age end
      end
      h:respond(reply, "")
      return
    end
    if allowed then
      promised["access-control-allow-origin"] = allow_origin
      if not cors.star then promised["vary"] = "origin" end
      if cors.credentials then promised["access-control-allow-credentials"] = "true" end
      if cors.expose then promised["access-control-expose-headers"] = cors.expose end
    end
  end

  local max_body = md:get("max_body")
  if max_body then
    local length = tonumber(hdrs:get("content-length") or "")
    if length and length > max_body then
      return json_reply(h, 413, "payload too large", promised)
    end
  end

  local consumer = nil
  local script, strip = md:get("script"), {}
  local auth = md:get("auth")
  if auth then
    -- The route's methods in the spec's order; the first that admits
    -- names the consumer.
    local admitted, claims, by_jwt = false, nil, nil
    for _, m in ipairs(auth.methods) do
      if m.kind == "key" then
        local value
        if m.query then
          value = query_param(hdrs:get(":path"), m.name)
        else
          value = hdrs:get(m.name)
        end
        if value and by_key[value] then consumer, admitted = by_key[value], true end
      elseif m.kind == "basic" then
        local b64 = credential(hdrs, "basic")
        local decoded = b64 and b64decode(b64)
        if decoded and by_basic[decoded] then consumer, admitted = by_basic[decoded], true end
      elseif m.kind == "jwt" then
        local ok, c, headers = JWT_CORE.check(JWT[m.id], hdrs:get("authorization"), os.time(), verifier(h))
        if ok then
          admitted, by_jwt, claims = true, m, headers
          if c and CONSUMERS[c] then consumer = c end
        end
      end
      if admitted then break end
    end
    if not admitted then
      local extra = {}
      for k, v in pairs(promised) do extra[k] = v end
      if auth.realm then extra["www-authenticate"] = 'Basic realm="' .. auth.realm .. '"' end
      return json_reply(h, 401, "unauthorized", extra)
    end
    -- Credentials and claim headers never go upstream, whichever method
    -- admitted; then the admitting token's claims. A route's script
    -- (phase 8) still reads a key header and a basic credential: the
    -- script filter removes them after it (`strip`).
    for _, m in ipairs(auth.methods) do
      if m.kind == "key" then
        if m.query then
          hdrs:replace(":path", without_query_param(hdrs:get(":path"), m.name))
        elseif script then
          strip[#strip + 1] = m.name
        else
          hdrs:remove(m.name)
        end
      elseif m.kind == "basic" then
        if script then
          strip[#strip + 1] = "authorization"
        elseif credential(hdrs, "basic") then
          hdrs:remove("authorization")
        end
      elseif m.kind == "jwt" then
        for _, name in pairs(m.claims) do hdrs:remove(name) end
      end
    end
    if by_jwt then
      -- The admitting token's claims, in claim order; what is no header
      -- value (a line break) was left out by the core.
      for _, pair in ipairs(claims) do hdrs:add(pair[1], pair[2]) end
    end
  end

  -- For the script filter: `req.consumer` and what it removes after the script.
  if script and (consumer or #strip > 0) then
    local d = h:streamInfo():dynamicMetadata()
    if consumer then d:set("gatefold", "consumer", consumer) end
    if #strip > 0 then d:set("gatefold", "strip", strip) end
  end

  local acl = md:get("acl")
  if acl then
    local groups = consumer and CONSUMERS[consumer].groups or {}
    local hit = false
    for g in pairs(acl.groups) do
      if groups[g] then hit = true end
    end
    if hit ~= acl.allow then
      return json_reply(h, 403, "forbidden", promised)
    end
  end

  local rate = md:get("rate")
  if rate then
    local now = os.time()
    local per = rate.per
    local start = now - now % per
    local key
    if rate.key == "global" then
      key = ""
    elseif rate.key == "consumer" and consumer then
      key = "c:" .. consumer
    elseif rate.key == "header" and hdrs:get(rate.header) then
      key = "h:" .. hdrs:get(rate.header)
    else
      key = "i:" .. client_ip(h)
    end
    local w = windows[rate.id]
    if not w or w.start ~= start then
      w = { start = start, counts = {} }
      windows[rate.id] = w
    end
    local n = (w.counts[key] or 0) + 1
    w.counts[key] = n
    local reset = tostring(start + per - now)
    promised["x-ratelimit-limit"] = tostring(rate.requests)
    promised["x-ratelimit-remaining"] = tostring(math.max(rate.requests - n, 0))
    promised["x-ratelimit-reset"] = reset
    if n > rate.requests then
      promised["retry-after"] = reset
      return json_reply(h, 429, "too many requests", promised)
    end
  end

  local redirect = md:get("redirect")
  if redirect then
    local full = hdrs:get(":path")
    local path = full:match("^[^?]*")
    local query = full:match("%?(.*)$")
    local caps = { path:match(redirect.pattern) }
    local params = {}
    for i, name in ipairs(redirect.names) do params[name] = caps[i] end
    local location
    if redirect.parts then
      location = parts_location(h, hdrs, redirect, path, query, params)
    else
      -- `to` as the spec writes it: params filled in, the request's query
      -- appended, a path on this host left relative.
      location = redirect.origin .. fill(redirect.template, params)
      if LOC.network_path(location) then
        location = nil
      else
        if query then
          location = location .. (redirect.has_query and "&" or "?") .. query
        end
        location = location .. redirect.fragment
      end
    end
    if not location then
      -- A param or the kept path made it point at another host (`//`, or
      -- `/\` as browsers read it), or the request's host is no plain name.
      return json_reply(h, 400, "bad request", promised)
    end
    -- The route's direct_response answers, its location header read from
    -- here, so the route's response headers apply as to any answer.
    h:streamInfo():dynamicMetadata():set("gatefold.lua", "location", location)
  end

  if next(promised) then
    h:streamInfo():dynamicMetadata():set("gatefold.lua", "promised", promised)
  end
end

function envoy_on_response(h)
  local md = h:streamInfo():dynamicMetadata():get("gatefold.lua")
  if md and md.promised then
    local hdrs = h:headers()
    for k, v in pairs(md.promised) do
      -- vary lists what the upstream varies on too: add, never replace.
      if k == "vary" then hdrs:add(k, v) else hdrs:replace(k, v) end
    end
  end
end
