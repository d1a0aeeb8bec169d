-- http.sse_client failures (SPEC.md: error(msg, status, kind), non-2xx, Content-Type, stream
-- semantics "a connection that breaks in the middle ..."). Each case asserts the kind and the
-- status exactly, the message by substring, and the callback order.
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

-- connect() on a script expected to fail during connect(); returns the results and the log.
local function failing_connect(ops, opts, url)
  return server.run(function()
    local cb, log = sse.recorder()
    local c
    if url then
      c = require("http").sse_client(url, opts, cb)
    else
      c = sse.client(s, ops, opts, cb)
    end
    local ok, err, status, kind = c:connect()
    -- Every later call reports the same end.
    local u = table.pack(c:update())
    local u2 = table.pack(c:update())
    assert.is_false(c:is_connected())
    c:close()
    return { ok = ok, err = err, status = status, kind = kind, update = u, update2 = u2 }, log
  end)
end

-- A stream that connects fine and fails later; returns the drain result and the log.
local function failing_stream(ops, opts)
  return server.run(function()
    local cb, log = sse.recorder()
    local c = sse.client(s, ops, opts, cb)
    assert.is_true(c:connect())
    local r = sse.drain(c)
    local again = table.pack(c:update())
    assert.same({ n = 4, false, r.err, r.status, r.kind }, again)
    c:close()
    return r, log
  end)
end

