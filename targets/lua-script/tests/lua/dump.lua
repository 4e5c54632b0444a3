-- Prints what the test host recorded, in the form the Rust side builds
-- from the reference evaluator (one fact per line).
local function dump(phase)
  local out = {}
  local function say(s) out[#out + 1] = s end
  if OUT.failed then
    local at = OUT.errors[#OUT.errors]:match("failed at (%S+):") or "?"
    say(phase .. " fail " .. at)
  elseif OUT.respond then
    local r = OUT.respond
    say(phase .. " respond " .. string.format("%d", r.status))
    say("body " .. r.body)
    local hs = {}
    for _, kv in ipairs(r.headers) do hs[#hs + 1] = kv[1] .. ": " .. kv[2] end
    table.sort(hs)
    for _, h in ipairs(hs) do say("answer-header " .. h) end
  else
    say(phase .. " continue")
    for _, kv in ipairs(REQ.headers) do say("req-header " .. kv[1] .. ": " .. kv[2]) end
    for _, kv in ipairs(REQ.res_headers) do say("res-header " .. kv[1] .. ": " .. kv[2]) end
    if OUT.path then say("path " .. OUT.path) end
  end
  for _, l in ipairs(OUT.logs) do say("log " .. l) end
  local keys = {}
  for k in pairs(OUT.ctx) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do say("ctx " .. k .. "=" .. OUT.ctx[k]) end
  io.write(table.concat(out, "\n"), "\n")
end
return dump
