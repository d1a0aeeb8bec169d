-- http.sse_client lifecycle (SPEC.md, Methods): connect/update results, is_connected,
-- last_event_id, close() (idempotent, close callback once), reconnecting with Last-Event-ID,
-- and releasing the socket through __close and garbage collection.
local lev = require("lev")
local http = require("http")
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

local function all_closed()
  server.wait_until(function()
    return s:stats().open == 0
  end, 10, "the server to see every connection closed")
end

local HOLDING = sse.sse_ops("id: 1\ndata: a\n\n", { { hold = 30 } })

describe("http.sse_client lifecycle", function()
  it("is_connected and last_event_id through a stream's life", function()
    server.run(function()
      local c = sse.client(s, sse.sse_ops("data: a\n\nid: 41\ndata: b\n\nid: 42\ndata: c\n\n"))
      assert.is_false(c:is_connected())
      assert.equals("", c:last_event_id())
      assert.is_true(c:connect())
      assert.is_true(c:is_connected())
      local r = sse.drain(c)
      assert.is_nil(r.err)
      assert.is_false(c:is_connected())
      assert.equals("42", c:last_event_id())
    end)
  end)

  it("update() after a clean end keeps returning false without an error", function()
    server.run(function()
      local c = sse.client(s, sse.sse_ops("data: a\n\n"))
      assert.is_true(c:connect())
      sse.drain(c)
      for _ = 1, 3 do
        sse.assert_clean_end(c)
      end
    end)
  end)

  it("update() before connect() does not connect", function()
    server.run(function()
      local before = s:stats().accepted
      local c = sse.client(s, HOLDING, { recv_timeout = 0.05 })
      local ok, alive = pcall(c.update, c)
      assert.is_true(not ok or alive == false, "update() before connect() returned " .. tostring(alive))
      assert.is_false(c:is_connected())
      assert.equals(before, s:stats().accepted)
    end)
  end)

  it("close(): idempotent, runs close() once, the server sees the connection end", function()
    server.run(function()
      local cb, log = sse.recorder()
      local c = sse.client(s, HOLDING, {}, cb)
      assert.is_true(c:connect())
      server.wait_until(function()
        return s:stats().open == 1
      end, 5, "the connection to be open")
      c:close()
      c:close()
      assert.is_false(c:is_connected())
      sse.assert_clean_end(c)
      c:close()
      assert.equals(1, sse.count(log, "close"))
      all_closed()
    end)
  end)

  it("close() from another task while update() waits", function()
    server.run(function()
      local cb, log = sse.recorder()
      local c = sse.client(s, HOLDING, { recv_timeout = 10 }, cb)
      assert.is_true(c:connect())
      local closer = lev.spawn(function()
        lev.sleep(0.1)
        c:close()
      end)
      local t0 = lev.now()
      local ok
      repeat
        ok = c:update()
      until not ok
      assert.is_true(lev.now() - t0 < 5, "update() did not return promptly after close()")
      closer:join()
      assert.equals(1, sse.count(log, "close"))
      all_closed()
    end)
  end)

  it("connect() again after the end reconnects with Last-Event-ID", function()
    local before = #s:requests()
    local got = {}
    server.run(function()
      local c = sse.client(s, sse.sse_ops("id: e-1\ndata: a\n\nid: e-2\ndata: b\n\n"), {}, {
        message = function(d)
          got[#got + 1] = d
        end,
      })
      assert.is_true(c:connect())
      sse.drain(c)
      assert.equals("e-2", c:last_event_id())
      assert.is_true(c:connect())
      assert.is_true(c:is_connected())
      sse.drain(c)
    end)
    local reqs = s:requests()
    assert.equals(before + 2, #reqs)
    local first, second = reqs[before + 1], reqs[before + 2]
    assert.is_nil(first.raw:lower():find("last%-event%-id"))
    assert.matches("\r\nLast%-Event%-ID: e%-2\r\n", second.raw)
    assert.same({ "a", "b", "a", "b" }, got)
  end)

  it("connect() again after an error reconnects; callbacks run again", function()
    local cb, log = sse.recorder()
    server.run(function()
      -- First a 503, then (same request, same script) again a 503: both attempts report.
      local c = sse.client(s, { { status = 503, reason = "Service Unavailable",
                                  headers = { { "Content-Length", 4 } } }, { send = "busy" } }, {},
                           cb)
      local ok, _, status = c:connect()
      assert.is_nil(ok)
      assert.equals(503, status)
      ok, _, status = c:connect()
      assert.is_nil(ok)
      assert.equals(503, status)
    end)
    assert.same({ "connect", "error", "close", "connect", "error", "close" }, sse.names(log))
  end)

  it("connect() while connected is an error or a no-op, never a second connection", function()
    server.run(function()
      local c = sse.client(s, HOLDING)
      assert.is_true(c:connect())
      local before = s:stats().accepted
      pcall(c.connect, c)
      assert.equals(before, s:stats().accepted)
      c:close()
      all_closed()
    end)
  end)

  it("<close> releases the socket and runs close()", function()
    server.run(function()
      local closes = 0
      local fds_before = server.count_fds()
      do
        local c <close> = sse.client(s, HOLDING, {}, {
          close = function()
            closes = closes + 1
          end,
        })
        assert.is_true(c:connect())
        assert.is_true(server.count_fds() > fds_before)
      end
      assert.equals(1, closes)
      assert.equals(fds_before, server.count_fds())
      all_closed()
    end)
  end)

  it("garbage collection releases the socket without running callbacks", function()
    local called = {}
    server.run(function()
      local fds_before = server.count_fds()
      -- In a function of its own, so that no stack slot keeps the client reachable.
      local function connect_and_drop()
        local c = sse.client(s, HOLDING, {}, {
          close = function()
            called[#called + 1] = "close"
          end,
          error = function()
            called[#called + 1] = "error"
          end,
        })
        assert.is_true(c:connect())
      end
      connect_and_drop()
      server.wait_until(function()
        return s:stats().open == 1
      end, 5, "the connection to be open")
      assert.is_true(server.count_fds() > fds_before)
      collectgarbage("collect")
      collectgarbage("collect")
      assert.equals(fds_before, server.count_fds())
      all_closed()
    end)
    assert.same({}, called)
  end)

  it("an unconnected client is collected without trouble", function()
    server.run(function()
      local fds_before = server.count_fds()
      for _ = 1, 100 do
        http.sse_client(s.url("/"))
      end
      collectgarbage("collect")
      collectgarbage("collect")
      assert.equals(fds_before, server.count_fds())
    end)
  end)

  it("many connect/close cycles leak no descriptor", function()
    server.run(function()
      local c = sse.client(s, sse.sse_ops("data: a\n\n"))
      assert.is_true(c:connect())
      sse.drain(c)
      local fds_before = server.count_fds()
      for _ = 1, 50 do
        assert.is_true(c:connect())
        sse.drain(c)
      end
      for _ = 1, 20 do
        local c2 = sse.client(s, HOLDING)
        assert.is_true(c2:connect())
        c2:close()
      end
      collectgarbage("collect")
      assert.equals(fds_before, server.count_fds())
      all_closed()
    end)
  end)

  it("lev.run returns and leaves no task behind when a client is left unclosed", function()
    local fds_before = server.count_fds()
    local result = server.run(function()
      local c = sse.client(s, HOLDING)
      assert.is_true(c:connect())
      return "returned"
    end)
    assert.equals("returned", result)
    collectgarbage("collect")
    collectgarbage("collect")
    assert.equals(fds_before, server.count_fds())
    server.run(all_closed)
  end)
end)
