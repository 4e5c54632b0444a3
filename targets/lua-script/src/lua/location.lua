-- The `location` of a part-wise `redirect` (language 1.1), shared by the
-- Lua targets (NGINX, Envoy, Kong) so they agree with the reference
-- gateway (targets/reference/src/gateway/policies/redirect.rs) and with
-- each other. A chunk returning the table `L`; each host gives it what it
-- read from the request: the listener's scheme, the client's authority
-- (`host` / `:authority`, with its port), the path and the query.
local L = {}

-- Whether a location's path starts like a network-path reference
-- (`//host`), counting `\` as `/` as browsers do.
function L.network_path(s)
  return s:find("^[/\\][/\\]") ~= nil
end

-- The rest of `path` after the first `n` segments, with its leading `/`:
-- `/v1/*` (n = 1) on `/v1/a/b` gives `/a/b`, on `/v1` gives ``.
function L.prefix_tail(path, n)
  local tail = path
  for _ = 1, n do
    local after = tail:sub(1, 1) == "/" and tail:sub(2) or tail
    local slash = after:find("/", 1, true)
    tail = slash and after:sub(slash) or ""
  end
  return tail
end

-- The number of 16-bit groups in `part` (colon-separated hex groups, the
-- last may be a dotted IPv4 address when `v4` allows), or nil.
local function groups(part, v4)
  if part == "" then return 0 end
  local items = {}
  for g in (part .. ":"):gmatch("([^:]*):") do items[#items + 1] = g end
  local n = 0
  for i, g in ipairs(items) do
    if i == #items and v4 and g:find(".", 1, true) then
      local q = { g:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$") }
      if #q ~= 4 then return nil end
      for _, x in ipairs(q) do
        if #x > 3 or tonumber(x) > 255 or (#x > 1 and x:sub(1, 1) == "0") then return nil end
      end
      n = n + 2
    elseif g:find("^%x%x?%x?%x?$") then
      n = n + 1
    else
      return nil
    end
  end
  return n
end

-- Whether s is an IPv6 address as Rust's Ipv6Addr parses it.
local function ipv6(s)
  local dc = s:find("::", 1, true)
  if not dc then return groups(s, true) == 8 end
  if s:find("::", dc + 1, true) then return false end
  local head, tail = groups(s:sub(1, dc - 1), false), groups(s:sub(dc + 2), true)
  return head ~= nil and tail ~= nil and head + tail <= 7
end

-- Whether a request's host (without port) is a plain DNS name, IPv4 or
-- bracketed IPv6 address, safe to write into a location.
function L.plain_host(h)
  local v6 = h:match("^%[(.*)%]$")
  if v6 then return ipv6(v6) end
  return h ~= "" and h:find("^[%w._-]+$") ~= nil
end

-- The host (without port) and port of an authority as the client sent
-- it; the port is nil when none is given. nil when the host is not plain
-- or the port is not one (`:PORT` as Rust's u16::from_str reads PORT: an
-- optional `+`, digits).
function L.authority(a)
  local host
  if a:sub(1, 1) == "[" then
    local close = a:find("]", 1, true)
    host = close and a:sub(1, close) or a
  else
    host = a:match("^(.*):") or a
  end
  if not L.plain_host(host) then return nil end
  local rest = a:sub(#host + 1)
  if rest == "" then return host, nil end
  local digits = rest:match("^:%+?(%d+)$")
  local port = digits and tonumber(digits)
  if not port or port > 65535 then return nil end
  return host, port
end

-- The location: `r` holds the spec's parts (`scheme`, `host`, `port`,
-- each nil when not given), `listener` the scheme the request came in on,
-- `authority` the client's host and port, `path` the location's path and
-- `query` the query to keep (nil for none). Parts not given come from the
-- request; a new scheme drops the request's port (it was the old
-- scheme's); a port that is the scheme's default is left out. nil when
-- the answer must be 400: a path that is not absolute or starts like
-- another host's, an authority that is not plain, or a control character
-- (a header value cannot hold one).
function L.parts(r, listener, authority, path, query)
  if path:sub(1, 1) ~= "/" or L.network_path(path) then return nil end
  local req_host, req_port = L.authority(authority or "")
  if not req_host then return nil end
  local scheme = r.scheme or listener
  local port = r.port
  if not port and not r.scheme then port = req_port end
  local out = scheme .. "://" .. (r.host or req_host)
  if port and port ~= (scheme == "https" and 443 or 80) then
    out = out .. ":" .. string.format("%d", port)
  end
  out = out .. path
  if query then out = out .. "?" .. query end
  if out:find("[%z\1-\8\10-\31\127]") then return nil end
  return out
end

return L
