-- Host adapter: Kong PDK. The request script runs in post-function's
-- `access` phase, the response script in its `header_filter` phase; a
-- failed response script's body is replaced in `body_filter`.
local H = {}
local kong, type, concat = kong, type, table.concat
local BODY = '{"error":"script failed"}'

local function joined(v)
  if type(v) == "table" then return concat(v, ", ") end
  return v
end

function H.begin(side) end
function H.method() return kong.request.get_method() end
function H.path() return kong.request.get_path() end
function H.ip() return kong.client.get_forwarded_ip() end
function H.consumer()
  local c = kong.client.get_consumer()
  return c and c.username or nil
end
function H.raw_query()
  local q = kong.request.get_raw_query()
  if q == "" then return nil end
  return q
end
function H.req_header(name) return joined(kong.request.get_headers()[name]) end
function H.res_header(name) return joined(kong.response.get_headers()[name]) end
function H.status() return kong.response.get_status() end
function H.set_header(side, name, value)
  if side == "request" then kong.service.request.set_header(name, value)
  else kong.response.set_header(name, value) end
end
function H.remove_header(side, name)
  if side == "request" then kong.service.request.clear_header(name)
  else kong.response.clear_header(name) end
end
-- Kept for phase 10: a prefix rewrite or strip-base-path applies to it.
function H.set_path(p)
  kong.service.request.set_path(p)
  kong.ctx.shared.gatefold_script_path = p
end
function H.ctx_load()
  local c = kong.ctx.shared.gatefold_script_ctx
  if not c then
    c = {}
    kong.ctx.shared.gatefold_script_ctx = c
  end
  return c
end
function H.ctx_store(c) kong.ctx.shared.gatefold_script_ctx = c end
function H.pass() kong.ctx.shared.gatefold_script_passed = true end
function H.passed() return kong.ctx.shared.gatefold_script_passed == true end
function H.log(msg) kong.log.notice(msg) end
function H.log_error(msg) kong.log.err(msg) end
function H.respond(status, body, headers)
  local h = {}
  for _, kv in ipairs(headers) do h[kv[1]] = kv[2] end
  return kong.response.exit(status, body, h)
end

-- Headers the gateway itself promised a response (CORS, request id, rate
-- limit) stay on the 500 that replaces a response; the rest go.
local function kept(name)
  return name == "x-request-id" or name:sub(1, 12) == "access-contr"
    or name:sub(1, 12) == "x-ratelimit-" or name:sub(1, 10) == "ratelimit-"
end
function H.fail(side)
  if side == "request" then
    return kong.response.exit(500, BODY, { ["content-type"] = "application/json" })
  end
  kong.response.set_status(500)
  for name in pairs(kong.response.get_headers()) do
    if not kept(name:lower()) then kong.response.clear_header(name) end
  end
  kong.response.set_header("content-type", "application/json")
  kong.ctx.shared.gatefold_script_failed = true
end
-- The body_filter side of a failed response script.
function H.body_filter()
  if kong.ctx.shared.gatefold_script_failed then kong.response.set_raw_body(BODY) end
end
return H
