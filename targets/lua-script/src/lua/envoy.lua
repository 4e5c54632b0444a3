-- Host adapter: Envoy's Lua filter (envoy.filters.http.lua). The request
-- script runs in envoy_on_request(handle), the response script in
-- envoy_on_response(handle); both pass the handle to R.run. ctx and the
-- phase-8 mark live in the stream's dynamic metadata under
-- `gatefold.script`; `req.consumer` is the `consumer` key of the
-- `gatefold` metadata, which the target's authentication sets.
local H = {}
local type, tostring, concat = type, tostring, table.concat
local BODY = '{"error":"script failed"}'
local NS = "gatefold.script"
local h -- the handle of the current call (scripts never yield)

function H.begin(side, handle) h = handle end

local function all(headers, name)
  local n = headers:getNumValues(name)
  if n == 0 then return nil end
  local vals = {}
  for i = 0, n - 1 do vals[#vals + 1] = headers:getAtIndex(name, i) end
  return concat(vals, ", ")
end
local function split_path()
  local p = h:headers():get(":path") or "/"
  local q = p:find("?", 1, true)
  if q then return p:sub(1, q - 1), p:sub(q + 1) end
  return p, nil
end

function H.method() return h:headers():get(":method") end
function H.path() local p = split_path(); return p end
function H.ip()
  local a = h:streamInfo():downstreamRemoteAddress() or ""
  local v6 = a:match("^%[(.*)%]:%d+$")
  if v6 then return v6 end
  return (a:gsub(":%d+$", ""))
end
function H.consumer()
  local m = h:streamInfo():dynamicMetadata():get("gatefold")
  return m and m.consumer or nil
end
function H.raw_query() local _, q = split_path(); return q end
-- Headers the front filter (gatefold.front) rewrites before any script:
-- the script reads the client's values, which it kept.
local FRONT = { host = true, ["x-forwarded-for"] = true, ["x-forwarded-host"] = true }
function H.req_header(name)
  if FRONT[name] then
    local f = h:streamInfo():dynamicMetadata():get("gatefold.front")
    if f and f.client then return f.client[name] end
  end
  return all(h:headers(), name)
end
function H.res_header(name) return all(h:headers(), name) end
function H.status() return tonumber(h:headers():get(":status")) end
function H.set_header(side, name, value) h:headers():replace(name, value) end
function H.remove_header(side, name) h:headers():remove(name) end
function H.set_path(p)
  local _, q = split_path()
  h:headers():replace(":path", q and (p .. "?" .. q) or p)
end
local function meta() return h:streamInfo():dynamicMetadata():get(NS) or {} end
function H.ctx_load()
  local c = {}
  for k, v in pairs(meta().ctx or {}) do c[k] = v end
  return c
end
function H.ctx_store(c) h:streamInfo():dynamicMetadata():set(NS, "ctx", c) end
function H.pass() h:streamInfo():dynamicMetadata():set(NS, "passed", true) end
function H.passed() return meta().passed == true end
function H.log(msg) h:logInfo(msg) end
function H.log_error(msg) h:logErr(msg) end
function H.respond(status, body, headers)
  local out = { [":status"] = tostring(status) }
  for _, kv in ipairs(headers) do out[kv[1]] = kv[2] end
  -- Envoy removes content-type from a local reply with an empty body;
  -- envoy_on_response of the script filter puts this one back.
  if body == "" and out["content-type"] then
    h:streamInfo():dynamicMetadata():set(NS, "content_type", out["content-type"])
  end
  h:respond(out, body)
end
local function kept(name)
  return name == "x-request-id" or name:sub(1, 12) == "access-contr"
    or name:sub(1, 12) == "x-ratelimit-" or name:sub(1, 10) == "ratelimit-"
end
function H.fail(side)
  if side == "request" then
    return H.respond(500, BODY, { { "content-type", "application/json" } })
  end
  local hs = h:headers()
  local drop = {}
  for name, _ in pairs(hs) do
    if name:sub(1, 1) ~= ":" and not kept(name:lower()) then drop[#drop + 1] = name end
  end
  for _, name in ipairs(drop) do hs:remove(name) end
  hs:replace(":status", "500")
  hs:replace("content-type", "application/json")
  h:body():setBytes(BODY)
end
return H
