-- A STAND-IN for Kong's PDK, NOT Kong: just enough of `kong.request`,
-- `kong.client`, `kong.service.request`, `kong.response`, `kong.ctx` and
-- `kong.log` to run gatefold's emitted pre-function and post-function Lua
-- under plain luajit in the tests, plus a loader that gives a chunk only
-- the globals Kong's `untrusted_lua = sandbox` mode gives (no
-- set/getmetatable, no bit, no string.rep, no load, io or os; `require`
-- only of the modules kong.conf's `untrusted_lua_sandbox_requires` lists;
-- `ngx` in full, kong/tools/sandbox/init.lua). Of `ngx` it has what the chunks use:
-- `ngx.now()` (a clock the test sets) and the shared dict
-- `kong_rate_limiting_counters` (`get`, and `incr` with init and init_ttl
-- as lua-nginx-module documents it, entries expiring on that clock) and
-- `ngx.req.set_header` / `clear_header`, `ngx.var.request_uri`, `host`,
-- `https` and `ssl_server_name`. Also `kong.vault.get` of env
-- references and `kong.client.load_consumer` / `authenticate`.
-- State is one request at a time, as in a Kong worker; `kong.ctx.shared`
-- is a new table per request. With `S.configure` it also runs a
-- request's phases through the pre-function and post-function plugins
-- as Kong's runloop picks them (`S.run`).
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

-- The first value of a header, as kong.request.get_header gives it.
local function first(list, name)
  name = name:lower()
  for _, kv in ipairs(list) do
    if kv[1]:lower() == name then return kv[2] end
  end
  return nil
end

-- nginx keeps a request body over client_body_buffer_size (Kong: 8k) in a
-- file; kong.request.get_raw_body(max) reads such a file only up to max.
local BODY_BUFFER = 8192

-- ngx.shared.DICT: values with an expiry on the test's clock.
local function dict()
  local d = { items = {} }
  local function live(k)
    local it = d.items[k]
    if it and it.expires and it.expires <= S.clock then d.items[k] = nil; return nil end
    return it
  end
  function d:get(k) local it = live(k); return it and it.value end
  function d:incr(k, v, init, ttl)
    local it = live(k)
    if not it then
      if init == nil then return nil, "not found" end
      it = { value = init, expires = ttl and ttl > 0 and S.clock + ttl or nil }
      d.items[k] = it
    end
    it.value = it.value + v
    return it.value
  end
  return d
end

