-- e2e_line.lua URL BYTES: one data line of BYTES bytes (then [DONE]) through the client, json
-- off, max_event_size above it; prints "events=1 wall=<s> cpu=<s>". Run it under
-- LD_PRELOAD=onebyte_recv.so to get one byte per read.
local lev = require("lev")
local http = require("http")
local url, bytes = arg[1], tonumber(arg[2])
local got, done = -1, false
local t0, c0 = lev.now(), os.clock()
lev.run(function()
  local c = http.sse_client(url, { json = false, recv_timeout = 30, max_event_size = 2 * bytes + 64 }, {
    message = function(data) got = #data end,
    done = function() done = true end,
    error = function(msg) io.stderr:write("error: ", tostring(msg), "\n") end,
  })
  assert(c:connect())
  while c:update() do end
end)
print(string.format("events=1 wall=%.6f cpu=%.6f", lev.now() - t0, os.clock() - c0))
if got ~= bytes or not done then
  io.stderr:write(string.format("line: got %d bytes, want %d\n", got, bytes))
  os.exit(1)
end
