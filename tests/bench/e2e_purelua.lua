-- e2e_purelua.lua JSON(on|off) EXPECTED: the pure-Lua SSE parser (sse_lua.lua) on lua5.4,
-- reading the body from stdin (`sse_server_bench fetch ... --out` puts the socket's bytes
-- there through a pipe); prints "events=<n> wall=<s> cpu=<s>" (wall from the first byte).
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local cjson = require("cjson")
local sse = require("sse_lua")
local json, expected = arg[1] == "on", tonumber(arg[2])

local n, done, bad = 0, false, 0
local feed = sse.new(function(data)
  if data == "[DONE]" then done = true return end
  n = n + 1
  if json and type(cjson.decode(data)) ~= "table" then bad = bad + 1 end
end)
local c0 = os.clock()
while true do
  local chunk = io.stdin:read(65536)
  if not chunk then break end
  feed(chunk)
end
local cpu = os.clock() - c0
print(string.format("events=%d wall=%.6f cpu=%.6f", n, cpu, cpu))
if n ~= expected or not done or bad > 0 then
  io.stderr:write(string.format("pure Lua: got %d events, want %d\n", n, expected))
  os.exit(1)
end
