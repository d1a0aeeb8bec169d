-- http.sse_client argument checks (SPEC.md, http.sse_client): every mistake raises a Lua error
-- at once, from the constructor, with a message naming the problem. No connection is made:
-- the URLs point at a port nobody needs to listen on.
local lev = require("lev")
local http = require("http")
local server = require("helpers.server")

local URL = "http://127.0.0.1:9/"

-- Runs `fn` inside lev.run and returns the error it raised (a string), or fails if none.
local function raises(fn)
  local ok, err = server.run(function()
    return pcall(fn)
  end)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function accepts(fn)
  local ok, err = server.run(function()
    return pcall(fn)
  end)
  assert.is_true(ok, tostring(err))
end

describe("http.sse_client arguments", function()
  it("raises outside lev.run()", function()
    local ok, err = pcall(http.sse_client, URL)
    assert.is_false(ok)
    assert.matches("http.sse_client must be used within lev.run()", tostring(err), 1, true)
  end)

  it("accepts nil options and callbacks, and empty tables", function()
    accepts(function()
      http.sse_client(URL)
    end)
    accepts(function()
      http.sse_client(URL, nil, nil)
    end)
    accepts(function()
      http.sse_client(URL, {}, {})
    end)
    accepts(function()
      http.sse_client("https://example.invalid/x?y=1", {}, {})
    end)
  end)

  it("rejects a uri that is not a string", function()
    for _, bad in ipairs({ 42, {}, true }) do
      raises(function()
        http.sse_client(bad)
      end)
    end
    raises(function()
      http.sse_client(nil)
    end)
  end)

  it("rejects options or callbacks that are not tables", function()
    raises(function()
      http.sse_client(URL, "x")
    end)
    raises(function()
      http.sse_client(URL, 5)
    end)
    raises(function()
      http.sse_client(URL, {}, "x")
    end)
    raises(function()
      http.sse_client(URL, {}, function() end)
    end)
  end)

  it("rejects malformed URIs", function()
    for _, bad in ipairs({ "", "not a url", "http://", "http:///path", "127.0.0.1:80/",
                           "http://host:notaport/", "http://host:99999/", "http://ho st/" }) do
      raises(function()
        http.sse_client(bad)
      end)
    end
  end)

  it("rejects schemes other than http and https", function()
    local err = raises(function()
      http.sse_client("ftp://127.0.0.1/x")
    end)
    assert.matches("ftp", err, 1, true)
    raises(function()
      http.sse_client("ws://127.0.0.1/x")
    end)
  end)

  it("rejects an unknown option and names it", function()
    local err = raises(function()
      http.sse_client(URL, { recv_timout = 1 })
    end)
    assert.matches("recv_timout", err, 1, true)
  end)

  it("rejects negative timeouts and names the option", function()
    for _, name in ipairs({ "connect_timeout", "send_timeout", "recv_timeout", "headers_timeout",
                            "idle_timeout" }) do
      local err = raises(function()
        http.sse_client(URL, { [name] = -1 })
      end)
      assert.matches(name, err, 1, true)
    end
  end)

  it("rejects options of the wrong type", function()
    for opt, bad in pairs({ connect_timeout = "10", recv_timeout = {}, method = 42,
                             headers = "x", max_event_size = "big", json = "yes" }) do
      raises(function()
        http.sse_client(URL, { [opt] = bad })
      end)
    end
  end)

  it("accepts every documented option", function()
    accepts(function()
      http.sse_client(URL, {
        method = "POST",
        body = "{}",
        headers = { ["X-A"] = "1", ["X-N"] = 2, ["User-Agent"] = false },
        connect_timeout = 1,
        send_timeout = 1,
        recv_timeout = 0.1,
        headers_timeout = 1,
        idle_timeout = 5,
        json = false,
        max_event_size = 1024,
        tls_no_verify = true,
        tls_cafile = "/nonexistent/ca.pem",
        tls_capath = "/nonexistent",
        tls_certfile = "/nonexistent/c.pem",
        tls_keyfile = "/nonexistent/k.pem",
      })
    end)
  end)

  it("rejects CR, LF or NUL in a header name, a header value or the method", function()
    for _, bad in ipairs({ "a\rb", "a\nb", "a\0b", "a\r\nX-Injected: 1" }) do
      raises(function()
        http.sse_client(URL, { headers = { [bad] = "v" } })
      end)
      raises(function()
        http.sse_client(URL, { headers = { ["X-Ok"] = bad } })
      end)
      raises(function()
        http.sse_client(URL, { method = "GET" .. bad })
      end)
    end
  end)

  it("rejects a method that is not a token", function()
    raises(function()
      http.sse_client(URL, { method = "GET /x" })
    end)
    raises(function()
      http.sse_client(URL, { method = "" })
    end)
  end)

  it("rejects a non-string body", function()
    for _, bad in ipairs({ {}, true, function() end }) do
      local err = raises(function()
        http.sse_client(URL, { method = "POST", body = bad })
      end)
      assert.matches("body", err, 1, true)
    end
  end)

  it("rejects a callback that is not a function", function()
    for _, name in ipairs({ "message", "open", "error", "close", "done", "connect", "delta" }) do
      local err = raises(function()
        http.sse_client(URL, {}, { [name] = 42 })
      end)
      assert.matches(name, err, 1, true)
    end
  end)

  it("makes no connection while constructing", function()
    local s = server.start()
    finally(function()
      s:stop()
    end)
    server.run(function()
      local c = http.sse_client(s.url("/"))
      assert.is_false(c:is_connected())
      assert.equals("", c:last_event_id())
      lev.sleep(0)
      assert.equals(0, s:stats().accepted)
      c:close()
    end)
  end)
end)
