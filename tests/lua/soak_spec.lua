-- soak_spec.lua: 1,000 connections of each way a client can end (closed with client:close(),
-- abandoned to the garbage collector mid-stream, refused) leave this process's fd count
-- exactly where it was and its Lua memory within 64 KiB (after full collections); the server
-- sees every connection closed. Servers: tests/servers/hostile_server.py (scenario
-- events_then_silence: a head, 20 events, then silence until the client goes away) and
-- tests/servers/script_server.py --refuse (a port that refuses connections).
local lev = require("lev")
local http = require("http")
local helpers = require("helpers.server")
local cjson = require("cjson")

local source_dir = os.getenv("LEVHTTP_SOURCE_DIR") or "."

local N = 1000
local WARMUP = 50
local MEMORY_SLACK_KIB = 64

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local hostile, refused

local function start_hostile()
  local state = os.tmpname()
  local pipe = assert(io.popen(table.concat({
    "exec /usr/bin/python3", sh_quote(source_dir .. "/tests/servers/hostile_server.py"),
    "--state-file", sh_quote(state), "</dev/null" }, " "), "r"))
  local line = pipe:read("l") or ""
  local port, pid = line:match("^PORT (%d+) PID (%d+)")
  assert(port, "hostile_server did not start: " .. line)
  local s = { port = tonumber(port) }
  function s.stats()
    local f = assert(io.open(state, "r"))
    local text = f:read("a")
    f:close()
    return cjson.decode(text)
  end
  function s.stop()
    if s.stopped then return end
    s.stopped = true
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
    pipe:close()
    os.remove(state)
    os.remove(state .. ".tmp")
  end
  return s
end

-- Resident set size in KiB, reported (not asserted: malloc keeps freed pages, and under ASan
-- the quarantine grows it; C++ leaks are LeakSanitizer's job in the sanitizer build).
local function rss_kib()
  local f = io.open("/proc/self/statm", "r")
  if not f then return 0 end
  local pages = f:read("n")
  pages = f:read("n")
  f:close()
  return pages * 4
end

local function full_gc()
  collectgarbage()
  collectgarbage()
end

-- Runs `one(i)` WARMUP times, takes the baseline, runs it N times, and returns the fd and
-- memory (KiB) differences and the elapsed time. Everything happens inside one lev.run.
local function soak(one)
  return helpers.run(function()
    for i = 1, WARMUP do one(i) end
    full_gc()
    local fds0, mem0, rss0 = helpers.count_fds(), collectgarbage("count"), rss_kib()
    local t0 = lev.now()
    for i = 1, N do
      one(i)
      if i % 100 == 0 then collectgarbage("step") end
    end
    local elapsed = lev.now() - t0
    full_gc()
    return helpers.count_fds() - fds0, collectgarbage("count") - mem0, elapsed, rss_kib() - rss0
  end, 120)
end

local function report(what, dfd, dmem, elapsed, drss)
  print(("\n%s: %d connections in %.2f s; fds %+d, Lua memory %+.1f KiB, RSS %+d KiB"):format(
    what, N, elapsed, dfd, dmem, drss))
end

local function url(path)
  return "http://127.0.0.1:" .. hostile.port .. path
end

describe("soak: 1,000 connections", function()
  setup(function()
    hostile = start_hostile()
    refused = helpers.start({ refuse = true })
  end)
  teardown(function()
    if hostile then hostile.stop() end
    if refused then refused:stop() end
  end)

  it("closed with client:close() mid-stream: no fd, no memory, every close() once", function()
    local closes, messages = 0, 0
    local accepted0 = hostile.stats().accepted
    local cb = {
      message = function() messages = messages + 1 end,
      close = function() closes = closes + 1 end,
    }
    local dfd, dmem, elapsed, drss = soak(function()
      local c = http.sse_client(url("/scenario/events_then_silence?n=20"), nil, cb)
      assert(c:connect())
      local before = messages
      while messages == before do assert(c:update()) end
      c:close()
      assert(not c:is_connected())
    end)
    report("closed", dfd, dmem, elapsed, drss)
    assert.equals(0, dfd)
    assert.is_true(dmem < MEMORY_SLACK_KIB, ("Lua memory grew %.1f KiB"):format(dmem))
    assert.equals(N + WARMUP, closes)
    assert.equals(N + WARMUP, hostile.stats().accepted - accepted0)
    helpers.run(function()
      helpers.wait_until(function() return hostile.stats().open == 0 end, 10,
                         "the server to see every connection closed")
    end)
  end)

  it("abandoned to the garbage collector mid-stream: no fd, no memory, no callbacks", function()
    local closes, messages = 0, 0
    local accepted0 = hostile.stats().accepted
    local cb = {
      message = function() messages = messages + 1 end,
      close = function() closes = closes + 1 end,
      error = function(msg) error("unexpected error callback: " .. msg) end,
    }
    local dfd, dmem, elapsed, drss = soak(function()
      local c = http.sse_client(url("/scenario/events_then_silence?n=20"), nil, cb)
      assert(c:connect())
      local before = messages
      -- One event read; the other 19 may sit in the client's buffers: dropped with it.
      while messages == before do assert(c:update()) end
      c = nil -- luacheck: ignore (the last reference goes away here)
    end)
    report("abandoned", dfd, dmem, elapsed, drss)
    assert.equals(0, dfd)
    assert.is_true(dmem < MEMORY_SLACK_KIB, ("Lua memory grew %.1f KiB"):format(dmem))
    -- A collected client closes its socket without running callbacks.
    assert.equals(0, closes)
    assert.equals(N + WARMUP, hostile.stats().accepted - accepted0)
    helpers.run(function()
      helpers.wait_until(function() return hostile.stats().open == 0 end, 10,
                         "the server to see every abandoned connection closed")
    end)
  end)

  it("refused (a closed port): no fd, no memory, kind 'connect' every time", function()
    local errors = 0
    local cb = {
      error = function(_, _, kind)
        assert(kind == "connect", kind)
        errors = errors + 1
      end,
      close = function() error("close must not run: connect never ran") end,
    }
    local dfd, dmem, elapsed, drss = soak(function()
      local c = http.sse_client(refused.url("/"), nil, cb)
      local ok, _, _, kind = c:connect()
      assert(ok == nil and kind == "connect", tostring(kind))
    end)
    report("refused", dfd, dmem, elapsed, drss)
    assert.equals(0, dfd)
    assert.is_true(dmem < MEMORY_SLACK_KIB, ("Lua memory grew %.1f KiB"):format(dmem))
    assert.equals(N + WARMUP, errors)
  end)
end)
