-- e2e_latency.lua URL EXPECTED: server write -> Lua callback latency. The server stamps
-- each event with CLOCK_MONOTONIC (ns) right before its write; the `message` callback
-- compares with lev.now(), which is libuv's uv_hrtime(), i.e. CLOCK_MONOTONIC too (checked
-- below: every latency must be positive and under a second). Prints p50/p90/p99/max in us.
local lev = require("lev")
local http = require("http")
local url, expected = arg[1], tonumber(arg[2])

local lat, done = {}, false
lev.run(function()
  local c = http.sse_client(url, { recv_timeout = 5 }, {
    message = function(data)
      lat[#lat + 1] = (lev.now() * 1e9 - data.t) / 1e3
    end,
    done = function() done = true end,
    error = function(msg) io.stderr:write("error: ", tostring(msg), "\n") end,
  })
  assert(c:connect())
  while c:update() do end
end)
table.sort(lat)
local function pct(p) return lat[math.max(1, math.ceil(#lat * p))] end
print(string.format("events=%d p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f min_us=%.1f",
  #lat, pct(0.5), pct(0.9), pct(0.99), lat[#lat], lat[1]))
if #lat ~= expected or not done or lat[1] <= 0 or lat[#lat] > 1e6 then
  io.stderr:write("latency: wrong count or clocks disagree\n")
  os.exit(1)
end
