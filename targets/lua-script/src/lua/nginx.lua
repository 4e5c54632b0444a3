-- Host adapter: NGINX with the Lua module (OpenResty). The request script
-- runs in access_by_lua_block, the response script in
-- header_filter_by_lua_block; a failed response script's body is replaced
-- in body_filter_by_lua_block (`H.body_filter`). `req.consumer` is
-- `ngx.ctx.gatefold_consumer`, which the target's authentication sets.
local H = {}
local ngx, type, concat = ngx, type, table.concat
local BODY = '{"error":"script failed"}'

local function joined(v)
  if type(v) == "table" then return concat(v, ", ") end
  return v
end

function H.begin(side) end
function H.method() return ngx.req.get_method() end
function H.path() return ngx.var.uri end
function H.ip() return ngx.var.remote_addr end
function H.consumer() return ngx.ctx.gatefold_consumer end
function H.raw_query() return ngx.var.args end
function H.req_header(name) return joined(ngx.req.get_headers()[name]) end
function H.res_header(name) return joined(ngx.resp.get_headers()[name]) end
function H.status() return ngx.status end
function H.set_header(side, name, value)
  if side == "request" then ngx.req.set_header(name, value) else ngx.header[name] = value end
end
function H.remove_header(side, name)
  if side == "request" then ngx.req.clear_header(name) else ngx.header[name] = nil end
end
function H.set_path(p) ngx.req.set_uri(p, false) end
function H.ctx_load()
  local c = ngx.ctx.gatefold_script_ctx
  if not c then
    c = {}
    ngx.ctx.gatefold_script_ctx = c
  end
  return c
end
function H.ctx_store(c) ngx.ctx.gatefold_script_ctx = c end
function H.pass() ngx.ctx.gatefold_script_passed = true end
function H.passed() return ngx.ctx.gatefold_script_passed == true end
function H.log(msg) ngx.log(ngx.NOTICE, msg) end
function H.log_error(msg) ngx.log(ngx.ERR, msg) end
function H.respond(status, body, headers)
  ngx.status = status
  for _, kv in ipairs(headers) do ngx.header[kv[1]] = kv[2] end
  if body ~= "" then ngx.print(body) end
  return ngx.exit(status)
end

local function kept(name)
  return name == "x-request-id" or name:sub(1, 12) == "access-contr"
    or name:sub(1, 12) == "x-ratelimit-" or name:sub(1, 10) == "ratelimit-"
end
function H.fail(side)
  if side == "request" then
    return H.respond(500, BODY, { { "content-type", "application/json" } })
  end
  ngx.status = 500
  for name in pairs(ngx.resp.get_headers()) do
    if not kept(name:lower()) then ngx.header[name] = nil end
  end
  ngx.header["content-type"] = "application/json"
  ngx.header["content-length"] = nil
  ngx.ctx.gatefold_script_failed = true
end
-- body_filter_by_lua_block: the 500's body instead of the response's.
function H.body_filter()
  if not ngx.ctx.gatefold_script_failed then return end
  if ngx.ctx.gatefold_script_body_sent then
    ngx.arg[1] = ""
  else
    ngx.arg[1] = BODY
    ngx.ctx.gatefold_script_body_sent = true
  end
end
return H
