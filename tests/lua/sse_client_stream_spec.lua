-- http.sse_client stream semantics over real sockets (SPEC.md, Stream semantics): framing
-- (chunked, Content-Length, close-delimited, HTTP/1.0, 1xx), bytes split anyhow (one byte per
-- write), line ends, BOM, UTF-8 repair, dispatch without waiting, and a long OpenAI stream.
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

local function stream(ops, opts, types)
  return server.run(function()
    local cb, log = sse.recorder(types)
    local c = sse.client(s, ops, opts, cb)
    local ok, err = c:connect()
    assert.is_true(ok, err)
    local r = sse.drain(c)
    c:close()
    return r, log
  end)
end

local EVENTS = "id: 1\nevent: delta\ndata: {\"n\":1}\n\n" .. ": comment\n\n"
               .. "data: line1\ndata: line2\n\n" .. "id: 2\ndata:no-space\n\n"
               .. "data:  two spaces\n\n" .. "data\n\n" .. "data:\n\n" .. "event: x\n\n"

local function check_events(log)
  assert.same({ "connect", "open", "delta", "message", "message", "message", "message",
                "message", "close" }, sse.names(log))
  assert.same({ n = 1 }, log[3][2])
  assert.equals("1", log[3][3].id)
  assert.same({ "line1\nline2", "no-space", " two spaces", "", "" }, sse.datas(log, "message"))
  assert.equals("2", log[5][3].id)
  assert.equals("2", log[8][3].id)
end

