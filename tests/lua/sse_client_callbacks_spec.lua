-- http.sse_client callbacks (SPEC.md, Callbacks): arguments, order, named and reserved event
-- types, `event: error`, [DONE], and callbacks that yield, raise or close the client.
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

-- Runs one stream to its end; returns the drain result and the log.
local function stream(ops, opts, types, extra_cb)
  return server.run(function()
    local cb, log = sse.recorder(types)
    for k, v in pairs(extra_cb or {}) do
      cb[k] = v(log)
    end
    local c = sse.client(s, ops, opts, cb)
    local ok, err = c:connect()
    assert.is_true(ok, err)
    local r = sse.drain(c)
    c:close()
    return r, log
  end)
end

describe("http.sse_client callbacks", function()
  it("run in order: connect, open, message..., close (clean end, no error, no done)", function()
    local r, log = stream(sse.sse_ops(sse.event_stream({ "one", "two", "three" })))
    assert.is_false(r.ok)
    assert.is_nil(r.err)
    assert.same({ "connect", "open", "message", "message", "message", "close" }, sse.names(log))
    assert.equals(0, log[1].nargs)
    assert.equals(0, log[6].nargs)
    assert.same({ "one", "two", "three" }, sse.datas(log, "message"))
  end)

  it("open(status, headers): lower-case names, repeated headers joined with ', '", function()
    local _, log = stream({
      { status = 200, headers = {
        { "Content-Type", "text/event-stream" }, { "X-Custom-Thing", "A" },
        { "Set-Cookie", "a=1" }, { "set-cookie", "b=2" }, { "SET-COOKIE", "c=3" },
        { "X-Empty", "" } } },
      { send = "data: x\n\n" },
    })
    local open = log[2]
    assert.equals("open", open[1])
    assert.equals(200, open[2])
    local h = open[3]
    assert.equals("text/event-stream", h["content-type"])
    assert.equals("A", h["x-custom-thing"])
    assert.equals("a=1, b=2, c=3", h["set-cookie"])
    assert.equals("", h["x-empty"])
    assert.is_nil(h["Content-Type"])
    for name in pairs(h) do
      assert.equals(name:lower(), name)
    end
  end)

  it("open gets the 2xx status (201) and 204 ends the stream cleanly after open", function()
    local _, log = stream({
      { status = 201, reason = "Created", headers = { { "Content-Type", "text/event-stream" } } },
      { send = "data: x\n\n" },
    })
    assert.equals(201, log[2][2])
    local r, log204 = stream({ { status = 204, reason = "No Content", headers = {} } })
    assert.is_nil(r.err)
    assert.same({ "connect", "open", "close" }, sse.names(log204))
    assert.equals(204, log204[2][2])
    assert.equals("table", type(log204[2][3]))
  end)

  it("message(data, event): event.type, event.data (raw), event.id, event.retry", function()
    local body = "data: plain\n\n" .. "id: 7\ndata: {\"a\":1}\n\n" .. "retry: 1500\ndata: r\n\n"
                 .. "event: message\ndata: m\n\n"
    local _, log = stream(sse.sse_ops(body))
    local msgs = {}
    for _, e in ipairs(log) do
      if e[1] == "message" then
        msgs[#msgs + 1] = e
      end
    end
    assert.equals(4, #msgs)
    local e1, e2, e3, e4 = msgs[1][3], msgs[2][3], msgs[3][3], msgs[4][3]
    assert.same("plain", msgs[1][2])
    assert.equals("message", e1.type)
    assert.equals("plain", e1.data)
    assert.equals("", e1.id)
    assert.is_nil(e1.retry)
    assert.same({ a = 1 }, msgs[2][2])
    assert.equals('{"a":1}', e2.data)
    assert.equals("7", e2.id)
    assert.equals("7", e3.id) -- the last event ID stays in effect
    assert.equals(1500, e3.retry)
    assert.is_nil(e4.retry) -- retry only on the event whose block set it
    assert.equals("m", msgs[4][2])
  end)

  it("named events go to callbacks[type]; a type without a handler goes to message", function()
    local body = "event: delta\ndata: d1\n\n" .. "event: other\ndata: o1\n\n"
                 .. "event: delta\ndata: {\"t\":\"d2\"}\n\n"
    local _, log = stream(sse.sse_ops(body), {}, { "delta" })
    assert.same({ "connect", "open", "delta", "message", "delta", "close" }, sse.names(log))
    assert.equals("d1", log[3][2])
    assert.equals("delta", log[3][3].type)
    assert.equals("o1", log[4][2])
    assert.equals("other", log[4][3].type)
    assert.same({ t = "d2" }, log[5][2])
  end)

  it("reserved names (connect, open, message, close, done) go to message", function()
    local body = ""
    for _, t in ipairs({ "connect", "open", "message", "close", "done" }) do
      body = body .. "event: " .. t .. "\ndata: as-" .. t .. "\n\n"
    end
    local _, log = stream(sse.sse_ops(body))
    assert.same({ "connect", "open", "message", "message", "message", "message", "message",
                  "close" }, sse.names(log))
    assert.same({ "as-connect", "as-open", "as-message", "as-close", "as-done" },
                sse.datas(log, "message"))
    assert.equals("close", log[6][3].type)
    assert.equals("done", log[7][3].type)
    assert.equals(0, log[1].nargs)
    assert.equals(0, log[8].nargs)
  end)

  it("event: error calls error(raw_data, nil, 'event', event) and the stream goes on", function()
    local body = "data: before\n\n" .. 'event: error\ndata: {"error":"overloaded"}\n\n'
                 .. "data: after\n\n"
    local r, log = stream(sse.sse_ops(body))
    assert.is_nil(r.err)
    assert.same({ "connect", "open", "message", "error", "message", "close" }, sse.names(log))
    local e = log[4]
    assert.equals('{"error":"overloaded"}', e[2])
    assert.is_nil(e[3])
    assert.equals("event", e[4])
    assert.equals("error", e[5].type)
    assert.equals('{"error":"overloaded"}', e[5].data)
  end)

  it("[DONE] calls done() instead of message, then the client closes cleanly", function()
    local r, log = server.run(function()
      local cb, log = sse.recorder()
      -- The server would keep the stream open: only [DONE] can end it quickly.
      local c = sse.client(s, sse.sse_ops(sse.event_stream({ "a", "[DONE]", "after" }),
                                          { { hold = 20 } }), {}, cb)
      assert.is_true(c:connect())
      local r = sse.drain(c)
      assert.is_false(c:is_connected())
      sse.assert_clean_end(c)
      return r, log
    end)
    assert.is_nil(r.err)
    assert.same({ "connect", "open", "message", "done", "close" }, sse.names(log))
    assert.equals(0, log[4].nargs)
    assert.same({ "a" }, sse.datas(log, "message"))
    server.run(function()
      server.wait_until(function()
        return s:stats().open == 0
      end, 5, "the server to see the connection closed")
    end)
  end)

  it("data that merely contains [DONE] is a message", function()
    local _, log = stream(sse.sse_ops(sse.event_stream({ "[DONE] ", " [DONE]", "[done]" })))
    assert.same({ "[DONE] ", " [DONE]", "[done]" }, sse.datas(log, "message"))
    assert.equals(0, sse.count(log, "done"))
  end)

  it("callbacks may yield: lev.sleep inside message keeps every event, in order", function()
    local got = {}
    local other_ran = 0
    server.run(function()
      local c = sse.client(s, sse.sse_ops(sse.event_stream({ "1", "2", "3", "4" })), {}, {
        message = function(data)
          lev.sleep(0.02)
          got[#got + 1] = data
        end,
        open = function()
          lev.sleep(0)
        end,
      })
      local t = lev.spawn(function()
        for _ = 1, 3 do
          other_ran = other_ran + 1
          lev.sleep(0.01)
        end
      end)
      assert.is_true(c:connect())
      sse.drain(c)
      t:join()
    end)
    assert.same({ "1", "2", "3", "4" }, got)
    assert.equals(3, other_ran)
  end)

  it("an error in a callback propagates from update(); the next update() goes on", function()
    local got = {}
    local errors = {}
    server.run(function()
      local c = sse.client(s, sse.sse_ops(sse.event_stream({ "a", "boom", "b", "boom", "c" })), {}, {
        message = function(data)
          got[#got + 1] = data
          if data == "boom" then
            error("callback failed on " .. data)
          end
        end,
      })
      assert.is_true(c:connect())
      for _ = 1, 1000 do
        local ok, alive = pcall(c.update, c)
        if not ok then
          errors[#errors + 1] = tostring(alive)
        elseif not alive then
          break
        end
      end
    end)
    assert.same({ "a", "boom", "b", "boom", "c" }, got)
    assert.equals(2, #errors)
    assert.matches("callback failed on boom", errors[1], 1, true)
  end)

  it("an error in open propagates from connect(); update() then delivers the events", function()
    local got = {}
    server.run(function()
      local c = sse.client(s, sse.sse_ops(sse.event_stream({ "x", "y" })), {}, {
        open = function()
          error("open failed")
        end,
        message = function(d)
          got[#got + 1] = d
        end,
      })
      local ok, err = pcall(c.connect, c)
      assert.is_false(ok)
      assert.matches("open failed", tostring(err), 1, true)
      sse.drain(c)
    end)
    assert.same({ "x", "y" }, got)
  end)

  it("client:close() inside a callback: no further events, close() once", function()
    local r, log = server.run(function()
      local c
      local cb, log = sse.recorder()
      local message = cb.message
      cb.message = function(data, event)
        message(data, event)
        if data == "2" then
          c:close()
        end
      end
      c = sse.client(s, sse.sse_ops(sse.event_stream({ "1", "2", "3", "4" }), { { hold = 20 } }),
                     {}, cb)
      assert.is_true(c:connect())
      local r = sse.drain(c)
      assert.is_false(c:is_connected())
      return r, log
    end)
    assert.is_nil(r.err)
    assert.same({ "1", "2" }, sse.datas(log, "message"))
    assert.equals(1, sse.count(log, "close"))
    assert.equals("close", log[#log][1])
  end)

  it("client:close() inside open: no message at all", function()
    local _, log = server.run(function()
      local c
      local cb, log = sse.recorder()
      cb.open = function()
        log[#log + 1] = { "open" }
        c:close()
      end
      c = sse.client(s, sse.sse_ops(sse.event_stream({ "1", "2" })), {}, cb)
      c:connect()
      return sse.drain(c), log
    end)
    assert.same({ "connect", "open", "close" }, sse.names(log))
  end)

  it("json = true decodes objects and arrays only; json = false passes raw strings", function()
    local body = sse.event_stream({ '{"k":[1,2]}', "[1,2,3]", "42", '"str"', "{not json", "" })
    local _, on = stream(sse.sse_ops(body))
    local d = sse.datas(on, "message")
    assert.same({ k = { 1, 2 } }, d[1])
    assert.same({ 1, 2, 3 }, d[2])
    assert.equals("42", d[3])
    assert.equals('"str"', d[4])
    assert.equals("{not json", d[5])
    assert.equals("", d[6])
    local _, off = stream(sse.sse_ops(body), { json = false })
    assert.same({ '{"k":[1,2]}', "[1,2,3]", "42", '"str"', "{not json", "" },
                sse.datas(off, "message"))
  end)

  it("named handlers and error get decoded JSON data too", function()
    local body = 'event: delta\ndata: {"x":1}\n\n'
    local _, log = stream(sse.sse_ops(body), {}, { "delta" })
    assert.same({ x = 1 }, log[3][2])
    assert.equals('{"x":1}', log[3][3].data)
  end)
end)
