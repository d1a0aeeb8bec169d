-- e2e_lev.lua URL JSON(on|off) EXPECTED [CAFILE]: lev-http end to end. One http.sse_client
-- reads the stream into a Lua `message` callback; prints "events=<n> wall=<s> cpu=<s>".
-- Exits 1 if the count of events (with [DONE] seen) is not EXPECTED.
local lev = require("lev")
local http = require("http")
local url, json, expected, cafile = arg[1], arg[2] == "on", tonumber(arg[3]), arg[4]

local n, done, bad = 0, false, 0
local t0, c0 = lev.now(), os.clock()
lev.run(function()
  local opts = { json = json, recv_timeout = 5 }
  if cafile then opts.tls_cafile = cafile end
  local c = http.sse_client(url, opts, {
    message = function(data)
      n = n + 1
      if json and type(data) ~= "table" then bad = bad + 1 end
    end,
    done = function() done = true end,
    error = function(msg) io.stderr:write("error: ", tostring(msg), "\n") end,
  })
  assert(c:connect())
  while c:update() do end
end)
local wall, cpu = lev.now() - t0, os.clock() - c0
print(string.format("events=%d wall=%.6f cpu=%.6f", n, wall, cpu))
if n ~= expected or not done or bad > 0 then
  io.stderr:write(string.format("lev: got %d events (done=%s, not decoded=%d), want %d\n", n,
    tostring(done), bad, expected))
  os.exit(1)
end
