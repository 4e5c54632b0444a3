-- gatefold's front door for Envoy: what the reference gateway does to every
-- request before routing and Envoy cannot do natively. First in the chain
-- (filter `gatefold.front`), on every request:
--
-- * the path is normalized exactly as the spec says (decode unreserved
--   escapes, merge slashes, then resolve dot segments; a `..` above the
--   root or a stray `%` is 400). Envoy's own `normalize_path` resolves dot
--   segments before merging slashes and clamps `..` at the root, so a
--   path could reach a different route; it is off, and this runs instead;
-- * on a TLS chain (`CERT_NAMES`, generated before this text), a host its
--   certificate does not cover is misdirected (421);
-- * a request without `host` (HTTP/1.1) or with two is 400;
-- * the port leaves `host` (for virtual host matching) after being sent
--   on as `x-forwarded-host`, and `x-forwarded-for` gets the peer appended
--   (Envoy's own XFF handling is off: `skip_xff_append`).
--
-- * with `SCRIPTS` (the spec has a `script`), the client's `host`,
--   `x-forwarded-for` and `x-forwarded-host` are kept in the dynamic
--   metadata `gatefold.front` (`client`) for scripts' `req.header()`;
--
-- * each distinct `match` condition of the spec (`CONDITIONS`, generated
--   before this text: `{ kind, name, value }`) that holds is marked with
--   the header `gatefold-cond-N` (a client's copy is removed first), which
--   route entries require: a header's first line equal to the value, or a
--   query parameter's first occurrence (name and value percent-decoded).
--
-- A changed path or host clears Envoy's route cache, so routing sees what
-- the spec matches on. The work runs under pcall: a script error answers
-- 500 rather than letting the raw request through.

local NO_HOST = "gatefold-no-host.invalid"

local function unreserved(v)
  return (v >= 48 and v <= 57) or (v >= 65 and v <= 90) or (v >= 97 and v <= 122)
    or v == 45 or v == 46 or v == 95 or v == 126
end

local function decode_unreserved(hex)
  local v = tonumber(hex, 16)
  if unreserved(v) then return string.char(v) end
  return nil -- keep the escape as it is
end

-- The normalized path, or nil when it is malformed.
local function normalize(raw)
  if raw:byte(1) ~= 47 then return nil end
  if not raw:find("%", 1, true) and not raw:find("//", 1, true)
    and not raw:find("/%.%.?/") and not raw:find("/%.%.?$") then
    return raw
  end
  for pos in raw:gmatch("()%%") do
    if not raw:sub(pos + 1, pos + 2):match("^%x%x$") then return nil end
  end
  local text = raw:gsub("%%(%x%x)", decode_unreserved)
  local segs, trailing, start = {}, false, 2
  while true do
    local slash = text:find("/", start, true)
    local seg = text:sub(start, slash and slash - 1 or -1)
    local last = slash == nil
    if seg == "" or seg == "." then
      trailing = last
    elseif seg == ".." then
      if #segs == 0 then return nil end
      segs[#segs] = nil
      trailing = last
    else
      segs[#segs + 1] = seg
      trailing = false
    end
    if last then break end
    start = slash + 1
  end
  local path = "/" .. table.concat(segs, "/")
  if trailing and #segs > 0 then path = path .. "/" end
  return path
end

local function peer(h)
  local addr = h:streamInfo():downstreamDirectRemoteAddress() or ""
  return addr:match("^%[(.*)%]:%d+$") or addr:match("^(.*):%d+$") or addr
end

-- Whether certificate name `name` covers `host` (a wildcard takes exactly
-- one label), both lower case.
local function covers(name, host)
  if name:sub(1, 2) == "*." then
    local label, rest = host:match("^([^.]+)%.(.*)$")
    return label ~= nil and rest == name:sub(3)
  end
  return name == host
end

local function misdirected(authority)
  if CERT_NAMES == nil or authority == nil or authority == "" then return false end
  local host = authority:lower()
  host = host:match("^(%[.*%]):%d*$") or host:match("^([^:%[]*):%d*$") or host
  for _, name in ipairs(CERT_NAMES) do
    if covers(name:lower(), host) then return false end
  end
  return true
end

local function decode(s)
  return (s:gsub("%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end))
end

-- The raw value of the first pair of `query` whose decoded name is `name`.
local function first_param(query, name)
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    if not k then k, v = pair, "" end
    if decode(k) == name then return v end
  end
  return nil
end

local function mark_conditions(headers, query)
  for i, c in ipairs(CONDITIONS) do
    local marker = "gatefold-cond-" .. i
    headers:remove(marker)
    local holds
    if c[1] == "h" then
      holds = headers:getAtIndex(c[2], 0) == c[3]
    else
      local v = first_param(query, c[2])
      holds = v ~= nil and decode(v) == c[3]
    end
    if holds then headers:add(marker, "1") end
  end
end

-- Every line of a header, joined by ", ", or nil.
local function all(headers, name)
  local n = headers:getNumValues(name)
  if n == 0 then return nil end
  local vals = {}
  for i = 0, n - 1 do vals[#vals + 1] = headers:getAtIndex(name, i) end
  return table.concat(vals, ", ")
end

-- nil when the request goes on, else the status to answer.
local function front(h)
  local headers = h:headers()
  local changed = false
  local authority = headers:get(":authority")
  if misdirected(authority) then return 421 end
  if authority == nil or authority == "" or authority:find(",", 1, true) then
    return 400
  end
  if SCRIPTS then
    -- The client's values of the headers changed below: a script's
    -- `req.header()` reads the request as received (the script host reads
    -- them from here).
    local client = { ["x-forwarded-for"] = all(headers, "x-forwarded-for"),
      ["x-forwarded-host"] = all(headers, "x-forwarded-host") }
    if authority ~= NO_HOST then client.host = authority end
    h:streamInfo():dynamicMetadata():set("gatefold.front", "client", client)
  end
  local full = headers:get(":path") or ""
  local raw, query = full:match("^([^?]*)(.*)$")
  local path = normalize(raw)
  if path == nil then return 400 end
  if path ~= raw then
    headers:replace(":path", path .. query)
    changed = true
  end
  if authority == NO_HOST then
    -- HTTP/1.0 without host: Envoy's default host, never forwarded.
    headers:remove("x-forwarded-host")
  else
    headers:replace("x-forwarded-host", authority)
    local bare = authority:match("^(%[.*%]):%d*$") or authority:match("^([^:%[]*):%d*$")
    if bare then
      headers:replace(":authority", bare)
      changed = true
    end
  end
  if #CONDITIONS > 0 then
    mark_conditions(headers, query:sub(2))
    changed = true
  end
  local xff = headers:get("x-forwarded-for")
  local ip = peer(h)
  headers:replace("x-forwarded-for", (xff and xff ~= "") and (xff .. ", " .. ip) or ip)
  if changed then h:clearRouteCache() end
  return nil
end

function envoy_on_request(h)
  local ok, status = pcall(front, h)
  if not ok then
    h:logErr("gatefold.front: " .. tostring(status))
    status = 500
  end
  if status then
    local messages = { [400] = "bad request", [421] = "misdirected request" }
    local message = messages[status] or "internal error"
    h:respond({ [":status"] = tostring(status), ["content-type"] = "application/json" },
      '{"error":"' .. message .. '"}')
  end
end
