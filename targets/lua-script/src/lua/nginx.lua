-- Host adapter: NGINX with the Lua module (OpenResty). The request script
-- runs in access_by_lua_block, the response script in
-- header_filter_by_lua_block; a failed response script's body is replaced
-- in body_filter_by_lua_block (`H.body_filter`). `req.consumer` is
-- `ngx.ctx.gatefold_consumer`, which the target's authentication sets.
-- The path is the target's `$gf_path` (the spec's normalized path);
-- `req.setPath` writes `$gf_spath`, which the upstream path starts from.
-- ctx and the phase-8 mark live in variables (`$gf_script_ctx`,
-- `$gf_script_passed`), which survive the internal redirect to a route's
-- answer (ngx.ctx does not).
local H = {}
local ngx, type, concat = ngx, type, table.concat
local BODY = '{"error":"script failed"}'

-- ngx.header and ngx.req.set_header drop a header set to "": an empty
-- value is written as one space, which is an empty value on the wire (RFC
-- 9110 5.5: whitespace around a value is not part of it; nginx trims it
-- from what it reads, so " " is never a value it read).
local function sent(v)
  if v == "" then return " " end
  return v
end
local function unspace(v)
  if v == " " then return "" end
  return v
end
local function joined(v)
  if type(v) == "table" then
    local t = {}
    for i = 1, #v do t[i] = unspace(v[i]) end
    return concat(t, ", ")
  end
  return unspace(v)
end

function H.begin(side) end
function H.method() return ngx.req.get_method() end
function H.path() return ngx.var.gf_path end
function H.ip() return ngx.var.remote_addr end
function H.consumer() return ngx.ctx.gatefold_consumer end
function H.raw_query() return ngx.var.args end
function H.req_header(name) return joined(ngx.req.get_headers()[name]) end
function H.res_header(name) return joined(ngx.resp.get_headers()[name]) end
function H.status() return ngx.status end
function H.set_header(side, name, value)
  if side == "request" then ngx.req.set_header(name, sent(value)) else ngx.header[name] = sent(value) end
end
function H.remove_header(side, name)
  if side == "request" then ngx.req.clear_header(name) else ngx.header[name] = nil end
end
function H.set_path(p) ngx.var.gf_spath = p end
-- ctx as `#key:key#value:value...` (lengths in bytes), in a variable.
function H.ctx_load()
  local s, c, i = ngx.var.gf_script_ctx or "", {}, 1
  while i <= #s do
    local n = tonumber(s:match("^(%d+):", i))
    local colon = s:find(":", i, true)
    local k = s:sub(colon + 1, colon + n)
    i = colon + n + 1
    n = tonumber(s:match("^(%d+):", i))
    colon = s:find(":", i, true)
    c[k] = s:sub(colon + 1, colon + n)
    i = colon + n + 1
  end
  return c
end
function H.ctx_store(c)
  local out = {}
  for k, v in pairs(c) do
    out[#out + 1] = #k .. ":" .. k .. #v .. ":" .. v
  end
  ngx.var.gf_script_ctx = concat(out)
end
function H.pass() ngx.var.gf_script_passed = "1" end
function H.passed() return ngx.var.gf_script_passed == "1" end
function H.log(msg) ngx.log(ngx.NOTICE, msg) end
function H.log_error(msg) ngx.log(ngx.ERR, msg) end
function H.respond(status, body, headers)
  ngx.status = status
  for _, kv in ipairs(headers) do ngx.header[kv[1]] = sent(kv[2]) end
  if body ~= "" then
    ngx.print(body)
  else
    -- With nothing sent, ngx.exit(404) would answer nginx's own error
    -- page: send the empty answer's headers first. Assigning content-type
    -- (nil when the answer has none) keeps nginx's default_type off it.
    if ngx.header["content-type"] == nil then ngx.header["content-type"] = nil end
    ngx.header["content-length"] = 0
    ngx.send_headers()
  end
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
