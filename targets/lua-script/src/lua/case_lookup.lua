-- The lookups of the generated case tables (appended to them by
-- tests/case_tables.rs into case.lua).
local floor, schar = math.floor, string.char
local function utf8(cp)
  if cp < 0x80 then return schar(cp)
  elseif cp < 0x800 then return schar(0xC0 + floor(cp / 64), 0x80 + cp % 64)
  elseif cp < 0x10000 then
    return schar(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return schar(0xF0 + floor(cp / 262144), 0x80 + floor(cp / 4096) % 64, 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
end
local function find(runs, cp)
  local lo, hi = 0, #runs / 4 - 1
  while lo <= hi do
    local mid = floor((lo + hi) / 2)
    local b = mid * 4
    if cp < runs[b + 1] then hi = mid - 1
    elseif cp > runs[b + 2] then lo = mid + 1
    elseif (cp - runs[b + 1]) % runs[b + 3] == 0 then return cp + runs[b + 4]
    else return nil end
  end
  return nil
end
local function is_cased(cp)
  local lo, hi = 0, #CASED / 2 - 1
  while lo <= hi do
    local mid = floor((lo + hi) / 2)
    if cp < CASED[mid * 2 + 1] then hi = mid - 1
    elseif cp > CASED[mid * 2 + 2] then lo = mid + 1
    else return true end
  end
  return false
end
-- Case_Ignorable, approximately: apostrophes, `.`, `:`, `^`, backtick,
-- middle dot, soft hyphen, modifier letters and combining marks.
local function ignorable(cp)
  return cp == 0x27 or cp == 0x2E or cp == 0x3A or cp == 0x5E or cp == 0x60 or cp == 0xA8
    or cp == 0xAD or cp == 0xAF or cp == 0xB4 or cp == 0xB7 or cp == 0xB8 or cp == 0x2019
    or (cp >= 0x2B0 and cp <= 0x36F) or (cp >= 0x1AB0 and cp <= 0x1AFF)
    or (cp >= 0x1DC0 and cp <= 0x1DFF) or (cp >= 0x20D0 and cp <= 0x20FF)
    or (cp >= 0xFE20 and cp <= 0xFE2F)
end
local function cased_then(cps, from, step)
  local i = from
  while cps[i] do
    if not ignorable(cps[i]) then return is_cased(cps[i]) end
    i = i + step
  end
  return false
end
local function map(runs, special, cp)
  local s = special[cp]
  if s then return s end
  local to = find(runs, cp)
  return to and utf8(to) or nil
end
return {
  -- `cps` and `i`: the string's code points and this one's index, for
  -- the final sigma (U+03A3 at a word's end is U+03C2).
  lower = function(cp, cps, i)
    if cp == 0x3A3 and cased_then(cps, i - 1, -1) and not cased_then(cps, i + 1, 1) then
      return "\207\130"
    end
    return map(LOWER, LOWER_SPECIAL, cp)
  end,
  upper = function(cp) return map(UPPER, UPPER_SPECIAL, cp) end,
}
