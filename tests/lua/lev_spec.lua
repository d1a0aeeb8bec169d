-- lev_spec.lua: the `lev` table of SPEC.md (run, spawn, join, sleep, now) and the decisions in
-- docs/lev.md: errors, ordering, abandonment, deadlock, plain yields, scale.
local lev = require("lev")

local function errmsg(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("lev.run", function()
  it("runs fn with its arguments and returns all its results", function()
    local r = table.pack(lev.run(function(a, b)
      lev.sleep(0)
      return a + b, nil, "z"
    end, 1, 2))
    assert.are.equal(3, r.n)
    assert.are.equal(3, r[1])
    assert.is_nil(r[2])
    assert.are.equal("z", r[3])
  end)

  it("returns only once every spawned task has finished", function()
    local finished = {}
    lev.run(function()
      for i = 1, 3 do
        lev.spawn(function()
          lev.sleep(0.01 * i)
          finished[#finished + 1] = i
        end)
      end
      return "main done first"
    end)
    assert.are.same({ 1, 2, 3 }, finished)
  end)

  it("rejects a non-function", function()
    assert.matches("function expected", errmsg(lev.run, 42))
  end)

  it("cannot be nested, from the main task or a spawned one", function()
    local inner
    local err = errmsg(lev.run, function()
      lev.run(function() end)
    end)
    assert.matches("lev.run cannot be nested", err)
    lev.run(function()
      local t = lev.spawn(function()
        return pcall(lev.run, function() end)
      end)
      local ok, e = t:join()
      assert.is_false(ok)
      inner = e
    end)
    assert.matches("lev.run cannot be nested", inner)
    -- nor from a plain coroutine inside a task
    local ok, e = lev.run(function()
      return coroutine.wrap(function()
        return pcall(lev.run, function() end)
      end)()
    end)
    assert.is_false(ok)
    assert.matches("lev.run cannot be nested", e)
  end)

  it("raises a task's string error with the task's traceback", function()
    local err = errmsg(lev.run, function()
      lev.spawn(function()
        lev.sleep(0.001)
        local function deep_failure() error("boom in task") end
        deep_failure()
      end)
      lev.sleep(1)
    end)
    assert.matches("boom in task", err)
    assert.matches("stack traceback:", err)
    assert.matches("deep_failure", err)
  end)

  it("re-raises a non-string error value unchanged", function()
    local value = { code = 42 }
    local ok, err = pcall(lev.run, function()
      lev.spawn(function() error(value) end)
      lev.sleep(1)
    end)
    assert.is_false(ok)
    assert.are.equal(value, err)
  end)

  it("works normally after a run that failed", function()
    pcall(lev.run, function()
      lev.spawn(function() lev.sleep(10) end)
      error("first run fails")
    end)
    assert.are.equal("ok", lev.run(function()
      lev.sleep(0.001)
      return "ok"
    end))
  end)

  it("closes to-be-closed variables of abandoned tasks and of the failing task", function()
    local closed = {}
    local function closer(name)
      return setmetatable({}, { __close = function() closed[#closed + 1] = name end })
    end
    local never_resumed = true
    local err = errmsg(lev.run, function()
      lev.spawn(function()
        local a <close> = closer("sleeper")
        lev.sleep(10)
        never_resumed = false
      end)
      lev.spawn(function()
        local b <close> = closer("waiter")
        lev.sleep(0) -- still ready when the loop stops
        lev.sleep(10)
        never_resumed = false
      end)
      local c <close> = closer("failing")
      lev.sleep(0.01)
      error("stop")
    end)
    assert.matches("stop", err)
    table.sort(closed)
    assert.are.same({ "failing", "sleeper", "waiter" }, closed)
    assert.is_true(never_resumed)
  end)

  it("detects a deadlock: tasks waiting on each other", function()
    local err = errmsg(lev.run, function()
      local a, b
      a = lev.spawn(function() lev.sleep(0) b:join() end)
      b = lev.spawn(function() lev.sleep(0) a:join() end)
      a:join()
    end)
    assert.matches("lev.run: deadlock: 3 task%(s%) waiting forever", err)
  end)

  it("detects a deadlock: a task sleeping forever with nothing else to do", function()
    local err = errmsg(lev.run, function() lev.sleep(math.huge) end)
    assert.matches("lev.run: deadlock: 1 task%(s%) waiting forever", err)
  end)

  it("leaves no fd behind, whether the run succeeds, fails or deadlocks", function()
    local lfs = require("lfs")
    local function count_fds()
      local n = 0
      for _ in lfs.dir("/proc/self/fd") do n = n + 1 end
      return n
    end
    local before = count_fds()
    for _ = 1, 5 do
      lev.run(function()
        lev.spawn(lev.sleep, 0.001)
        lev.sleep(0.002)
      end)
      pcall(lev.run, function()
        lev.spawn(lev.sleep, 10)
        error("x")
      end)
      pcall(lev.run, function() lev.sleep(math.huge) end)
    end
    assert.are.equal(before, count_fds())
  end)

  it("does not crash when the Lua state is closed inside a running loop", function()
    local cmd = [[lua5.4 -e 'local lev = require("lev"); lev.run(function() ]]
      .. [[lev.spawn(function() lev.sleep(5) end); lev.spawn(function() lev.sleep(0) end); ]]
      .. [[lev.sleep(0.01); io.stdout:write("closing\n"); os.exit(7, true) end)' 2>&1]]
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    local _, _, code = p:close()
    assert.are.equal("closing\n", out)
    assert.are.equal(7, code)
  end)

  it("lets Ctrl-C (lua5.4's SIGINT hook) interrupt the running tasks", function()
    -- The interpreter's SIGINT handler hooks the main thread; lev copies the hook to the task it
    -- resumes, so the interrupt fires inside lev.run instead of after it. `timeout --foreground`
    -- sends SIGINT once (without it, timeout signals its process group too, and a second
    -- SIGINT finds the default action restored by lua.c and kills the process silently),
    -- after 1.5 s (the interpreter must have set its handler by then, also under the
    -- sanitizers); without the hook copy the loop would run for its full 20 s.
    local cmd = [[timeout --foreground -s INT 1.5 lua5.4 -e 'local lev = require("lev"); local t0 = lev.now(); ]]
      .. [[lev.run(function() while lev.now() - t0 < 20 do lev.sleep(0.01) end end)' 2>&1]]
    local t0 = lev.now()
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    local _, _, code = p:close()
    local elapsed = lev.now() - t0
    assert.matches("interrupted!", out)
    assert.are_not.equal(0, code)
    assert.is_true(elapsed < 5, "took " .. elapsed .. " s")
  end)
end)

describe("lev.spawn and task:join", function()
  it("runs a spawned task first when its spawner yields (FIFO)", function()
    local log = {}
    lev.run(function()
      log[#log + 1] = "main 1"
      lev.spawn(function() log[#log + 1] = "first spawned" end)
      lev.spawn(function() log[#log + 1] = "second spawned" end)
      log[#log + 1] = "main 2"
      lev.sleep(0)
      log[#log + 1] = "main 3"
    end)
    assert.are.same({ "main 1", "main 2", "first spawned", "second spawned", "main 3" }, log)
  end)

  it("must be called within lev.run", function()
    assert.matches("lev.spawn must be used within lev.run%(%)", errmsg(lev.spawn, function() end))
  end)

  it("join returns every result, to several joiners, and again after the run", function()
    local t_outside
    local got = {}
    lev.run(function()
      local t = lev.spawn(function(x)
        lev.sleep(0.01)
        return x, nil, x * 2
      end, 21)
      t_outside = t
      for i = 1, 3 do
        lev.spawn(function() got[i] = table.pack(t:join()) end)
      end
      local r = table.pack(t:join())
      assert.are.equal(3, r.n)
      assert.are.same({ 21, nil, 42 }, { r[1], r[2], r[3] })
    end)
    for i = 1, 3 do
      assert.are.equal(3, got[i].n)
      assert.are.equal(42, got[i][3])
    end
    local r = table.pack(t_outside:join())
    assert.are.equal(3, r.n)
    assert.are.equal(21, r[1])
    assert.are.equal(42, r[3])
  end)

  it("join of a task that returned nothing returns nothing", function()
    local n = lev.run(function()
      return select("#", lev.spawn(function() end):join())
    end)
    assert.are.equal(0, n)
  end)

  it("join re-raises the task's error in every joiner and the loop goes on", function()
    local value = { "error object" }
    local results = lev.run(function()
      local t = lev.spawn(function()
        lev.sleep(0.01)
        error("task failed")
      end)
      local u = lev.spawn(function()
        lev.sleep(0.03) -- fails once the main task is blocked in u:join()
        error(value)
      end)
      local other = lev.spawn(function() return pcall(t.join, t) end)
      local ok1, e1 = pcall(t.join, t)
      local ok2, e2 = pcall(u.join, u)
      local ok3, e3 = other:join()
      lev.sleep(0.01) -- the loop still runs
      return { ok1, e1, ok2, e2, ok3, e3, t = t }
    end)
    assert.is_false(results[1])
    assert.matches("task failed", results[2])
    assert.is_false(results[3])
    assert.are.equal(value, results[4])
    assert.is_false(results[5])
    assert.matches("task failed", results[6])
    -- and again, after the run
    local ok, e = pcall(results.t.join, results.t)
    assert.is_false(ok)
    assert.matches("task failed", e)
  end)

  it("join of an unfinished task outside lev.run is an error", function()
    local t
    pcall(lev.run, function()
      t = lev.spawn(function() lev.sleep(10) end)
      lev.sleep(0)
      error("stop")
    end)
    -- the task was abandoned: joining it cannot wait for it
    assert.matches("abandoned", errmsg(t.join, t))
    lev.run(function()
      local u = lev.spawn(function() lev.sleep(0.01) end)
      local ok, e = coroutine.wrap(function() return pcall(u.join, u) end)()
      assert.is_false(ok)
      assert.matches("task:join must be used within lev.run%(%)", e)
      u:join()
    end)
  end)

  it("join on itself is an error", function()
    local err = lev.run(function()
      local self_task
      self_task = lev.spawn(function()
        lev.sleep(0)
        return select(2, pcall(self_task.join, self_task))
      end)
      return self_task:join()
    end)
    assert.matches("cannot join itself", err)
  end)

  it("task objects print their state", function()
    local t_done
    lev.run(function()
      local t = lev.spawn(function() end)
      assert.matches("^lev%.task: .*%(ready%)$", tostring(t))
      t:join()
      t_done = t
    end)
    assert.matches("^lev%.task: .*%(done%)$", tostring(t_done))
  end)

  it("runs 10,000 tasks in one run", function()
    local count = 0
    local tasks = {}
    lev.run(function()
      for i = 1, 10000 do
        tasks[i] = lev.spawn(function()
          lev.sleep(0)
          count = count + 1
          return i
        end)
      end
      for i = 1, 10000 do assert.are.equal(i, tasks[i]:join()) end
    end)
    assert.are.equal(10000, count)
  end)
end)

describe("lev.sleep", function()
  it("must be called within lev.run", function()
    assert.matches("lev.sleep must be used within lev.run%(%)", errmsg(lev.sleep, 0.01))
  end)

  it("refuses to wait from a coroutine nested inside a task", function()
    local ok, e = lev.run(function()
      local co = coroutine.create(function() lev.sleep(0.01) end)
      return coroutine.resume(co)
    end)
    assert.is_false(ok)
    assert.matches("lev.sleep must be used within lev.run%(%)", e)
  end)

  it("refuses to wait across a C-call boundary", function()
    local ok, e = lev.run(function()
      return pcall(table.sort, { 3, 2, 1 }, function(a, b)
        lev.sleep(0)
        return a < b
      end)
    end)
    assert.is_false(ok)
    assert.matches("lev.sleep cannot wait here", e)
  end)

  it("checks its argument", function()
    lev.run(function()
      assert.matches("non%-negative number, got string", errmsg(lev.sleep, "1"))
      assert.matches("non%-negative number, got no value", errmsg(lev.sleep))
      assert.matches("non%-negative number, got %-1", errmsg(lev.sleep, -1))
      assert.matches("non%-negative number, got [-]?nan", errmsg(lev.sleep, 0 / 0))
    end)
  end)

  it("wakes tasks in deadline order", function()
    local order = {}
    lev.run(function()
      for _, d in ipairs({ 0.03, 0.01, 0.05, 0.02, 0.04 }) do
        lev.spawn(function()
          lev.sleep(d)
          order[#order + 1] = d
        end)
      end
    end)
    assert.are.same({ 0.01, 0.02, 0.03, 0.04, 0.05 }, order)
  end)

  it("sleep(0) lets the other ready tasks run, and so does a plain coroutine.yield", function()
    local log = {}
    lev.run(function()
      lev.spawn(function()
        for i = 1, 3 do
          log[#log + 1] = "a" .. i
          lev.sleep(0)
        end
      end)
      lev.spawn(function()
        for i = 1, 3 do
          log[#log + 1] = "b" .. i
          coroutine.yield("ignored", "values")
        end
      end)
    end)
    assert.are.same({ "a1", "b1", "a2", "b2", "a3", "b3" }, log)
  end)

  it("wakes a short sleep on time while a much longer one is pending", function()
    -- A busy task lets the short sleep's deadline pass, so its timer fires at the start of
    -- the next libuv turn; the loop must not then go on to block in its poll until the long
    -- timer (1.5 s) with the task ready.
    local took
    lev.run(function()
      local long = lev.spawn(function() lev.sleep(1.5) end)
      lev.spawn(function()
        local t = lev.now()
        while lev.now() - t < 0.05 do end -- busy, no yield
      end)
      local t0 = lev.now()
      lev.sleep(0.02)
      took = lev.now() - t0
      long:join()
    end)
    assert.is_true(took >= 0.02 and took < 0.5, "a 20 ms sleep took " .. took .. " s")
  end)

  it("runs 100 concurrent 50 ms sleeps in about 50 ms", function()
    local woke = 0
    local t0 = lev.now()
    lev.run(function()
      for _ = 1, 100 do
        lev.spawn(function()
          local start = lev.now()
          lev.sleep(0.05)
          assert.is_true(lev.now() - start >= 0.05)
          woke = woke + 1
        end)
      end
    end)
    local elapsed = lev.now() - t0
    assert.are.equal(100, woke)
    assert.is_true(elapsed > 0.045, "elapsed " .. elapsed)
    assert.is_true(elapsed < 0.150, "elapsed " .. elapsed)
  end)
end)

describe("lev.now", function()
  it("is a monotonic float usable outside lev.run", function()
    local a = lev.now()
    local b = lev.now()
    assert.are.equal("number", type(a))
    assert.is_true(math.type(a) == "float")
    assert.is_true(b >= a)
  end)

  it("advances by at least the time slept", function()
    lev.run(function()
      local before = lev.now()
      lev.sleep(0.02)
      local after = lev.now()
      assert.is_true(after - before >= 0.02, "advanced " .. (after - before))
      assert.is_true(after - before < 1)
    end)
  end)
end)