local function http_error(status, reason, body, ctype)
  return {
    { status = status, reason = reason,
      headers = { { "Content-Type", ctype or "application/json" },
                  { "Content-Length", #body } } },
    { send = body },
  }
end

describe("http.sse_client errors", function()
  it("401 with a JSON body: nil, 'HTTP 401: <body>', 401, 'http'; error then close", function()
    local body = '{"error":{"message":"invalid api key","type":"auth"}}'
    local r, log = failing_connect(http_error(401, "Unauthorized", body))
    assert.is_nil(r.ok)
    assert.equals(401, r.status)
    assert.equals("http", r.kind)
    assert.matches("HTTP 401", r.err, 1, true)
    assert.matches(body, r.err, 1, true)
    assert.same({ "connect", "error", "close" }, sse.names(log))
    assert.equals(r.err, log[2][2])
    assert.equals(401, log[2][3])
    assert.equals("http", log[2][4])
    assert.same({ n = 4, false, r.err, 401, "http" }, r.update)
    assert.same(r.update, r.update2)
  end)

  it("429 with a close-delimited body", function()
    local r, log = failing_connect({
      { status = 429, reason = "Too Many Requests", headers = { { "Content-Type", "text/plain" } } },
      { send = "slow down" },
    })
    assert.is_nil(r.ok)
    assert.equals(429, r.status)
    assert.equals("http", r.kind)
    assert.matches("HTTP 429", r.err, 1, true)
    assert.matches("slow down", r.err, 1, true)
    assert.same({ "connect", "error", "close" }, sse.names(log))
  end)

  it("500 with a chunked body", function()
    local r = failing_connect({
      { status = 500, reason = "Internal Server Error",
        headers = { { "Transfer-Encoding", "chunked" }, { "Content-Type", "text/plain" } } },
      { chunk = "boom " }, { chunk = "again" }, { last_chunk = true },
    })
    assert.equals(500, r.status)
    assert.equals("http", r.kind)
    assert.matches("boom again", r.err, 1, true)
  end)

  it("keeps at most 64 KiB of an error body", function()
    local r = failing_connect({
      { status = 400, reason = "Bad Request", headers = { { "Content-Type", "text/plain" } } },
      { ["repeat"] = "e", n = 1 << 20 },
    })
    assert.equals(400, r.status)
    assert.equals("http", r.kind)
    assert.matches("HTTP 400", r.err, 1, true)
    assert.is_true(#r.err <= 64 * 1024 + 200, "message of " .. #r.err .. " bytes")
    assert.is_true(#r.err >= 1024, "message carries the body")
  end)

  it("3xx is not followed: kind 'http' with the status", function()
    local r = failing_connect({
      { status = 302, reason = "Found",
        headers = { { "Location", "/elsewhere" }, { "Content-Length", 0 } } },
    })
    assert.equals(302, r.status)
    assert.equals("http", r.kind)
    assert.matches("302", r.err, 1, true)
  end)

  it("a 2xx text/html response is a 'content_type' error", function()
    local r, log = failing_connect({
      { status = 200, headers = { { "Content-Type", "text/html" } } }, { send = "<html>" },
    })
    assert.is_nil(r.ok)
    assert.is_nil(r.status)
    assert.equals("content_type", r.kind)
    assert.same({ "connect", "error", "close" }, sse.names(log))
  end)

  for _, ctype in ipairs({ "application/json", "text/plain", "text/event-streamx",
                           "application/text/event-stream" }) do
    it("Content-Type " .. ctype .. " is a 'content_type' error", function()
      local r = failing_connect({
        { status = 200, headers = { { "Content-Type", ctype } } }, { send = "data: x\n\n" },
      })
      assert.equals("content_type", r.kind)
    end)
  end

  for _, headers in ipairs({
    { { "Content-Type", "text/event-stream; charset=utf-8" } },
    { { "Content-Type", "TEXT/EVENT-STREAM" } },
    { { "Content-Type", "Text/Event-Stream ; charset=UTF-8" } },
    {},
  }) do
    local label = headers[1] and headers[1][2] or "(absent)"
    it("Content-Type " .. label .. " is accepted", function()
      local r, log = server.run(function()
        local cb, log = sse.recorder()
        local c = sse.client(s, { { status = 200, headers = headers }, { send = "data: ok\n\n" } },
                             {}, cb)
        assert.is_true(c:connect())
        return sse.drain(c), log
      end)
      assert.is_nil(r.err)
      assert.same({ "ok" }, sse.datas(log, "message"))
      assert.same({ "connect", "open", "message", "close" }, sse.names(log))
    end)
  end

  it("a refused port: nil, err, nil, 'connect'; error only (connect never ran)", function()
    local refused = server.start({ refuse = true })
    finally(function()
      refused:stop()
    end)
    local r, log = failing_connect(nil, {}, refused.url("/"))
    assert.is_nil(r.ok)
    assert.is_nil(r.status)
    assert.equals("connect", r.kind)
    assert.matches("connect", r.err, 1, true)
    assert.same({ "error" }, sse.names(log))
    assert.equals("connect", log[1][4])
  end)

  it("a name under .invalid: kind 'dns', message names the host", function()
    local r, log = failing_connect(nil, {}, "http://no-such-host.invalid/")
    assert.is_nil(r.ok)
    assert.is_nil(r.status)
    assert.equals("dns", r.kind)
    assert.matches(".invalid", r.err, 1, true)
    assert.same({ "error" }, sse.names(log))
  end)

  it("https:// to a plain-HTTP server: kind 'tls' (connect ran, so close runs)", function()
    local url = "https://127.0.0.1:" .. s.port .. "/"
    local r, log = failing_connect(nil, { tls_no_verify = true }, url)
    assert.is_nil(r.ok)
    assert.is_nil(r.status)
    assert.equals("tls", r.kind)
    assert.equals(1, sse.count(log, "error"))
    assert.equals(sse.count(log, "connect"), sse.count(log, "close"))
  end)

  it("a TLS handshake that gets no answer is bounded by connect_timeout", function()
    local lev = require("lev")
    local silent = server.start({ tls_hello = "hold" })
    finally(function()
      silent:stop()
    end)
    local t0
    local r = server.run(function()
      t0 = lev.now()
      local c = require("http").sse_client("https://127.0.0.1:" .. silent.port .. "/",
                                           { connect_timeout = 0.5 })
      local r = table.pack(c:connect())
      r.dt = lev.now() - t0
      return r
    end)
    assert.is_nil(r[1])
    assert.equals("timeout", r[4])
    assert.is_true(r.dt >= 0.45 and r.dt < 2.5, "after " .. r.dt .. " s")
  end)

  it("a reset mid-stream: events before it delivered exactly once, then 'closed'", function()
    local r, log = failing_stream({
      { sse_head = true }, { send = sse.event_stream({ "a", "b", "c" }) },
      { send = "data: unfinished" }, { sleep = 0.05 }, { rst = true },
    })
    assert.is_false(r.ok)
    assert.equals("closed", r.kind)
    assert.is_nil(r.status)
    assert.same({ "a", "b", "c" }, sse.datas(log, "message"))
    assert.same({ "connect", "open", "message", "message", "message", "error", "close" },
                sse.names(log))
  end)

  it("a Content-Length body cut short: 'closed'", function()
    local r, log = failing_stream({
      { status = 200, headers = { { "Content-Type", "text/event-stream" },
                                  { "Content-Length", 1000 } } },
      { send = "data: a\n\n" },
      { close = true },
    })
    assert.equals("closed", r.kind)
    assert.same({ "a" }, sse.datas(log, "message"))
    assert.equals(1, sse.count(log, "close"))
  end)

  it("a chunked body cut short: 'closed'", function()
    local r, log = failing_stream({
      { status = 200, headers = { { "Content-Type", "text/event-stream" },
                                  { "Transfer-Encoding", "chunked" } } },
      { chunk = "data: a\n\n" },
      { send = "20\r\ndata: b" },
      { close = true },
    })
    assert.equals("closed", r.kind)
    assert.same({ "a" }, sse.datas(log, "message"))
  end)

  it("an invalid chunk size: 'protocol'", function()
    local r, log = failing_stream({
      { status = 200, headers = { { "Content-Type", "text/event-stream" },
                                  { "Transfer-Encoding", "chunked" } } },
      { chunk = "data: a\n\n" },
      { send = "zz\r\ndata: b\n\n\r\n" },
      { hold = 10 },
    })
    assert.equals("protocol", r.kind)
    assert.is_nil(r.status)
    assert.same({ "a" }, sse.datas(log, "message"))
    assert.same("close", sse.names(log)[#log])
  end)

  it("a garbage status line: 'protocol'", function()
    local r = failing_connect({ { send = "HTTP/1.1 abc nonsense\r\n\r\n" }, { hold = 10 } })
    assert.equals("protocol", r.kind)
  end)

  it("a line longer than max_event_size: 'too_large' and the stream ends", function()
    local r, log = failing_stream({
      { sse_head = true }, { send = "data: small\n\n" },
      { send = "data: " }, { ["repeat"] = "x", n = 1 << 20 }, { hold = 10 },
    }, { max_event_size = 4096 })
    assert.equals("too_large", r.kind)
    assert.is_nil(r.status)
    assert.same({ "small" }, sse.datas(log, "message"))
  end)

  it("an event (many short lines) larger than max_event_size: 'too_large'", function()
    local r = failing_stream({
      { sse_head = true }, { ["repeat"] = "data: 0123456789\n", n = 2000 }, { hold = 10 },
    }, { max_event_size = 4096 })
    assert.equals("too_large", r.kind)
  end)

  it("1 MiB of response headers: 'too_large'", function()
    local r = failing_connect({
      { send = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Big: " },
      { ["repeat"] = "b", n = 1 << 20 }, { send = "\r\n\r\n" }, { hold = 10 },
    })
    assert.equals("too_large", r.kind)
    assert.is_nil(r.status)
  end)

  it("more than 100 header fields: 'too_large'", function()
    local r = failing_connect({
      { send = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" },
      { ["repeat"] = "X-H: v\r\n", n = 150 }, { send = "\r\n" }, { hold = 10 },
    })
    assert.equals("too_large", r.kind)
  end)

  it("100 header fields are fine", function()
    local r = server.run(function()
      local c = sse.client(s, {
        { send = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" },
        { ["repeat"] = "X-H: v\r\n", n = 99 }, { send = "\r\ndata: ok\n\n" },
      })
      assert.is_true(c:connect())
      return sse.drain(c)
    end)
    assert.is_nil(r.err)
  end)

  it("the error callback runs, with the same values, before connect() returns", function()
    local seen
    server.run(function()
      local c = sse.client(s, http_error(403, "Forbidden", "nope"), {}, {
        error = function(msg, status, kind)
          seen = { msg, status, kind }
        end,
      })
      local ok, err, status, kind = c:connect()
      assert.is_nil(ok)
      assert.same({ err, status, kind }, seen)
    end)
    assert.equals(403, seen[2])
    assert.equals("http", seen[3])
    assert.matches("nope", seen[1], 1, true)
  end)

  it("a server that closes before answering: 'closed' (or 'protocol'), never success", function()
    local r = failing_connect({ { close = true } })
    assert.is_nil(r.ok)
    assert.is_true(r.kind == "closed" or r.kind == "protocol", tostring(r.kind))
  end)

  it("an error callback that raises still leaves the client closed", function()
    local closes = 0
    local ok, err = server.run(function()
      local c = sse.client(s, http_error(401, "Unauthorized", "x"), {}, {
        error = function()
          error("from the error callback")
        end,
        close = function()
          closes = closes + 1
        end,
      })
      local ok, err = pcall(c.connect, c)
      assert.is_false(c:is_connected())
      c:close()
      return ok, err
    end)
    assert.is_false(ok)
    assert.matches("from the error callback", tostring(err), 1, true)
    assert.equals(1, closes)
  end)
end)
