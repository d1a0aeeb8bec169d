-- e2e_scale.lua BASE N_IDLE N_ACTIVE EVENTS INTERVAL_US [CAFILE]: many streams in one
-- lev.run. Opens N_IDLE idle streams (BASE/idle) and waits until all are open, measuring RSS
-- (/proc/self/statm) and Lua memory (collectgarbage "count") before and after; then runs
-- N_ACTIVE paced streams (EVENTS events each, INTERVAL_US apart, json off) alongside them and
-- measures process CPU time (os.clock) per event. Prints one line of key=value.
local lev = require("lev")
local http = require("http")
local base, n_idle, n_active, events, interval, cafile =
  arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5]), arg[6]

local function rss_kib()
  local f = assert(io.open("/proc/self/statm"))
  local _, res = f:read("n", "n")
  f:close()
  return res * 4 -- 4 KiB pages
end

local opts = { recv_timeout = 3600, json = false }
if cafile then opts.tls_cafile = cafile end
local out = {}
lev.run(function()
  collectgarbage()
  collectgarbage()
  local rss0, lua0 = rss_kib(), collectgarbage("count")
  -- connect() returns once the stream is open (its `open` callback ran). The main task waits
  -- by joining tasks only, never by polling with lev.sleep: see BENCHMARKS.md (a timer that
  -- fires while the loop is otherwise idle can be lost for as long as no I/O arrives).
  local opened, idle, openers, tasks = 0, {}, {}, {}
  for i = 1, n_idle do
    local c = http.sse_client(base .. "/idle", opts, {
      open = function() opened = opened + 1 end,
      error = function(msg) io.stderr:write("idle error: ", tostring(msg), "\n") end,
    })
    idle[i] = c
    openers[i] = lev.spawn(function() assert(c:connect()) end)
    if i % 500 == 0 then lev.sleep(0) end -- let the server keep up with accepts
  end
  for _, t in ipairs(openers) do t:join() end
  if opened ~= n_idle then error("only " .. opened .. " idle streams opened") end
  for i, c in ipairs(idle) do
    tasks[i] = lev.spawn(function() while c:update() do end end)
  end
  lev.sleep(0) -- every idle task is now waiting in update()
  collectgarbage()
  collectgarbage()
  local rss1, lua1 = rss_kib(), collectgarbage("count")
  if n_idle > 0 then
    out.rss_per_idle_kib = (rss1 - rss0) / n_idle
    out.lua_per_idle_kib = (lua1 - lua0) / n_idle
  end

  local got, finished = 0, 0
  local c0, t0 = os.clock(), lev.now()
  local active = {}
  for i = 1, n_active do
    active[i] = lev.spawn(function()
      local c = http.sse_client(base .. "/paced?n=" .. events .. "&us=" .. interval, opts, {
        message = function() got = got + 1 end,
        done = function() finished = finished + 1 end,
        error = function(msg) io.stderr:write("active error: ", tostring(msg), "\n") end,
      })
      assert(c:connect())
      while c:update() do end
    end)
  end
  for _, t in ipairs(active) do t:join() end
  local cpu, wall = os.clock() - c0, lev.now() - t0
  out.events = got
  out.cpu_us_per_event = cpu / got * 1e6
  out.wall = wall
  out.idle_open_at_end = opened
  for _, c in ipairs(idle) do
    if not c:is_connected() then error("an idle stream ended early") end
  end
  for _, c in ipairs(idle) do c:close() end
  for _, t in ipairs(tasks) do t:join() end
  out.ok = (got == n_active * events and finished == n_active) and 1 or 0
end)
local keys = {}
for k in pairs(out) do keys[#keys + 1] = k end
table.sort(keys)
local parts = { "idle=" .. n_idle, "active=" .. n_active }
for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. string.format("%.3f", out[k]) end
print(table.concat(parts, " "))
if out.ok ~= 1 then
  io.stderr:write("scale: wrong event count\n")
  os.exit(1)
end
