-- http.sse_client options (SPEC.md, Options): each timeout against a server that stalls in
-- that phase, recv_timeout, idle_timeout (silence vs comments), max_event_size, json. The
-- request-shaping options (method, body, headers) are in sse_client_request_spec.lua.
local lev = require("lev")
local server = require("helpers.server")
local sse = require("helpers.sse")

local s
setup(function()
  s = server.start()
end)
teardown(function()
  if s then
    s:stop()
  end
end)

-- Timings on a shared 2-core machine: a timeout must not fire early, and must fire within a
-- generous margin.
local SLACK = 1.0

local function timed(fn)
  local t0 = lev.now()
  local r = table.pack(fn())
  return lev.now() - t0, r
end

local function wait_closed()
  server.wait_until(function()
    return s:stats().open == 0
  end, 10, "the server to see every connection closed")
end

describe("http.sse_client options", function()
  it("connect_timeout: a connect that gets no answer fails with kind 'timeout'", function()
    local full = server.start({ backlog_full = true })
    finally(function()
      full:stop()
    end)
    local cb, log = sse.recorder()
    local dt, r = server.run(function()
      local c = require("http").sse_client(full.url("/"), { connect_timeout = 0.3 }, cb)
      return timed(function()
        return c:connect()
      end)
    end)
    assert.is_nil(r[1])
    assert.equals("timeout", r[4])
    assert.is_nil(r[3])
    assert.matches("connect", r[2], 1, true)
    assert.is_true(dt >= 0.29, "fired after " .. dt)
    assert.is_true(dt < 0.3 + SLACK, "fired after " .. dt)
    assert.same({ "error" }, sse.names(log))
  end)

  it("an IPv6 literal URL (http://[::1]:port/) connects within connect_timeout", function()
    local v6 = server.start({ host = "::1" })
    finally(function()
      v6:stop()
    end)
    local _, log = server.run(function()
      local cb, log = sse.recorder()
      local c = require("http").sse_client(v6.url("/"), { connect_timeout = 5 }, cb)
      assert.is_true(c:connect())
      return sse.drain(c), log
    end)
    assert.same({ "event 1", "event 2", "event 3" }, sse.datas(log, "message"))
  end)

  it("send_timeout: a server that never reads a 32 MiB body -> kind 'timeout'", function()
    -- Its own server: the stalled connection cannot be seen to close (the client's FIN waits
    -- behind the unread bytes), so it must not disturb the open-connection counts below.
    local stalled = server.start()
    finally(function()
      stalled:stop()
    end)
    local body = string.rep("x", 32 * 1024 * 1024)
    local dt, r, log = server.run(function()
      local cb, log = sse.recorder()
      local c = sse.client(stalled, { { noread = true }, { hold = 30 } },
                           { method = "POST", body = body, send_timeout = 0.5 }, cb)
      local dt, r = timed(function()
        return c:connect()
      end)
      c:close()
      return dt, r, log
    end)
    assert.is_nil(r[1])
    assert.equals("timeout", r[4])
    assert.is_nil(r[3])
    assert.matches("send", r[2], 1, true)
    assert.is_true(dt >= 0.45, "fired after " .. dt)
    assert.is_true(dt < 0.5 + SLACK, "fired after " .. dt)
    assert.same({ "connect", "error", "close" }, sse.names(log))
  end)

  it("headers_timeout: a server that never answers -> kind 'timeout'", function()
    local dt, r, log = server.run(function()
      local cb, log = sse.recorder()
      local c = sse.client(s, { { hold = 30 } }, { headers_timeout = 0.4 }, cb)
      local dt, r = timed(function()
        return c:connect()
      end)
      wait_closed()
      return dt, r, log
    end)
    assert.is_nil(r[1])
    assert.equals("timeout", r[4])
    assert.matches("headers", r[2], 1, true)
    assert.is_true(dt >= 0.39, "fired after " .. dt)
    assert.is_true(dt < 0.4 + SLACK, "fired after " .. dt)
    assert.same({ "connect", "error", "close" }, sse.names(log))
  end)

  it("headers_timeout counts a head that trickles in too slowly", function()
    local r = server.run(function()
      local c = sse.client(s, { { drip = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n",
                                  delay = 0.05 }, { hold = 30 } }, { headers_timeout = 0.5 })
      return table.pack(c:connect())
    end)
    assert.equals("timeout", r[4])
  end)

  it("recv_timeout: update() returns true after about recv_timeout when nothing comes", function()
    server.run(function()
      local cb, log = sse.recorder()
      local c = sse.client(s, { { sse_head = true }, { hold = 30 } }, { recv_timeout = 0.2 }, cb)
      assert.is_true(c:connect())
      for _ = 1, 3 do
        local dt, r = timed(function()
          return c:update()
        end)
        assert.same({ n = 1, true }, r)
        assert.is_true(dt >= 0.19, "update() returned after " .. dt)
        assert.is_true(dt < 0.2 + SLACK, "update() returned after " .. dt)
      end
      assert.is_true(c:is_connected())
      assert.equals(0, sse.count(log, "message"))
      c:close()
      wait_closed()
    end)
  end)

  it("recv_timeout defaults to 0.5 s", function()
    server.run(function()
      local c = sse.client(s, { { sse_head = true }, { hold = 30 } })
      assert.is_true(c:connect())
      local dt, r = timed(function()
        return c:update()
      end)
      assert.is_true(r[1])
      assert.is_true(dt >= 0.49 and dt < 0.5 + SLACK, "update() returned after " .. dt)
      c:close()
    end)
  end)

  it("update() returns as soon as an event arrives, well before recv_timeout", function()
    server.run(function()
      local cb, log = sse.recorder()
      local c = sse.client(s, { { sse_head = true }, { sleep = 0.2 }, { send = "data: x\n\n" },
                                { hold = 30 } }, { recv_timeout = 10 }, cb)
      assert.is_true(c:connect())
      local dt = timed(function()
        while sse.count(log, "message") == 0 do
          assert.is_true(c:update())
        end
      end)
      assert.is_true(dt < 5, "event after " .. dt)
      c:close()
    end)
  end)

  it("idle_timeout: silence after the headers ends the stream with kind 'idle'", function()
    local dt, r, log = server.run(function()
      local cb, log = sse.recorder()
      local c = sse.client(s, { { sse_head = true }, { send = "data: first\n\n" }, { hold = 30 } },
                           { idle_timeout = 0.4, recv_timeout = 0.1 }, cb)
      assert.is_true(c:connect())
      local dt, r = timed(function()
        return sse.drain(c)
      end)
      return dt, r[1], log
    end)
    assert.is_false(r.ok)
    assert.equals("idle", r.kind)
    assert.is_nil(r.status)
    assert.is_true(dt >= 0.35, "idle after " .. dt)
    assert.is_true(dt < 0.4 + SLACK, "idle after " .. dt)
    assert.same({ "connect", "open", "message", "error", "close" }, sse.names(log))
    assert.equals("idle", log[4][4])
  end)

  it("idle_timeout: comments count as bytes, so a commented stream does not go idle", function()
    local ops = { { sse_head = true } }
    for _ = 1, 10 do
      ops[#ops + 1] = { send = ": keep-alive\n" }
      ops[#ops + 1] = { sleep = 0.1 }
    end
    ops[#ops + 1] = { send = "data: end\n\n" }
    local r, log = server.run(function()
      local cb, log = sse.recorder()
      local c = sse.client(s, ops, { idle_timeout = 0.4, recv_timeout = 0.05 }, cb)
      assert.is_true(c:connect())
      return sse.drain(c), log
    end)
    assert.is_nil(r.err)
    assert.same({ "end" }, sse.datas(log, "message"))
  end)

  it("idle_timeout is not armed while events keep coming", function()
    local ops = { { sse_head = true } }
    for i = 1, 8 do
      ops[#ops + 1] = { send = "data: " .. i .. "\n\n" }
      ops[#ops + 1] = { sleep = 0.1 }
    end
    local r, log = server.run(function()
      local cb, log = sse.recorder()
      local c = sse.client(s, ops, { idle_timeout = 0.35 }, cb)
      assert.is_true(c:connect())
      return sse.drain(c), log
    end)
    assert.is_nil(r.err)
    assert.equals(8, sse.count(log, "message"))
  end)

  it("max_event_size: an event just under the limit passes, over it fails", function()
    local ok_body = "data: " .. string.rep("a", 900) .. "\n\n"
    local r, log = server.run(function()
      local cb, log = sse.recorder()
      local c = sse.client(s, sse.sse_ops(ok_body), { max_event_size = 1024 }, cb)
      assert.is_true(c:connect())
      return sse.drain(c), log
    end)
    assert.is_nil(r.err)
    assert.equals(900, #sse.datas(log, "message")[1])
    local r2 = server.run(function()
      local c = sse.client(s, sse.sse_ops("data: " .. string.rep("a", 5000) .. "\n\n",
                                          { { hold = 10 } }), { max_event_size = 1024 })
      assert.is_true(c:connect())
      return sse.drain(c)
    end)
    assert.equals("too_large", r2.kind)
  end)

  it("max_event_size defaults to 16 MiB: a 4 MiB event is delivered", function()
    local size = 4 * 1024 * 1024
    local r, got = server.run(function()
      local got
      local c = sse.client(s, { { sse_head = true }, { send = "data: " },
                                { ["repeat"] = "z", n = size }, { send = "\n\n" } }, { json = false },
                           { message = function(d)
                             got = d
                           end })
      assert.is_true(c:connect())
      return sse.drain(c), got
    end)
    assert.is_nil(r.err)
    assert.equals(size, #got)
  end)

  it("a 17 MiB line exceeds the default max_event_size", function()
    local r = server.run(function()
      local c = sse.client(s, { { sse_head = true }, { send = "data: " },
                                { ["repeat"] = "z", n = 17 * 1024 * 1024 }, { hold = 30 } })
      assert.is_true(c:connect())
      return sse.drain(c)
    end, 60)
    assert.equals("too_large", r.kind)
  end)
end)
