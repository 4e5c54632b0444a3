-- gatefold's request phases 2 to 6 for Envoy (cors, request-size-limit,
-- authentication, acl, rate-limit), driven by each route's metadata under
-- the filter name `gatefold.lua`. Generated data (consumers, secrets read
-- from the environment at start-up) comes before this text.
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

-- Compact JSON for claims that are not strings.
local function to_json(v)
  local t = type(v)
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  elseif t == "number" then
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
    return tostring(v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    if #v > 0 or next(v) == nil then
      local parts = {}
      for _, x in ipairs(v) do parts[#parts + 1] = to_json(x) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = to_json(k) .. ":" .. to_json(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
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
    if k == name then return v end
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
    local allowed = origin ~= nil and (cors.any or cors.origins[origin:lower()] ~= nil)
    if md:get("preflight") then
      local reply = { [":status"] = "204" }
      if allowed then
        reply["access-control-allow-origin"] = cors.any and "*" or origin
        if not cors.any then reply["vary"] = "origin" end
        reply["access-control-allow-methods"] = cors.methods
        local asked = hdrs:get("access-control-request-headers")
        local allow_headers = cors.headers or asked
        if allow_headers and allow_headers ~= "" then reply["access-control-allow-headers"] = allow_headers end
        if cors.credentials then reply["access-control-allow-credentials"] = "true" end
        if cors.max_age then reply["access-control-max-age"] = cors.max_age end
        if cors.expose then reply["access-control-expose-headers"] = cors.expose end
      end
      h:respond(reply, "")
      return
    end
    if allowed then
      promised["access-control-allow-origin"] = cors.any and "*" or origin
      if not cors.any then promised["vary"] = "origin" end
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
  local auth = md:get("auth")
  if auth then
    local admitted = false
    local key = auth.key
    if key then
      local value
      if key.query then
        value = query_param(hdrs:get(":path"), key.name)
      else
        value = hdrs:get(key.name)
      end
      if value and by_key[value] then
        consumer, admitted = by_key[value], true
        if key.query then
          hdrs:replace(":path", without_query_param(hdrs:get(":path"), key.name))
        else
          hdrs:remove(key.name)
        end
      end
    end
    if not admitted and auth.basic then
      local header = hdrs:get("authorization") or ""
      local scheme, token = header:match("^(%S+)%s+(%S+)$")
      if scheme and scheme:lower() == "basic" then
        local decoded = b64decode(token)
        if decoded and by_basic[decoded] then
          consumer, admitted = by_basic[decoded], true
          hdrs:remove("authorization")
        end
      end
    end
    local jwt = auth.jwt
    if jwt then
      -- Claim headers never come from the client.
      for _, name in pairs(jwt.claims) do hdrs:remove(name) end
      if not admitted then
        local verified = h:streamInfo():dynamicMetadata():get("envoy.filters.http.jwt_authn")
        local payload = verified and verified.payload
        local header = verified and verified.header
        if payload and header and jwt.algs[header.alg] then
          admitted = true
          local c = payload[jwt.claim]
          if type(c) == "string" and CONSUMERS[c] then consumer = c end
          for claim, name in pairs(jwt.claims) do
            local v = payload[claim]
            if v ~= nil then
              hdrs:replace(name, type(v) == "string" and v or to_json(v))
            end
          end
        end
      end
    end
    if not admitted then
      local extra = {}
      for k, v in pairs(promised) do extra[k] = v end
      if auth.realm then extra["www-authenticate"] = 'Basic realm="' .. auth.realm .. '"' end
      return json_reply(h, 401, "unauthorized", extra)
    end
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
    -- A redirect to a path on this host, as the spec writes it: params
    -- filled in, the request's query appended, the location left relative
    -- (Envoy's route redirect always makes it absolute).
    local full = hdrs:get(":path")
    local path = full:match("^[^?]*")
    local query = full:match("%?(.*)$")
    local caps = { path:match(redirect.pattern) }
    local params = {}
    for i, name in ipairs(redirect.names) do params[name] = caps[i] end
    local location = redirect.template:gsub("{([^}]*)}", function(name) return params[name] end)
    if location:match("^[/\\][/\\]") then
      -- A param made it point at another host (`//`, or `/\` as browsers read it).
      return json_reply(h, 400, "bad request", promised)
    end
    if query then
      location = location .. (redirect.has_query and "&" or "?") .. query
    end
    location = location .. redirect.fragment
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
