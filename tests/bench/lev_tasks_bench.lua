-- lev_tasks_bench.lua: cost of lev tasks. Spawns N tasks that each sleep(0) once and return,
-- then joins them all, and prints the time of each phase and the memory in use.
--
--   LUA_CPATH='build/?.so;;' lua5.4 tests/bench/lev_tasks_bench.lua [N ...]
--
-- Numbers only, never pass/fail. Memory: collectgarbage("count") (the Lua heap) while all N
-- tasks are alive, and the process's VmRSS from /proc/self/status.
local lev = require("lev")

local function rss_kib()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  for line in f:lines() do
    local kib = line:match("^VmRSS:%s+(%d+)%s+kB")
    if kib then
      f:close()
      return tonumber(kib)
    end
  end
  f:close()
  return nil
end

local function bench(n)
  collectgarbage("collect")
  local heap0, rss0 = collectgarbage("count"), rss_kib()
  local t_start = lev.now()
  local spawn_s, run_s, join_s, heap_live, rss_live
  local sum = 0
  lev.run(function()
    local tasks = {}
    local t0 = lev.now()
    for i = 1, n do
      tasks[i] = lev.spawn(function()
        lev.sleep(0)
        return i
      end)
    end
    local t1 = lev.now()
    spawn_s = t1 - t0
    heap_live, rss_live = collectgarbage("count"), rss_kib()
    -- every task runs once, to its sleep(0), before the main task resumes
    lev.sleep(0)
    local t2 = lev.now()
    run_s = t2 - t1
    for i = 1, n do sum = sum + tasks[i]:join() end
    join_s = lev.now() - t2
  end)
  local total = lev.now() - t_start
  assert(sum == n * (n + 1) // 2, "wrong results")
  collectgarbage("collect") -- finalizes the task objects (their results are in the registry)
  collectgarbage("collect") -- frees them
  local heap_after = collectgarbage("count")
  print(string.format(
    "%7d tasks: spawn %.3f s (%.2f us/task), first resumes %.3f s, finish+join %.3f s, lev.run %.3f s",
    n, spawn_s, spawn_s / n * 1e6, run_s, join_s, total))
  print(string.format(
    "               Lua heap %.1f MiB while alive (+%.0f bytes/task), %.1f MiB after; "
      .. "VmRSS %s -> %s MiB",
    heap_live / 1024, (heap_live - heap0) * 1024 / n, heap_after / 1024,
    rss0 and string.format("%.1f", rss0 / 1024) or "?",
    rss_live and string.format("%.1f", rss_live / 1024) or "?"))
end

local sizes = {}
for i = 1, #arg do sizes[#sizes + 1] = tonumber(arg[i]) end
if #sizes == 0 then sizes = { 10000, 100000 } end
for _, n in ipairs(sizes) do bench(n) end
