-- jwt verification shared by the targets that run Lua (NGINX and Envoy),
-- exactly as the reference gateway (jsonwebtoken with serde_json) decides:
-- a token is three base64url parts (no padding, no stray bits), a header
-- whose `alg` is the policy's one algorithm and whose fields have
-- jsonwebtoken's types, a signature the host checks (`verify`, below), and
-- a claims object read as strictly as serde_json reads it; exp/nbf/iss/aud
-- are then checked with the spec's rules. Plain LuaJIT: no host API here.
local bit = bit or require "bit"
local byte, char, sub, find = string.byte, string.char, string.sub, string.find
local concat = table.concat

local M = {}

---------------------------------------------------------------------------
-- base64url as the `base64` crate's URL_SAFE_NO_PAD decodes it: no `=`,
-- no length of 4n+1, the unused bits of the last character zero.
---------------------------------------------------------------------------
local B64 = {}
do
    local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i = 1, 64 do
        B64[byte(alphabet, i)] = i - 1
    end
end

local function b64url(s)
    local n = #s
    if n % 4 == 1 then
        return nil
    end
    local out, acc, bits = {}, 0, 0
    for i = 1, n do
        local v = B64[byte(s, i)]
        if not v then
            return nil
        end
        acc = bit.bor(bit.lshift(acc, 6), v)
        bits = bits + 6
        if bits >= 8 then
            bits = bits - 8
            out[#out + 1] = char(bit.band(bit.rshift(acc, bits), 0xff))
            acc = bit.band(acc, bit.lshift(1, bits) - 1)
        end
    end
    if acc ~= 0 then
        return nil
    end
    return concat(out)
end
M.b64url = b64url

---------------------------------------------------------------------------
-- JSON as serde_json reads it into a `Value`: strict grammar, strings
-- valid UTF-8 with no raw control characters and no lone surrogates,
-- numbers that stay finite, at most 127 levels of nesting, nothing after
-- the value but whitespace. Objects keep the last of duplicate keys (and
-- say which keys were duplicated); numbers keep their text.
---------------------------------------------------------------------------
local NULL = setmetatable({}, { __tostring = function() return "null" end })
M.NULL = NULL
local NUM, ARR, OBJ = {}, {}, {}

local function kind(v)
    local t = type(v)
    if t == "table" then
        if v == NULL then
            return "null"
        end
        local mt = getmetatable(v)
        if mt == NUM then
            return "number"
        elseif mt == ARR then
            return "array"
        end
        return "object"
    end
    return t
end
M.kind = kind

-- Whether bytes i..j of s are valid UTF-8 (as Rust's str::from_utf8).
local function utf8_ok(s, i, j)
    while i <= j do
        local c = byte(s, i)
        if c < 0x80 then
            i = i + 1
        else
            local n, lo, hi
            if c >= 0xC2 and c <= 0xDF then
                n = 1
            elseif c >= 0xE0 and c <= 0xEF then
                n = 2
            elseif c >= 0xF0 and c <= 0xF4 then
                n = 3
            else
                return false
            end
            if i + n > j then
                return false
            end
            -- The second byte's range excludes overlongs, surrogates and
            -- code points above U+10FFFF.
            lo, hi = 0x80, 0xBF
            if c == 0xE0 then
                lo = 0xA0
            elseif c == 0xED then
                hi = 0x9F
            elseif c == 0xF0 then
                lo = 0x90
            elseif c == 0xF4 then
                hi = 0x8F
            end
            local c2 = byte(s, i + 1)
            if c2 < lo or c2 > hi then
                return false
            end
            for k = 2, n do
                local ck = byte(s, i + k)
                if ck < 0x80 or ck > 0xBF then
                    return false
                end
            end
            i = i + n + 1
        end
    end
    return true
end

local function utf8_char(cp)
    if cp < 0x80 then
        return char(cp)
    elseif cp < 0x800 then
        return char(0xC0 + bit.rshift(cp, 6), 0x80 + bit.band(cp, 0x3F))
    elseif cp < 0x10000 then
        return char(0xE0 + bit.rshift(cp, 12), 0x80 + bit.band(bit.rshift(cp, 6), 0x3F),
            0x80 + bit.band(cp, 0x3F))
    end
    return char(0xF0 + bit.rshift(cp, 18), 0x80 + bit.band(bit.rshift(cp, 12), 0x3F),
        0x80 + bit.band(bit.rshift(cp, 6), 0x3F), 0x80 + bit.band(cp, 0x3F))
end

local ESCAPES = {
    [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f",
    [110] = "\n", [114] = "\r", [116] = "\t",
}

-- serde_json's number parsing (with its float_roundtrip feature, which the
-- workspace enables), on text the JSON grammar accepted: integers stay
-- u64/i64 when they fit; anything else is the nearest f64 (correctly
-- rounded, as LuaJIT's tonumber is), and out of range is an error.
local U64_TENTH = 1844674407370955161ULL -- u64::MAX / 10 (u64::MAX % 10 = 5)
local I32_MAX = 2147483647

local function overflow(sig, d)
    return sig >= U64_TENTH and (sig > U64_TENTH or d > 5)
end

local function saturate(x)
    return math.max(-I32_MAX - 1, math.min(I32_MAX, x))
end

local function serde_number(text)
    local n = #text
    local i, positive = 1, true
    if byte(text, 1) == 45 then
        i, positive = 2, false
    end
    local sig, exp, long = 0ULL, 0, false
    local function digit(k)
        local c = byte(text, k)
        return c and c >= 48 and c <= 57 and c - 48 or nil
    end
    if digit(i) == 0 then
        i = i + 1
    else
        while digit(i) do
            local d = digit(i)
            if overflow(sig, d) then
                -- Further integer digits only count in the exponent.
                long = true
                while digit(i) do
                    exp, i = exp + 1, i + 1
                end
                break
            end
            sig, i = sig * 10 + d, i + 1
        end
    end
    local c = byte(text, i)
    if c == nil and not long then
        local t = setmetatable({ text = text, value = tonumber(text), integer = true }, NUM)
        if not positive and (sig == 0 or sig > 9223372036854775808ULL) then
            -- `-0` and integers below i64::MIN are floats.
            t.integer, t.value = false, -tonumber(sig)
        end
        return t
    end
    if c == 46 then
        i = i + 1
        while digit(i) do
            local d = digit(i)
            if overflow(sig, d) then
                while digit(i) do
                    i = i + 1
                end
                break
            end
            sig, exp, i = sig * 10 + d, exp - 1, i + 1
        end
        c = byte(text, i)
    end
    if c == 101 or c == 69 then
        i = i + 1
        local positive_exp = true
        if byte(text, i) == 43 then
            i = i + 1
        elseif byte(text, i) == 45 then
            i, positive_exp = i + 1, false
        end
        local x = 0
        while digit(i) do
            local d = digit(i)
            if x >= 214748364 and (x > 214748364 or d > 7) then
                if sig ~= 0 and positive_exp then
                    return nil
                end
                return setmetatable({ text = text, value = positive and 0.0 or -0.0, integer = false }, NUM)
            end
            x, i = x * 10 + d, i + 1
        end
        exp = saturate(positive_exp and exp + x or exp - x)
    end
    local f = tonumber(text)
    if f == nil then
        -- LuaJIT gives up on exponents it cannot hold: far below the
        -- smallest f64 that is zero, far above it out of range.
        if sig ~= 0 and exp > 0 then
            return nil
        end
        f = positive and 0.0 or -0.0
    end
    if f == math.huge or f == -math.huge then
        return nil
    end
    return setmetatable({ text = text, value = f, integer = false }, NUM)
end

local function decode(s)
    local pos = 1
    local n = #s

    local function ws()
        while true do
            local c = byte(s, pos)
            if c == 32 or c == 9 or c == 10 or c == 13 then
                pos = pos + 1
            else
                return c
            end
        end
    end

    local function hex4()
        local h = sub(s, pos, pos + 3)
        if #h ~= 4 or not h:match("^%x%x%x%x$") then
            error("hex")
        end
        pos = pos + 4
        return tonumber(h, 16)
    end

    local function str()
        -- at the opening quote
        pos = pos + 1
        local parts = {}
        local start = pos
        while true do
            local c = byte(s, pos)
            if not c then
                error("eof")
            elseif c == 34 then
                if not utf8_ok(s, start, pos - 1) then
                    error("utf8")
                end
                parts[#parts + 1] = sub(s, start, pos - 1)
                pos = pos + 1
                return concat(parts)
            elseif c == 92 then
                if not utf8_ok(s, start, pos - 1) then
                    error("utf8")
                end
                parts[#parts + 1] = sub(s, start, pos - 1)
                local e = byte(s, pos + 1)
                pos = pos + 2
                if e == 117 then
                    local cp = hex4()
                    if cp >= 0xD800 and cp <= 0xDBFF then
                        if sub(s, pos, pos + 1) ~= "\\u" then
                            error("lone surrogate")
                        end
                        pos = pos + 2
                        local lo = hex4()
                        if lo < 0xDC00 or lo > 0xDFFF then
                            error("lone surrogate")
                        end
                        cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
                    elseif cp >= 0xDC00 and cp <= 0xDFFF then
                        error("lone surrogate")
                    end
                    parts[#parts + 1] = utf8_char(cp)
                elseif e and ESCAPES[e] then
                    parts[#parts + 1] = ESCAPES[e]
                else
                    error("escape")
                end
                start = pos
            elseif c < 32 then
                error("control character")
            else
                pos = pos + 1
            end
        end
    end

    local function number()
        local a, b = find(s, "^-?0", pos)
        if not a then
            a, b = find(s, "^-?[1-9]%d*", pos)
        end
        if not a then
            error("number")
        end
        local e = b
        local fa, fb = find(s, "^%.%d+", e + 1)
        if byte(s, e + 1) == 46 and not fa then
            error("number")
        end
        if fa then
            e = fb
        end
        local c = byte(s, e + 1)
        if c == 101 or c == 69 then
            local xa, xb = find(s, "^[eE][+-]?%d+", e + 1)
            if not xa then
                error("number")
            end
            e = xb
        end
        local text = sub(s, pos, e)
        pos = e + 1
        local v = serde_number(text)
        if not v then
            error("number out of range")
        end
        return v
    end

    local value

    local function array(depth)
        pos = pos + 1
        local out = setmetatable({ n = 0 }, ARR)
        if ws() == 93 then
            pos = pos + 1
            return out
        end
        while true do
            out.n = out.n + 1
            out[out.n] = value(depth)
            local c = ws()
            pos = pos + 1
            if c == 93 then
                return out
            elseif c ~= 44 then
                error("array")
            end
        end
    end

    local function object(depth)
        pos = pos + 1
        local out = setmetatable({ map = {}, dup = {} }, OBJ)
        if ws() == 125 then
            pos = pos + 1
            return out
        end
        while true do
            if ws() ~= 34 then
                error("key")
            end
            local k = str()
            if ws() ~= 58 then
                error("colon")
            end
            pos = pos + 1
            local v = value(depth)
            if out.map[k] ~= nil then
                out.dup[k] = true
            end
            out.map[k] = v
            local c = ws()
            pos = pos + 1
            if c == 125 then
                return out
            elseif c ~= 44 then
                error("object")
            end
        end
    end

    value = function(depth)
        local c = ws()
        if c == 123 or c == 91 then
            -- serde_json's recursion limit: 128 levels fail.
            if depth + 1 >= 128 then
                error("depth")
            end
            if c == 123 then
                return object(depth + 1)
            end
            return array(depth + 1)
        elseif c == 34 then
            return str()
        elseif c == 116 and sub(s, pos, pos + 3) == "true" then
            pos = pos + 4
            return true
        elseif c == 102 and sub(s, pos, pos + 4) == "false" then
            pos = pos + 5
            return false
        elseif c == 110 and sub(s, pos, pos + 3) == "null" then
            pos = pos + 4
            return NULL
        elseif c == 45 or (c and c >= 48 and c <= 57) then
            return number()
        end
        error("value")
    end

    local ok, v = pcall(function()
        local v = value(0)
        if ws() ~= nil then
            error("trailing")
        end
        return v
    end)
    if ok then
        return v
    end
    return nil
end
M.decode = decode

---------------------------------------------------------------------------
-- serde_json's compact output of a `Value` (keys sorted, as its default
-- BTreeMap keeps them; floats in the shortest form that reads back).
---------------------------------------------------------------------------
local function encode_string(s)
    return '"' .. s:gsub('[%c"\\]', function(c)
        local b = byte(c)
        if c == '"' then
            return '\\"'
        elseif c == "\\" then
            return "\\\\"
        elseif b == 8 then
            return "\\b"
        elseif b == 9 then
            return "\\t"
        elseif b == 10 then
            return "\\n"
        elseif b == 12 then
            return "\\f"
        elseif b == 13 then
            return "\\r"
        elseif b < 32 then
            return string.format("\\u%04x", b)
        end
        return c -- DEL stays as is
    end) .. '"'
end

local function float(x)
    if x == 0 then
        return (1 / x < 0) and "-0.0" or "0.0"
    end
    local sign = ""
    if x < 0 then
        sign, x = "-", -x
    end
    local digits, exp
    for p = 1, 17 do
        local t = string.format("%." .. (p - 1) .. "e", x)
        if tonumber(t) == x then
            local m, e = t:match("^([%d%.]+)e([-+]%d+)$")
            digits = m:gsub("%.", ""):gsub("0+$", "")
            exp = tonumber(e)
            break
        end
    end
    local len = #digits
    if exp >= -5 and exp <= 15 then
        if len - 1 <= exp then
            return sign .. digits .. string.rep("0", exp - len + 1) .. ".0"
        elseif exp >= 0 then
            return sign .. sub(digits, 1, exp + 1) .. "." .. sub(digits, exp + 2)
        end
        return sign .. "0." .. string.rep("0", -exp - 1) .. digits
    end
    local m = len > 1 and (sub(digits, 1, 1) .. "." .. sub(digits, 2)) or digits
    return sign .. m .. "e" .. (exp < 0 and "-" or "+") .. math.abs(exp)
end

local function number_text(v)
    if v.integer then
        return v.text
    end
    return float(v.value)
end

local function encode(v)
    local k = kind(v)
    if k == "string" then
        return encode_string(v)
    elseif k == "boolean" then
        return tostring(v)
    elseif k == "null" then
        return "null"
    elseif k == "number" then
        return number_text(v)
    elseif k == "array" then
        local out = {}
        for i = 1, v.n do
            out[i] = encode(v[i])
        end
        return "[" .. concat(out, ",") .. "]"
    end
    local keys = {}
    for key in pairs(v.map) do
        keys[#keys + 1] = key
    end
    table.sort(keys)
    local out = {}
    for i, key in ipairs(keys) do
        out[i] = encode_string(key) .. ":" .. encode(v.map[key])
    end
    return "{" .. concat(out, ",") .. "}"
end
M.encode = encode

---------------------------------------------------------------------------
-- The header and claims as jsonwebtoken types them.
---------------------------------------------------------------------------
local HEADER_STRINGS = { "typ", "cty", "jku", "kid", "x5u", "x5t", "x5t#S256", "url", "nonce", "enc", "zip" }
local HEADER_LISTS = { "x5c", "crit" }

local JWK_STRINGS = { "use", "alg", "kid", "x5u", "x5t", "x5t#S256" }
local JWK_LISTS = { "key_ops", "x5c" }

-- Whether object o's fields named in `strings` are absent, null or strings
-- and those in `lists` absent, null or arrays of strings, none of them
-- given twice (serde's derived structs refuse a duplicate field; of other
-- keys the last is kept).
local function typed(o, strings, lists)
    for _, name in ipairs(strings) do
        local t = kind(o.map[name])
        if o.dup[name] or (t ~= "nil" and t ~= "null" and t ~= "string") then
            return false
        end
    end
    for _, name in ipairs(lists) do
        local v = o.map[name]
        local t = kind(v)
        if o.dup[name] then
            return false
        end
        if t == "array" then
            for i = 1, v.n do
                if type(v[i]) ~= "string" then
                    return false
                end
            end
        elseif t ~= "nil" and t ~= "null" then
            return false
        end
    end
    return true
end

local function header_ok(h, alg)
    if kind(h) ~= "object" then
        return false
    end
    local function known(name)
        return h.dup[name] == nil
    end
    if h.map.alg ~= alg or not known("alg") then
        return false
    end
    if not typed(h, HEADER_STRINGS, HEADER_LISTS) then
        return false
    end
    -- An embedded `jwk` is parsed (then ignored): an object whose common
    -- parameters have their types; any key parameters do.
    local jwk = h.map.jwk
    local t = kind(jwk)
    if not known("jwk") then
        return false
    end
    if t == "nil" or t == "null" then
        return true
    end
    return t == "object" and typed(jwk, JWK_STRINGS, JWK_LISTS)
end

-- The claims jsonwebtoken's own validation reads: duplicates of these
-- fail the whole token, and so does a `sub` that is an array or object.
local VALIDATED = { "exp", "nbf", "sub", "iss", "aud" }

local function claims_ok(c, p, now)
    if kind(c) ~= "object" then
        return false
    end
    for _, name in ipairs(VALIDATED) do
        if c.dup[name] then
            return false
        end
    end
    local tsub = kind(c.map.sub)
    if tsub == "array" or tsub == "object" then
        return false
    end
    local exp, nbf = c.map.exp, c.map.nbf
    if exp ~= nil then
        if kind(exp) ~= "number" or now >= exp.value + p.leeway then
            return false
        end
    end
    if nbf ~= nil then
        if kind(nbf) ~= "number" or now + p.leeway < nbf.value then
            return false
        end
    end
    if p.issuer and c.map.iss ~= p.issuer then
        return false
    end
    if p.audiences then
        local aud = c.map.aud
        local t = kind(aud)
        local ok = false
        if t == "string" then
            ok = p.audiences[aud] == true
        elseif t == "array" then
            for i = 1, aud.n do
                if type(aud[i]) == "string" and p.audiences[aud[i]] then
                    ok = true
                end
            end
        end
        if not ok then
            return false
        end
    end
    return true
end

-- A header value the reference gateway would send: bytes 32-126, tab and
-- 128-255 (http's HeaderValue::from_str).
local function header_value_ok(v)
    return not find(v, "[%z\1-\8\10-\31\127]")
end

-- The verified claims of the request's bearer token under policy p:
-- returns true, the consumer claim's value and the headers to add (in
-- claim order), or false. `verify(p, signing_input, signature)` is the
-- host's signature check with the policy's key (false when it has none).
function M.check(p, authorization, now, verify)
    if type(authorization) ~= "string" then
        return false
    end
    -- http's HeaderValue::to_str: visible ASCII and tab only.
    if find(authorization, "[^\9\32-\126]") then
        return false
    end
    local sp = find(authorization, " ", 1, true)
    if not sp or sub(authorization, 1, sp - 1):lower() ~= "bearer" then
        return false
    end
    local token = sub(authorization, sp + 1):match("^[ \t]*(.-)[ \t]*$")
    local d2 = token:match(".*()%.")
    if not d2 then
        return false
    end
    local d1 = sub(token, 1, d2 - 1):match(".*()%.")
    if not d1 then
        return false
    end
    local h64, c64, s64 = sub(token, 1, d1 - 1), sub(token, d1 + 1, d2 - 1), sub(token, d2 + 1)
    local htext, sig = b64url(h64), b64url(s64)
    if not htext or not sig then
        return false
    end
    local header = decode(htext)
    if not header or not header_ok(header, p.alg) then
        return false
    end
    if not verify(p, sub(token, 1, d2 - 1), sig) then
        return false
    end
    local ctext = b64url(c64)
    local claims = ctext and decode(ctext)
    if not claims or not claims_ok(claims, p, now) then
        return false
    end
    local headers = {}
    for _, pair in ipairs(p.claims) do
        local v = claims.map[pair[1]]
        if v ~= nil then
            if type(v) ~= "string" then
                v = encode(v)
            end
            if header_value_ok(v) then
                headers[#headers + 1] = { pair[2], v }
            end
        end
    end
    local consumer = claims.map[p.consumer_claim]
    return true, type(consumer) == "string" and consumer or nil, headers
end

return M