describe("http.sse_client stream", function()
  it("close-delimited body", function()
    local r, log = stream(sse.sse_ops(EVENTS), {}, { "delta" })
    assert.is_nil(r.err)
    check_events(log)
  end)

  it("one byte per write, with pauses: events intact", function()
    local r, log = stream({ { sse_head = true }, { drip = EVENTS, delay = 0.002 } }, {},
                          { "delta" })
    assert.is_nil(r.err)
    check_events(log)
  end)

  it("the response head itself arriving one byte per write", function()
    local r, log = stream({ { drip = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
                              delay = 0.001 }, { send = EVENTS } }, {}, { "delta" })
    assert.is_nil(r.err)
    check_events(log)
  end)

  it("chunked body, events split across chunks and chunks split across events", function()
    local ops = { { status = 200, headers = { { "Content-Type", "text/event-stream" },
                                              { "Transfer-Encoding", "chunked" } } } }
    local i = 1
    while i <= #EVENTS do
      local n = (i % 7) + 1
      ops[#ops + 1] = { chunk = EVENTS:sub(i, i + n - 1) }
      i = i + n
    end
    ops[#ops + 1] = { last_chunk = true }
    ops[#ops + 1] = { hold = 20 } -- the end of the chunked body, not the FIN, ends the stream
    local r, log = stream(ops, {}, { "delta" })
    assert.is_nil(r.err)
    check_events(log)
  end)

  it("chunked body with chunk extensions and a trailer", function()
    local r, log = stream({
      { status = 200, headers = { { "Content-Type", "text/event-stream" },
                                  { "Transfer-Encoding", "chunked" } } },
      { send = "9;ext=1\r\ndata: a\n\n\r\n" }, { send = "0\r\nX-Trailer: t\r\n\r\n" },
      { hold = 20 },
    })
    assert.is_nil(r.err)
    assert.same({ "a" }, sse.datas(log, "message"))
  end)

  it("Content-Length body: the end of the body ends the stream", function()
    local r, log = stream({
      { status = 200, headers = { { "Content-Type", "text/event-stream" },
                                  { "Content-Length", #EVENTS } } },
      { send = EVENTS }, { hold = 20 },
    }, {}, { "delta" })
    assert.is_nil(r.err)
    check_events(log)
  end)

  it("HTTP/1.0 response, close-delimited", function()
    local r, log = stream({ { send = "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                                     .. EVENTS } }, {}, { "delta" })
    assert.is_nil(r.err)
    check_events(log)
  end)

  it("1xx interim responses are skipped", function()
    local r, log = stream({
      { send = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" },
      { sse_head = true }, { send = "data: after-1xx\n\n" },
    })
    assert.is_nil(r.err)
    assert.same({ "after-1xx" }, sse.datas(log, "message"))
    assert.equals(1, sse.count(log, "open"))
    assert.equals(200, log[2][2])
  end)

  it("CR, LF and CRLF line ends, including a CRLF split between writes", function()
    local r, log = stream({ { sse_head = true }, { send = "data: a\r\rdata: b\n\ndata: c\r\n\r\n" },
                            { send = "data: d\r" }, { sleep = 0.05 }, { send = "\n\r\n" },
                            { send = "data: e\r" }, { sleep = 0.05 }, { send = "\r" } })
    assert.is_nil(r.err)
    assert.same({ "a", "b", "c", "d", "e" }, sse.datas(log, "message"))
  end)

  it("one leading BOM is stripped, a second one is not", function()
    local r, log = stream({ { sse_head = true }, { hex = "efbbbf" },
                            { send = "data: x\n\n\u{FEFF}data: y\n\n" } })
    assert.is_nil(r.err)
    assert.same({ "x" }, sse.datas(log, "message"))
  end)

  it("invalid UTF-8 becomes U+FFFD", function()
    local r, log = stream({ { sse_head = true }, { send = "data: a" }, { hex = "ff" },
                            { send = "b\n\n" } }, { json = false })
    assert.is_nil(r.err)
    assert.same({ "a\u{FFFD}b" }, sse.datas(log, "message"))
  end)

  it("a multi-byte character split across writes is kept", function()
    local r, log = stream({ { sse_head = true }, { send = "data: caf" }, { hex = "c3" },
                            { sleep = 0.05 }, { hex = "a9" }, { send = "\n\n" } })
    assert.is_nil(r.err)
    assert.same({ "caf\u{E9}" }, sse.datas(log, "message"))
  end)

  it("an unfinished event at the end of the stream is discarded", function()
    local r, log = stream(sse.sse_ops("data: complete\n\ndata: unfinished\n"))
    assert.is_nil(r.err)
    assert.same({ "complete" }, sse.datas(log, "message"))
  end)

  it("id with NUL ignored; retry must be all digits", function()
    local r, log = stream(sse.sse_ops("id: 5\ndata: a\n\nid: x\0y\ndata: b\n\n"
                                      .. "retry: 12a\ndata: c\n\nretry: 300\ndata: d\n\n"))
    assert.is_nil(r.err)
    local evs = {}
    for _, e in ipairs(log) do
      if e[1] == "message" then
        evs[#evs + 1] = e[3]
      end
    end
    assert.equals("5", evs[1].id)
    assert.equals("5", evs[2].id)
    assert.is_nil(evs[3].retry)
    assert.equals(300, evs[4].retry)
  end)

  it("events are dispatched when their blank line arrives, not when the stream ends", function()
    server.run(function()
      local cb, log = sse.recorder()
      local c = sse.client(s, { { sse_head = true }, { send = "data: early\n\n" }, { hold = 30 } },
                           { recv_timeout = 5 }, cb)
      assert.is_true(c:connect())
      local t0 = lev.now()
      while sse.count(log, "message") == 0 do
        assert.is_true(c:update())
        assert.is_true(lev.now() - t0 < 10, "no event")
      end
      assert.is_true(lev.now() - t0 < 4.9, "update() waited for more data")
      assert.is_true(c:is_connected())
      c:close()
    end)
  end)

  it("an event already received with the headers is delivered by the first update()", function()
    server.run(function()
      local cb, log = sse.recorder()
      local c = sse.client(s, { { sse_head = true }, { send = "data: a\n\ndata: b\n\n" },
                                { hold = 30 } }, { recv_timeout = 0.05 }, cb)
      assert.is_true(c:connect())
      server.wait_until(function()
        c:update()
        return sse.count(log, "message") == 2
      end, 5, "both events")
      c:close()
    end)
  end)

  it("1000 OpenAI-shaped events then [DONE], in order", function()
    local got = {}
    local r, log = server.run(function()
      local cb, log = sse.recorder()
      cb.message = function(data)
        got[#got + 1] = data.n
        assert.equals(string.rep("x", 20), data.choices[1].delta.content)
      end
      local c = sse.client(s, { { sse_head = true }, { events = 1000, size = 20, done = true },
                                { hold = 30 } }, {}, cb)
      assert.is_true(c:connect())
      return sse.drain(c), log
    end)
    assert.is_nil(r.err)
    assert.equals(1000, #got)
    for i = 1, 1000 do
      assert.equals(i, got[i])
    end
    assert.same({ "connect", "open", "done", "close" }, sse.names(log))
  end)

  it("a 2 MiB event arriving in 1-byte chunked-encoding chunks", function()
    -- Linear cost: the whole stream (about 13 MB on the wire) must not take minutes.
    local n = 2 * 1024 * 1024
    local ops = { { status = 200, headers = { { "Content-Type", "text/event-stream" },
                                              { "Transfer-Encoding", "chunked" } } },
                  { chunk = "data: " },
                  { ["repeat"] = "1\r\nq\r\n", n = n },
                  { chunk = "\n\n" }, { last_chunk = true } }
    local r, got = server.run(function()
      local got
      local c = sse.client(s, ops, {}, { message = function(d)
        got = d
      end })
      assert.is_true(c:connect())
      return sse.drain(c, 1000000), got
    end, 60)
    assert.is_nil(r.err)
    assert.equals(n, #got)
  end)
end)
