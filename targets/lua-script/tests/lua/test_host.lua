-- Test host adapter (not a gateway): the request and response live in the
-- global REQ, what the script did is recorded in the global OUT, for the
-- tests that compare the emitted Lua with the reference evaluator.
local H = {}
local concat, remove = table.concat, table.remove
function H.begin(side) end
function H.method() return REQ.method end
function H.path() return REQ.path end
function H.ip() return REQ.ip end
function H.consumer() return REQ.consumer end
function H.raw_query() return REQ.query end
local function get(list, name)
  local vals = {}
  for _, kv in ipairs(list) do if kv[1] == name then vals[#vals + 1] = kv[2] end end
  if #vals == 0 then return nil end
  return concat(vals, ", ")
end
local function drop(list, name)
  for i = #list, 1, -1 do if list[i][1] == name then remove(list, i) end end
end
function H.req_header(name) return get(REQ.headers, name) end
function H.res_header(name) return get(REQ.res_headers, name) end
function H.status() return REQ.status end
function H.set_header(side, name, value)
  local list = side == "request" and REQ.headers or REQ.res_headers
  drop(list, name)
  list[#list + 1] = { name, value }
end
function H.remove_header(side, name) drop(side == "request" and REQ.headers or REQ.res_headers, name) end
function H.set_path(p) OUT.path = p end
function H.ctx_load() return OUT.ctx end
function H.ctx_store(c) OUT.ctx = c end
function H.pass() OUT.passed = true end
function H.passed() return OUT.passed == true end
function H.log(m) OUT.logs[#OUT.logs + 1] = m end
function H.log_error(m) OUT.errors[#OUT.errors + 1] = m end
function H.respond(status, body, headers)
  OUT.respond = { status = status, body = body, headers = headers }
end
function H.fail(side) OUT.failed = side end
return H
