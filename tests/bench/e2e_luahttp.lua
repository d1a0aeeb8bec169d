-- e2e_luahttp.lua URL JSON(on|off) EXPECTED: Debian's lua-http 0.4 (on lua5.2, cqueues)
-- with the straightforward Lua SSE parser (sse_lua.lua) and lua-cjson; prints
-- "events=<n> wall=<s> cpu=<s>".
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local request = require("http.request")
local cqueues = require("cqueues")
local cjson = require("cjson")
local sse = require("sse_lua")
local url, json, expected = arg[1], arg[2] == "on", tonumber(arg[3])

local n, done, bad = 0, false, 0
local t0, c0 = cqueues.monotime(), os.clock()
local feed = sse.new(function(data)
  if data == "[DONE]" then done = true return end
  n = n + 1
  if json and type(cjson.decode(data)) ~= "table" then bad = bad + 1 end
end)
local headers, stream = assert(request.new_from_uri(url):go(10))
assert(headers:get(":status") == "200")
while not done do
  local chunk, err = stream:get_next_chunk()
  if not chunk then
    if err then error(err) end
    break
  end
  feed(chunk)
end
stream:shutdown()
local wall, cpu = cqueues.monotime() - t0, os.clock() - c0
print(string.format("events=%d wall=%.6f cpu=%.6f", n, wall, cpu))
if n ~= expected or not done or bad > 0 then
  io.stderr:write(string.format("lua-http: got %d events, want %d\n", n, expected))
  os.exit(1)
end
