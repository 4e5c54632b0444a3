-- A STAND-IN for Kong's PDK, NOT Kong: just enough of `kong.request`,
-- `kong.client`, `kong.service.request`, `kong.response`, `kong.ctx` and
-- `kong.log` to run gatefold's emitted post-function Lua under plain
-- luajit in the tests, plus a loader that gives a chunk only the globals
-- Kong's `untrusted_lua = sandbox` mode gives (no set/getmetatable, no
-- string.rep, no load, io, os or require). State is one request at a time,
-- as in a Kong worker.
local S = {}
local state

local function lower_keys(list)
  local out = {}
  for _, kv in ipairs(list) do
    local n = kv[1]:lower()
    local old = out[n]
    if old == nil then out[n] = kv[2]
    elseif type(old) == "table" then old[#old + 1] = kv[2]
    else out[n] = { old, kv[2] } end
  end
  return out
end

local function set(list, name, value)
  for i = #list, 1, -1 do if list[i][1] == name then table.remove(list, i) end end
  if value ~= nil then list[#list + 1] = { name, value } end
end

-- Ends the phase as kong.response.exit does (Kong stops the request there).
local EXIT = {}

S.kong = {
  request = {
    get_method = function() return state.method end,
    get_path = function() return state.path end,
    get_raw_query = function() return state.query or "" end,
    get_headers = function() return lower_keys(state.headers) end,
  },
  client = {
    get_forwarded_ip = function() return state.ip end,
    get_consumer = function() return state.consumer and { username = state.consumer } or nil end,
  },
  service = {
    request = {
      set_header = function(n, v) set(state.headers, n:lower(), v) end,
      clear_header = function(n) set(state.headers, n:lower(), nil) end,
      set_path = function(p) state.upstream_path = p end,
    },
  },
  response = {
    get_status = function() return state.status end,
    get_headers = function() return lower_keys(state.res_headers) end,
    set_header = function(n, v) set(state.res_headers, n:lower(), v) end,
    clear_header = function(n) set(state.res_headers, n:lower(), nil) end,
    set_status = function(s) state.status = s end,
    set_raw_body = function(b) state.body = b end,
    exit = function(status, body, headers)
      state.exited = true
      state.status = status
      state.body = body or ""
      state.res_headers = {}
      for n, v in pairs(headers or {}) do set(state.res_headers, n:lower(), v) end
      error(EXIT, 0)
    end,
  },
  ctx = { shared = {}, plugin = {} },
  log = {
    notice = function(m) state.logs[#state.logs + 1] = "notice: " .. m end,
    err = function(m) state.logs[#state.logs + 1] = "err: " .. m end,
  },
}

-- A new request (clears the per-request ctx as Kong does).
function S.request(r)
  state = r
  state.headers = state.headers or {}
  state.res_headers = state.res_headers or {}
  state.logs = {}
  S.kong.ctx.shared = {}
  S.kong.ctx.plugin = {}
  return state
end

-- The upstream answers (what Kong proxies before header_filter).
function S.upstream(status, headers, body)
  state.status, state.res_headers, state.body = status, headers, body
end

-- Loads a config string as Kong's sandbox does; returns the function the
-- chunk returns (Kong calls it per request).
function S.load(src)
  local string_ = {}
  for k, v in pairs(string) do
    if k ~= "rep" and k ~= "dump" then string_[k] = v end
  end
  local env = {
    _VERSION = _VERSION, assert = assert, error = error, ipairs = ipairs, next = next,
    pairs = pairs, pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
    type = type, unpack = unpack, xpcall = xpcall, math = math, string = string_,
    table = table, kong = S.kong,
  }
  local chunk = assert(loadstring(src, "=post-function"))
  setfenv(chunk, env)
  local f = chunk()
  assert(type(f) == "function", "the chunk returns the per-request function")
  return f
end

-- Runs a phase function; true when it ended the request with exit().
function S.phase(f)
  local ok, err = pcall(f)
  if ok then return false end
  if err == EXIT then return true end
  error(err, 0)
end

return S
