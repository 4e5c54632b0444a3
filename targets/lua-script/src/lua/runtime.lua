-- gatefold script runtime: JavaScript semantics for compiled portable
-- scripts (gatefold-lua-script). The host adapter `H` (loaded before this
-- text) is the only way to the request; see the crate docs for its contract.
local R = {}
-- Only what Kong's sandbox (untrusted_lua = sandbox) allows: no
-- set/getmetatable, no string.rep, no load, no I/O.
local type, tostring, tonumber, error, pcall, pairs, ipairs =
  type, tostring, tonumber, error, pcall, pairs, ipairs
local sfmt, sbyte, schar, ssub, sfind, slower, supper =
  string.format, string.byte, string.char, string.sub, string.find, string.lower, string.upper
local floor, fmod, huge = math.floor, math.fmod, math.huge
local concat = table.concat
local NaN = -(0 / 0)
local MAX_LIST, MAX_STRING = 100, 65536

-- `undefined` and `null`: sentinels, never Lua nil (lists and slots hold them).
local U, N = {}, {}
-- Lists: { t = LIST, n = count, items 1..n }; objects: { t = OBJ,
-- entries { key, value } 1..#, in written order }; failures: { t = FAIL }.
local LIST, OBJ, FAIL = {}, {}, {}
R.U, R.N, R.LIST, R.OBJ = U, N, LIST, OBJ
local function tag(v) return type(v) == "table" and v.t or nil end
local function srep(s, n)
  local out = {}
  for i = 1, n do out[i] = s end
  return concat(out)
end

-- A failure at site `k` (0-based index into the sites; -1: none).
local function fail(k, reason)
  error({ t = FAIL, site = k, reason = reason }, 0)
end
R.fail = fail
function R.over(k) fail(k, "the script ran past its cost bound") end

local function kind(v)
  if v == U then return "undefined" elseif v == N then return "null" end
  local t = type(v)
  if t == "boolean" then return "a boolean" elseif t == "number" then return "a number"
  elseif t == "string" then return "a string" elseif tag(v) == LIST then return "a list" end
  return "an object"
end

function R.mkl(n) return { t = LIST, n = n } end
function R.mko() return { t = OBJ } end

-- Truthiness: undefined, null, false, 0, NaN and "" are falsy.
local function truthy(v)
  if v == false or v == U or v == N or v == "" then return false end
  if type(v) == "number" then return v == v and v ~= 0 end
  return true
end
R.truthy = truthy
local function nullish(v) return v == U or v == N end
R.nullish = nullish

---------------------------------------------------------------- UTF-8 / UTF-16
local function ascii(s) return not sfind(s, "[\128-\255]") end

-- Invalid UTF-8 as U+FFFD per maximal subpart (Rust's from_utf8_lossy).
local function lossy(s)
  if ascii(s) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = sbyte(s, i)
    if c < 0x80 then out[#out + 1] = schar(c); i = i + 1
    else
      local need, lo, hi = 0, 0x80, 0xBF
      if c >= 0xC2 and c <= 0xDF then need = 1
      elseif c == 0xE0 then need, lo = 2, 0xA0
      elseif c == 0xED then need, hi = 2, 0x9F
      elseif c >= 0xE1 and c <= 0xEF then need = 2
      elseif c == 0xF0 then need, lo = 3, 0x90
      elseif c == 0xF4 then need, hi = 3, 0x8F
      elseif c >= 0xF1 and c <= 0xF3 then need = 3 end
      if need == 0 then out[#out + 1] = "\239\191\189"; i = i + 1
      else
        local j, ok = i + 1, true
        for m = 1, need do
          local b = sbyte(s, j)
          local l, h = 0x80, 0xBF
          if m == 1 then l, h = lo, hi end
          if not b or b < l or b > h then ok = false; break end
          j = j + 1
        end
        if ok then out[#out + 1] = ssub(s, i, j - 1) else out[#out + 1] = "\239\191\189" end
        i = j
      end
    end
  end
  return concat(out)
end
R.lossy = lossy

-- Code points of a valid UTF-8 string.
local function codepoints(s)
  local cps, i, n = {}, 1, #s
  while i <= n do
    local c = sbyte(s, i)
    if c < 0x80 then cps[#cps + 1] = c; i = i + 1
    elseif c < 0xE0 then cps[#cps + 1] = (c - 0xC0) * 64 + (sbyte(s, i + 1) - 0x80); i = i + 2
    elseif c < 0xF0 then
      cps[#cps + 1] = (c - 0xE0) * 4096 + (sbyte(s, i + 1) - 0x80) * 64 + (sbyte(s, i + 2) - 0x80); i = i + 3
    else
      cps[#cps + 1] = (c - 0xF0) * 262144 + (sbyte(s, i + 1) - 0x80) * 4096
        + (sbyte(s, i + 2) - 0x80) * 64 + (sbyte(s, i + 3) - 0x80); i = i + 4
    end
  end
  return cps
end

local function utf8(cp)
  if cp < 0x80 then return schar(cp)
  elseif cp < 0x800 then return schar(0xC0 + floor(cp / 64), 0x80 + cp % 64)
  elseif cp < 0x10000 then
    return schar(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return schar(0xF0 + floor(cp / 262144), 0x80 + floor(cp / 4096) % 64, 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
end

local function units(s)
  local u = {}
  for _, cp in ipairs(codepoints(s)) do
    if cp >= 0x10000 then
      cp = cp - 0x10000
      u[#u + 1] = 0xD800 + floor(cp / 1024); u[#u + 1] = 0xDC00 + cp % 1024
    else u[#u + 1] = cp end
  end
  return u
end

-- UTF-16 code units i..j (1-based, inclusive) back to UTF-8; a lone
-- surrogate is U+FFFD (Rust's from_utf16_lossy).
local function from_units(u, i, j)
  local out, k = {}, i
  while k <= j do
    local c = u[k]
    if c >= 0xD800 and c <= 0xDBFF and k < j and u[k + 1] >= 0xDC00 and u[k + 1] <= 0xDFFF then
      out[#out + 1] = utf8(0x10000 + (c - 0xD800) * 1024 + (u[k + 1] - 0xDC00)); k = k + 2
    else
      if c >= 0xD800 and c <= 0xDFFF then c = 0xFFFD end
      out[#out + 1] = utf8(c); k = k + 1
    end
  end
  return concat(out)
end

local function u16len(s)
  if ascii(s) then return #s end
  local n = 0
  for i = 1, #s do
    local c = sbyte(s, i)
    if c < 0x80 or (c >= 0xC0 and c < 0xF0) then n = n + 1 elseif c >= 0xF0 then n = n + 2 end
  end
  return n
end
R.u16len = u16len

-- s.slice in code units, 0-based [a, b).
local function slice16(s, a, b)
  if b <= a then return "" end
  if ascii(s) then return ssub(s, a + 1, b) end
  return from_units(units(s), a + 1, b)
end

-- JavaScript white space (WhiteSpace and LineTerminator), as UTF-8.
local SPACE = { ["\t"] = 1, ["\v"] = 1, ["\f"] = 1, [" "] = 1, ["\n"] = 1, ["\r"] = 1,
  ["\194\160"] = 2, ["\239\187\191"] = 3, ["\226\128\168"] = 3, ["\226\128\169"] = 3,
  ["\225\154\128"] = 3, ["\226\128\175"] = 3, ["\226\129\159"] = 3, ["\227\128\128"] = 3 }
for c = 0x80, 0x8A do SPACE["\226\128" .. schar(c)] = 3 end -- U+2000..U+200A
local function space_at(s, i)
  local c = ssub(s, i, i)
  if SPACE[c] then return 1 end
  local b = sbyte(s, i)
  if b == 0xC2 or b == 0xE1 or b == 0xE2 or b == 0xE3 or b == 0xEF then
    local l = (b == 0xC2) and 2 or 3
    if SPACE[ssub(s, i, i + l - 1)] then return l end
  end
  return nil
end
local function space_before(s, j)
  for l = 1, 3 do
    if j - l + 1 >= 1 and SPACE[ssub(s, j - l + 1, j)] == l then return l end
  end
  return nil
end
local function trim_start(s)
  local i = 1
  while i <= #s do local l = space_at(s, i); if not l then break end; i = i + l end
  return ssub(s, i)
end
local function trim(s)
  s = trim_start(s)
  local j = #s
  while j >= 1 do local l = space_before(s, j); if not l then break end; j = j - l end
  return ssub(s, 1, j)
end

---------------------------------------------------------------- numbers
-- Number::toString(10): the shortest digits that round-trip.
local function numstr(n)
  if n ~= n then return "NaN" end
  if n == 0 then return "0" end
  if n == huge then return "Infinity" elseif n == -huge then return "-Infinity" end
  local sign, a = "", n
  if n < 0 then sign, a = "-", -n end
  if a < 9007199254740992 and a == floor(a) then return sign .. sfmt("%.0f", a) end
  local s
  for p = 0, 16 do
    s = sfmt("%." .. p .. "e", a)
    if tonumber(s) == a then break end
  end
  local mant, exp = s:match("^([%d%.]+)e([-+]%d+)$")
  local digits = mant:gsub("%.", "")
  digits = digits:gsub("0+$", "")
  if digits == "" then digits = "0" end
  local k, point = #digits, tonumber(exp) + 1
  local body
  if k <= point and point <= 21 then body = digits .. srep("0", point - k)
  elseif 0 < point and point <= 21 then body = ssub(digits, 1, point) .. "." .. ssub(digits, point + 1)
  elseif -6 < point and point <= 0 then body = "0." .. srep("0", -point) .. digits
  else
    local e = point - 1
    local rest = k > 1 and ("." .. ssub(digits, 2)) or ""
    body = ssub(digits, 1, 1) .. rest .. "e" .. (e < 0 and "-" or "+") .. tostring(e < 0 and -e or e)
  end
  return sign .. body
end
R.numstr = numstr

local tostr
local function join(l)
  local parts = {}
  for i = 1, l.n do
    local v = l[i]
    parts[i] = nullish(v) and "" or tostr(v)
  end
  return concat(parts, ",")
end
tostr = function(v)
  local t = type(v)
  if t == "string" then return v elseif t == "number" then return numstr(v)
  elseif t == "boolean" then return v and "true" or "false"
  elseif v == U then return "undefined" elseif v == N then return "null"
  elseif tag(v) == LIST then return join(v) end
  return "[object Object]"
end
R.tostr = tostr

local RADIX = { ["0x"] = 16, ["0X"] = 16, ["0o"] = 8, ["0O"] = 8, ["0b"] = 2, ["0B"] = 2 }
local DIGITS = { [16] = "^[0-9a-fA-F]+$", [8] = "^[0-7]+$", [2] = "^[01]+$" }
local function strnum(s)
  local t = trim(s)
  if t == "" then return 0 end
  local r = RADIX[ssub(t, 1, 2)]
  if r then
    local rest = ssub(t, 3)
    if not sfind(rest, DIGITS[r]) then return NaN end
    local acc = 0
    for i = 1, #rest do acc = acc * r + tonumber(ssub(rest, i, i), 16) end
    return acc
  end
  local c = ssub(t, 1, 1)
  local unsigned = (c == "+" or c == "-") and ssub(t, 2) or t
  if unsigned == "Infinity" then return c == "-" and -huge or huge end
  if not sfind(unsigned, "^[%d%.][%d%.eE+-]*$") then return NaN end
  -- The shapes Rust's f64 parser takes: digits, one point, one exponent.
  if not (sfind(unsigned, "^%d+%.?%d*$") or sfind(unsigned, "^%.%d+$")
      or sfind(unsigned, "^%d+%.?%d*[eE][-+]?%d+$") or sfind(unsigned, "^%.%d+[eE][-+]?%d+$")) then
    return NaN
  end
  local v = tonumber(unsigned)
  if v == nil then return NaN end
  return c == "-" and -v or v
end

local function tonum(v)
  local t = type(v)
  if t == "number" then return v elseif t == "string" then return strnum(v)
  elseif t == "boolean" then return v and 1 or 0
  elseif v == N then return 0 elseif v == U then return NaN
  elseif tag(v) == LIST then return strnum(join(v)) end
  return NaN
end
R.tonum = tonum

local function prim(v)
  if type(v) == "table" and v ~= U and v ~= N then return tostr(v) end
  return v
end

local function cmp16(a, b) -- -1, 0, 1 by UTF-16 code units
  if ascii(a) and ascii(b) then
    if a < b then return -1 elseif a > b then return 1 end
    return 0
  end
  local x, y = units(a), units(b)
  for i = 1, math.min(#x, #y) do
    if x[i] < y[i] then return -1 elseif x[i] > y[i] then return 1 end
  end
  if #x < #y then return -1 elseif #x > #y then return 1 end
  return 0
end

function R.add(a, b, k)
  a, b = prim(a), prim(b)
  if type(a) == "string" or type(b) == "string" then
    a, b = tostr(a), tostr(b)
    if #a + #b > MAX_STRING then fail(k, "a string grew past 65536 bytes") end
    return a .. b
  end
  return tonum(a) + tonum(b)
end
function R.sub(a, b) return tonum(a) - tonum(b) end
function R.mul(a, b) return tonum(a) * tonum(b) end
function R.div(a, b) return tonum(a) / tonum(b) end
function R.rem(a, b) return fmod(tonum(a), tonum(b)) end
function R.neg(a) return -tonum(a) end
local function order(a, b)
  a, b = prim(a), prim(b)
  if type(a) == "string" and type(b) == "string" then return cmp16(a, b) end
  local x, y = tonum(a), tonum(b)
  if x ~= x or y ~= y then return nil end
  if x < y then return -1 elseif x > y then return 1 end
  return 0
end
function R.lt(a, b) local o = order(a, b); return o ~= nil and o < 0 end
function R.le(a, b) local o = order(a, b); return o ~= nil and o <= 0 end
function R.gt(a, b) local o = order(a, b); return o ~= nil and o > 0 end
function R.ge(a, b) local o = order(a, b); return o ~= nil and o >= 0 end

-- Appends a template part; a string past the bound fails.
function R.cat(acc, v, k)
  local s = acc .. tostr(v)
  if #s > MAX_STRING then fail(k, "a string grew past 65536 bytes") end
  return s
end

-- parseInt (ECMAScript 19.2.5); `radix` is nil when absent or undefined.
function R.pint(v, radix)
  local s = trim_start(tostr(v))
  local neg = false
  local c = ssub(s, 1, 1)
  if c == "-" then neg, s = true, ssub(s, 2) elseif c == "+" then s = ssub(s, 2) end
  local r = 0
  if radix ~= nil and radix ~= U then
    local x = tonum(radix)
    if x == x and x ~= huge and x ~= -huge then
      x = x < 0 and -floor(-x) or floor(x)
      if x >= 9.2233720368547758e18 then r = -1
      elseif x < -9.2233720368547758e18 then r = 0
      else
        r = fmod(x, 4294967296)
        if r < 0 then r = r + 4294967296 end
        if r >= 2147483648 then r = r - 4294967296 end
      end
    end
  end
  local strip, base = true, 10
  if r ~= 0 then
    if r < 2 or r > 36 then return NaN end
    base = r
    if base ~= 16 then strip = false end
  end
  if strip and (ssub(s, 1, 2) == "0x" or ssub(s, 1, 2) == "0X") then s, base = ssub(s, 3), 16 end
  local acc, any = 0, false
  for i = 1, #s do
    local d = tonumber(ssub(s, i, i), 36)
    if d == nil or d >= base then break end
    acc, any = acc * base + d, true
  end
  if not any then return NaN end
  return neg and -acc or acc
end

---------------------------------------------------------------- lists, objects
local function prop(o, key)
  for i = #o, 1, -1 do
    if o[i][1] == key then return o[i][2] end
  end
  return U
end

function R.len(t, k)
  if type(t) == "string" then return u16len(t) end
  local m = tag(t)
  if m == LIST then return t.n elseif m == OBJ then return prop(t, "length") end
  if t == U or t == N then fail(k, "cannot read `length` of " .. kind(t)) end
  return U
end

function R.prop(t, key, k)
  if tag(t) == OBJ then return prop(t, key) end
  if t == U or t == N then fail(k, "cannot read `" .. key .. "` of " .. kind(t)) end
  return U
end

-- A canonical array index string ("0", "12"; not "01", "1.0" or " 1")
-- indexes a list or a string as its number, as in JavaScript.
local function canonical_index(t, i)
  if type(i) == "string" and (tag(t) == LIST or type(t) == "string") and #i < 16
    and (i == "0" or sfind(i, "^[1-9]%d*$")) then
    return tonumber(i)
  end
  return i
end

function R.idx(t, i, k)
  i = canonical_index(t, i)
  if type(i) ~= "number" then
    if t == U or t == N then fail(k, "cannot index " .. kind(t)) end
    if tag(t) == OBJ then return prop(t, tostr(i)) end
    return U
  end
  local at = (i >= 0 and i == floor(i)) and i or nil
  local m = tag(t)
  if m == LIST then
    if at and at < t.n then return t[at + 1] end
    return U
  elseif type(t) == "string" then
    if at and at < u16len(t) then return slice16(t, at, at + 1) end
    return U
  elseif m == OBJ then return prop(t, numstr(i))
  elseif t == U or t == N then fail(k, "cannot index " .. kind(t)) end
  return U
end

function R.iter(v, k)
  if tag(v) ~= LIST then fail(k, "for ... of needs a list, got " .. kind(v)) end
  return v
end

-- SameValueZero.
local function svz(a, b) return a == b or (a ~= a and b ~= b) end

---------------------------------------------------------------- string methods
local function str(t, m, k)
  if type(t) ~= "string" then fail(k, "`" .. m .. "` is a string method, called on " .. kind(t)) end
  return t
end
local function arg(v) if v == nil then return U end return v end

function R.includes(t, a, k)
  if tag(t) == LIST then
    a = arg(a)
    for i = 1, t.n do if svz(t[i], a) then return true end end
    return false
  end
  return sfind(str(t, "includes", k), tostr(arg(a)), 1, true) ~= nil
end
function R.startsWith(t, a, k)
  local s, p = str(t, "startsWith", k), tostr(arg(a))
  return ssub(s, 1, #p) == p
end
function R.endsWith(t, a, k)
  local s, p = str(t, "endsWith", k), tostr(arg(a))
  return #p == 0 or ssub(s, -#p) == p
end
function R.trim(t, k) return trim(str(t, "trim", k)) end

-- Non-ASCII case mapping needs R.case (src/lua/case.lua), which a chunk
-- loads when its program calls toLowerCase or toUpperCase.
local function recase(s, lower, k)
  local out
  if ascii(s) then out = lower and slower(s) or supper(s)
  else
    local CASE = R.case or {}
    local map = lower and CASE.lower or CASE.upper
    local parts, cps = {}, codepoints(s)
    for i, cp in ipairs(cps) do
      local m
      if cp < 0x80 then m = lower and slower(schar(cp)) or supper(schar(cp))
      elseif map then m = map(cp, cps, i) end
      parts[i] = m or utf8(cp)
    end
    out = concat(parts)
  end
  if #out > MAX_STRING then fail(k, "a string grew past 65536 bytes") end
  return out
end
function R.toLowerCase(t, k) return recase(str(t, "toLowerCase", k), true, k) end
function R.toUpperCase(t, k) return recase(str(t, "toUpperCase", k), false, k) end

local function relative(v, len)
  local n = tonum(v)
  if n ~= n then n = 0 end
  n = n < 0 and -floor(-n) or floor(n)
  if n < 0 then n = len + n; if n < 0 then n = 0 end
  elseif n > len then n = len end
  return n
end
function R.slice(t, a, b, k)
  local s = str(t, "slice", k)
  local len = u16len(s)
  local from = (a == nil or a == U) and 0 or relative(a, len)
  local to = (b == nil or b == U) and len or relative(b, len)
  return slice16(s, from, to)
end

function R.split(t, sep, lim, k)
  local s = str(t, "split", k)
  local limit = 4294967295
  if lim ~= nil and lim ~= U then
    local n = tonum(lim)
    if n == n and n ~= huge and n ~= -huge then
      n = n < 0 and -floor(-n) or floor(n)
      limit = n % 4294967296
    else limit = 0 end
  end
  local take = math.min(limit, MAX_LIST + 1)
  local l = { t = LIST, n = 0 }
  if sep == nil or sep == U then
    if take >= 1 then l[1], l.n = s, 1 end
  else
    sep = tostr(sep)
    if sep == "" then
      local u = ascii(s) and nil or units(s)
      local count = u and #u or #s
      for i = 1, math.min(count, take) do
        l[i] = u and from_units(u, i, i) or ssub(s, i, i)
        l.n = i
      end
    else
      local from = 1
      while l.n < take do
        local a, b = sfind(s, sep, from, true)
        l.n = l.n + 1
        if not a then l[l.n] = ssub(s, from); break end
        l[l.n] = ssub(s, from, a - 1)
        from = b + 1
      end
    end
  end
  if l.n > MAX_LIST then fail(k, "split() gave more than 100 items") end
  return l
end

---------------------------------------------------------------- JSON
local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
  ["\b"] = "\\b", ["\f"] = "\\f" }
local function jstr(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if sbyte(c) == 127 then return c end
    return ESC[c] or sfmt("\\u%04x", sbyte(c))
  end) .. '"'
end
-- The number a key names when it is a canonical array index ("0", "7";
-- not "07" or "-1"; below 2^32 - 1), else nil.
local function array_index(key)
  if key == "0" then return 0 end
  if #key > 10 or not sfind(key, "^[1-9]%d*$") then return nil end
  local n = tonumber(key)
  if n < 4294967295 then return n end
  return nil
end
local function json(v, out)
  local t = type(v)
  if v == U or v == N then out[#out + 1] = "null"
  elseif t == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif t == "number" then
    out[#out + 1] = (v == v and v ~= huge and v ~= -huge) and numstr(v) or "null"
  elseif t == "string" then out[#out + 1] = jstr(v)
  elseif tag(v) == LIST then
    out[#out + 1] = "["
    for i = 1, v.n do
      if i > 1 then out[#out + 1] = "," end
      json(v[i], out)
    end
    out[#out + 1] = "]"
  else
    out[#out + 1] = "{"
    -- JavaScript's key order: array indexes ascending, then the other keys
    -- where first written.
    local indexes, names, seen = {}, {}, {}
    for i = 1, #v do
      local key = v[i][1]
      if not seen[key] then
        seen[key] = true
        local n = array_index(key)
        if n then indexes[#indexes + 1] = n else names[#names + 1] = key end
      end
    end
    table.sort(indexes)
    local first = true
    local function member(key)
      local val = prop(v, key)
      if val ~= U then
        if not first then out[#out + 1] = "," end
        first = false
        out[#out + 1] = jstr(key)
        out[#out + 1] = ":"
        json(val, out)
      end
    end
    for _, n in ipairs(indexes) do member(sfmt("%.0f", n)) end
    for _, key in ipairs(names) do member(key) end
    out[#out + 1] = "}"
  end
end
function R.json(v) local out = {}; json(v, out); return concat(out) end

---------------------------------------------------------------- the API
local function header_name(v, k)
  local n = tostr(v)
  if #n == 0 or #n > 256 or sfind(n, "[^%w!#$%%&'*+%.%^_`|~-]") then
    fail(k, "`" .. n .. "` is not a header name: use letters, digits and `-` (an HTTP token)")
  end
  return slower(n)
end
local function header_value(name, v, k)
  local s = tostr(v)
  if sfind(s, "[^\t\32-\126]") then
    fail(k, "header `" .. name .. "`: a header value may hold printable ASCII only: no line breaks or control characters")
  end
  return s
end

-- Per-run state: the side, the header edits not applied yet, the path, ctx.
local side, edits, newpath, C

function R.field(f)
  if f == "method" then return H.method()
  elseif f == "path" then return newpath or lossy(H.path())
  elseif f == "ip" then return H.ip() end
  local c = H.consumer()
  if c == nil then return N end
  return lossy(c)
end
function R.status() return H.status() end

function R.hdr(sd, name)
  name = slower(tostr(name))
  local e = edits[sd]
  for i = #e, 1, -1 do
    if e[i][1] == name then
      local v = e[i][2]
      if v == false then return N end
      return v
    end
  end
  local v
  if sd == "request" then v = H.req_header(name) else v = H.res_header(name) end
  if v == nil then return N end
  return lossy(v)
end

local function form_decode(s)
  s = s:gsub("%+", " "):gsub("%%(%x%x)", function(h) return schar(tonumber(h, 16)) end)
  return lossy(s)
end
-- `%XX` decoding keeps a `%` not followed by two hex digits (`%2` stays).
function R.query(name)
  name = tostr(name)
  local q = H.raw_query()
  if q == nil then return N end
  -- Empty pairs (`&&`, a trailing `&`) are skipped, as URLSearchParams does.
  for pair in (q .. "&"):gmatch("([^&]*)&") do
    if pair ~= "" then
      local key, val = pair, ""
      local eq = sfind(pair, "=", 1, true)
      if eq then key, val = ssub(pair, 1, eq - 1), ssub(pair, eq + 1) end
      if form_decode(key) == name then return form_decode(val) end
    end
  end
  return N
end

function R.ctx(key)
  local v = C[key]
  if v == nil then return U end
  return v
end
function R.setctx(key, v)
  if nullish(v) then C[key] = nil else C[key] = tostr(v) end
end

R.hname = header_name
-- `name` has been through hname (checked before the value is evaluated).
function R.seth(sd, n, value, k)
  local v = header_value(n, value, k)
  local e = edits[sd]
  e[#e + 1] = { n, v }
end
function R.remh(sd, name, k)
  local n = header_name(name, k)
  local e = edits[sd]
  e[#e + 1] = { n, false }
end
function R.setpath(p, k)
  p = tostr(p)
  if ssub(p, 1, 1) ~= "/" or sfind(p, "[^\t\32-\126]") or sfind(p, "[?#]") then
    fail(k, "req.setPath() takes a path that starts with `/`, in printable ASCII, without `?` or `#`")
  end
  newpath = p
end
function R.log(m) H.log(tostr(m)) end

-- respond(): the status first (before the body is evaluated).
function R.rstatus(v, k)
  local s = tonum(v)
  if s ~= s or s ~= floor(s) or s < 100 or s > 599 then
    fail(k, "respond() status must be an integer from 100 to 599, got " .. numstr(s))
  end
  return s
end
function R.answer(status, body, headers, k)
  local a = { status = status, headers = {} }
  if body == nil or nullish(body) then a.body = ""
  elseif type(body) == "table" then
    a.body = R.json(body)
    a.headers[1] = { "content-type", "application/json" }
  else
    a.body = tostr(body)
    a.headers[1] = { "content-type", "text/plain; charset=utf-8" }
  end
  if headers ~= nil and not nullish(headers) then
    if tag(headers) ~= OBJ then
      fail(k, "respond() headers must be an object, got " .. kind(headers))
    end
    for i = 1, #headers do
      local n = header_name(headers[i][1], k)
      local v = header_value(n, headers[i][2], k)
      local h = a.headers
      for j = #h, 1, -1 do if h[j][1] == n then table.remove(h, j) end end
      h[#h + 1] = { n, v }
    end
  end
  return a
end

---------------------------------------------------------------- running
local ERROR_BODY = '{"error":"script failed"}'
R.ERROR_BODY = ERROR_BODY

-- Runs one side of a script. `P` is the compiled program (a function of
-- the fuel), `cost` its bound, `sites` the spec positions of its failure
-- sites, `place` the policy's. Extra arguments go to `H.begin` (Envoy's
-- handle). Returns after the host has been told the outcome.
function R.run(P, sd, cost, sites, place, id, ...)
  H.begin(sd, ...)
  side, edits, newpath = sd, { request = {}, response = {} }, nil
  if sd == "response" then
    if not H.passed() then return end
    -- The response script's ctx changes are its own.
    C = {}
    for key, v in pairs(H.ctx_load()) do C[key] = v end
  else
    C = H.ctx_load()
  end
  local ok, out = pcall(P, cost)
  if sd == "request" then H.ctx_store(C) end
  if not ok then
    local at, reason = place, tostring(out)
    if tag(out) == FAIL then
      at, reason = sites[out.site + 1] or place, out.reason
    end
    H.log_error("gatefold: " .. sd .. " script of `" .. id .. "` failed at " .. at .. ": " .. reason)
    return H.fail(sd)
  end
  if out ~= nil then return H.respond(out.status, out.body, out.headers) end
  for _, e in ipairs(edits[sd]) do
    if e[2] == false then H.remove_header(sd, e[1]) else H.set_header(sd, e[1], e[2]) end
  end
  if newpath then H.set_path(newpath) end
  if sd == "request" then H.pass() end
end

-- For a script without a request side: marks that phase 8 was passed, so
-- the response script runs on this request's response.
function R.pass(...)
  H.begin("request", ...)
  H.pass()
end

-- The adapter, for a host's chunks that share one runtime loaded once
-- (Kong's body_filter chunk calls R.H.body_filter()).
R.H = H

return R