S.clock = 0
S.ngx = {
  now = function() return S.clock end,
  update_time = function() end,
  -- As nginx's ngx_decode_base64 reads: the characters before the first
  -- `=` (or the end), all of the standard alphabet, not 4n+1 of them; the
  -- rest ignored.
  decode_base64 = function(s)
    local A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    local eq = s:find("=", 1, true)
    local body = eq and s:sub(1, eq - 1) or s
    if #body % 4 == 1 then return nil end
    local out, acc, bits = {}, 0, 0
    for i = 1, #body do
      local v = A:find(body:sub(i, i), 1, true)
      if not v then return nil end
      acc = acc * 64 + (v - 1)
      bits = bits + 6
      if bits >= 8 then
        bits = bits - 8
        out[#out + 1] = string.char(math.floor(acc / 2 ^ bits) % 256)
        acc = acc % 2 ^ bits
      end
    end
    return table.concat(out)
  end,
  shared = { kong_rate_limiting_counters = dict() },
  -- As lua-nginx-module sets request headers: a string replaces ("" removes);
  -- a table replaces with its first value ("" only clears) and adds the
  -- others as they are.
  req = {
    clear_header = function(n) set(state.headers, n:lower(), nil) end,
    set_header = function(n, v)
      n = n:lower()
      if type(v) ~= "table" then v = { v } end
      set(state.headers, n, nil)
      for i, x in ipairs(v) do
        if not (i == 1 and x == "") then state.headers[#state.headers + 1] = { n, x } end
      end
    end,
  },
}

-- What `untrusted_lua_sandbox_requires` allows (name -> true) and the
-- modules `require` then gives (the tests set both).
S.requires = {}
S.modules = {}
-- Kong's environment, read by the env vault (name upper-cased, `-` as `_`).
S.env = {}
-- The consumers Kong holds (username -> true).
S.consumers = {}

S.kong = {
  request = {
    get_method = function() return state.method end,
    get_path = function() return state.path end,
    get_raw_query = function() return state.query or "" end,
    -- The listener's scheme (ngx.var.scheme).
    get_scheme = function() return state.listener_scheme or "http" end,
    get_headers = function() return lower_keys(state.headers) end,
    get_header = function(n) return first(state.headers, n) end,
    get_raw_body = function(max)
      local b = state.req_body or ""
      if #b > BODY_BUFFER then
        if not max or max < 0 then return nil, "request body did not fit into client body buffer" end
        if max > 0 and #b > max then
          return nil, ("request body file too big: %d > %d"):format(#b, max)
        end
      end
      state.body_read = true
      return b
    end,
  },
  client = {
    -- The TCP peer (realip_remote_addr); no trusted_ips in these tests.
    get_ip = function() return state.ip end,
    get_forwarded_ip = function() return state.ip end,
    get_consumer = function() return state.consumer and { username = state.consumer } or nil end,
    load_consumer = function(name, by_username)
      assert(by_username, "by username")
      if S.consumers[name] then return { id = "id-" .. name, username = name } end
      return nil
    end,
    authenticate = function(consumer, credential)
      assert(consumer or credential, "consumer and credential can't both be nil")
      state.consumer = consumer and consumer.username
      state.credential = credential
    end,
  },
  vault = {
    get = function(ref)
      local name = ref:match("^{vault://env/(.+)}$")
      if not name then return nil, "not an env vault reference" end
      local v = S.env[name:upper():gsub("-", "_")]
      if v == nil then return nil, "no value" end
      return v
    end,
  },
  service = {
    -- The Kong upstream (entity) the balancer then picks a target of.
    set_upstream = function(h) state.upstream_name = h; return true end,
    request = {
      set_scheme = function(sc) state.scheme = sc end,
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
  -- Kong's log functions join their arguments, each through tostring.
  log = {
    notice = function(...) state.logs[#state.logs + 1] = "notice: " .. S.join(...) end,
    err = function(...) state.logs[#state.logs + 1] = "err: " .. S.join(...) end,
  },
}

function S.join(...)
  local t = {}
  for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
  return table.concat(t)
end

-- A new request (clears the per-request ctx as Kong does).
function S.request(r)
  state = r
  state.headers = state.headers or {}
  state.res_headers = state.res_headers or {}
  state.logs = {}
  -- ngx.var.request_uri: the request line's target as received; host:
  -- nginx's $host (the host header lower-cased, without its port); https
  -- ("on" on the TLS listener) and ssl_server_name (the SNI name, nil
  -- without one), as nginx sets them.
  local host = first(state.headers, "host")
  S.ngx.var = {
    request_uri = state.request_uri or (state.path .. (state.query and ("?" .. state.query) or "")),
    host = host and (host:lower():gsub(":%d+$", "")) or "",
    https = state.listener_scheme == "https" and "on" or "",
    ssl_server_name = state.sni,
  }
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
  local f = S.run_sandboxed(src)
  assert(type(f) == "function", "the chunk returns the per-request function")
  return f
end

-- Runs a chunk once with the sandbox's globals; what it returns.
function S.run_sandboxed(src)
  local string_ = {}
  for k, v in pairs(string) do
    if k ~= "rep" and k ~= "dump" then string_[k] = v end
  end
  local env = {
    _VERSION = _VERSION, assert = assert, error = error, ipairs = ipairs, next = next,
    pairs = pairs, pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
    type = type, unpack = unpack, xpcall = xpcall, math = math, string = string_,
    table = table, kong = S.kong, ngx = S.ngx,
    require = function(name)
      if not S.requires[name] then error(("require '%s' not allowed within sandbox"):format(name), 2) end
      return S.modules[name]
    end,
  }
  local chunk = assert(loadstring(src, "=function"))
  setfenv(chunk, env)
  return chunk()
end

-- The serverless plugins of a config, as Kong's runloop runs them
-- (kong/init.lua, kong/runloop/plugins_iterator.lua): a list of
-- { name = "pre-function" | "post-function", route = NAME or nil,
-- service = NAME or nil, rewrite = { f, ... }, access = ...,
-- header_filter = ..., body_filter = ... }, each chunk loaded (S.load)
-- once, as Kong loads a config's chunks once per worker.
S.plugins = {}
S.PRIORITY = { ["pre-function"] = 1000000, ["post-function"] = -1000 }
function S.configure(plugins) S.plugins = plugins end

-- The plugins Kong runs in `phase` on a request to `route` (through
-- `service`): in `rewrite` only the global ones (no route is known yet;
-- execute_global_plugins_iterator), whatever plugins the route has; in
-- later phases, of each name, the most specific (the route's, else the
-- service's, else the global one: lookup_cfg). Highest priority first.
local function chosen(phase, route, service)
  local best = {}
  for _, p in ipairs(S.plugins) do
    local rank
    if not p.route and not p.service then rank = 1
    elseif phase == "rewrite" then rank = nil
    elseif p.route then rank = p.route == route and 3 or nil
    else rank = p.service == service and 2 or nil end
    if rank and (not best[p.name] or best[p.name].rank < rank) then
      best[p.name] = { rank = rank, plugin = p }
    end
  end
  local list = {}
  for _, b in pairs(best) do list[#list + 1] = b.plugin end
  table.sort(list, function(a, b) return S.PRIORITY[a.name] > S.PRIORITY[b.name] end)
  return list
end

-- Runs `phase` of the configured plugins on a request to `route`; true
-- when one ended the request.
function S.run(phase, route, service)
  for _, p in ipairs(chosen(phase, route, service)) do
    if S.phases(p[phase] or {}) then return true end
  end
  return false
end

-- Runs a phase function; true when it ended the request with exit().
function S.phase(f)
  local ok, err = pcall(f)
  if ok then return false end
  if err == EXIT then return true end
  error(err, 0)
end

-- Runs the functions of one plugin's phase in order, as Kong does; true
-- when one ended the request.
function S.phases(list)
  for _, f in ipairs(list) do
    if S.phase(f) then return true end
  end
  return false
end

return S
