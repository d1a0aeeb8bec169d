-- The request http.sse_client sends, as the server saw it (SPEC.md, Options: method, body,
-- headers and the default request headers). The server's {"echo"} op answers one event whose
-- data is the parsed request; its log holds the raw bytes.
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

-- Sends one request with `opts` (path in opts.path) and returns the echoed request:
-- {method, target, version, headers = {{name, value}...}, body, raw}.
local function echo(opts, target_server)
  target_server = target_server or s
  return server.run(function()
    local got
    local c = sse.client(target_server, { { echo = true } }, opts, {
      message = function(data)
        got = data
      end,
    })
    local ok, err = c:connect()
    assert.is_true(ok, err)
    local r = sse.drain(c)
    assert.is_nil(r.err)
    assert.is_table(got, "no echo event")
    local log = target_server:requests()
    got.raw = log[#log].raw
    return got
  end)
end

-- All values of header `name` (case-insensitive), in order.
local function values(req, name)
  local out = {}
  for _, h in ipairs(req.headers) do
    if h[1]:lower() == name:lower() then
      out[#out + 1] = h[2]
    end
  end
  return out
end

local function one(req, name)
  local v = values(req, name)
  assert.equals(1, #v, name .. " sent " .. #v .. " times")
  return v[1]
end

describe("http.sse_client request", function()
  it("GET with the default headers", function()
    local req = echo({ path = "/v1/stream?model=x&q=a%20b" })
    assert.equals("GET", req.method)
    assert.equals("/v1/stream?model=x&q=a%20b", req.target)
    assert.equals("HTTP/1.1", req.version)
    assert.equals("127.0.0.1:" .. s.port, one(req, "Host"))
    assert.equals("text/event-stream", one(req, "Accept"))
    assert.equals("no-cache", one(req, "Cache-Control"))
    assert.equals("identity", one(req, "Accept-Encoding"))
    assert.equals("lev-http/" .. http.version, one(req, "User-Agent"))
    assert.same({}, values(req, "Content-Length"))
    assert.same({}, values(req, "Content-Type"))
    assert.same({}, values(req, "Last-Event-ID"))
    assert.same({}, values(req, "Authorization"))
    assert.equals("", req.body)
    -- The raw bytes: request line first, CRLF line ends, one blank line, nothing after.
    local line = "GET /v1/stream?model=x&q=a%20b HTTP/1.1\r\n"
    assert.equals(line, req.raw:sub(1, #line))
    assert.equals("\r\n\r\n", req.raw:sub(-4))
    assert.is_nil(req.raw:sub(1, -3):find("\r\n\r\n", 1, true))
    assert.is_nil(req.raw:gsub("\r\n", ""):find("[\r\n]"))
  end)

  it("an empty path is sent as /", function()
    local req = server.run(function()
      local got
      local c = http.sse_client("http://127.0.0.1:" .. s.port, {
        headers = { ["X-Script"] = server.script({ { echo = true } }) },
      }, { message = function(d)
        got = d
      end })
      assert.is_true(c:connect())
      sse.drain(c)
      return got
    end)
    assert.equals("/", req.target)
  end)

  it("a fragment is not sent", function()
    local req = echo({ path = "/p?x=1#frag" })
    assert.equals("/p?x=1", req.target)
  end)

  it("POST with a body: Content-Length and Content-Type: application/json", function()
    local body = '{"model":"m","stream":true,"text":"caf\u{E9}"}'
    local req = echo({ method = "POST", body = body })
    assert.equals("POST", req.method)
    assert.equals(tostring(#body), one(req, "Content-Length"))
    assert.equals("application/json", one(req, "Content-Type"))
    assert.equals(body, req.body)
    assert.equals(body, req.raw:sub(-#body))
  end)

  it("a binary body is sent byte for byte", function()
    local body = "\0\1\2\255\r\n\r\nend"
    local req = echo({ method = "PUT", body = body })
    assert.equals(tostring(#body), one(req, "Content-Length"))
    assert.equals(body, req.raw:sub(-#body))
  end)

  it("a body with the default method is sent too (method stays as given)", function()
    local req = echo({ body = "x" })
    assert.equals("1", one(req, "Content-Length"))
    assert.equals("x", req.body)
  end)

  it("an empty body string sends Content-Length: 0", function()
    local req = echo({ method = "POST", body = "" })
    assert.equals("0", one(req, "Content-Length"))
  end)

  it("other methods", function()
    for _, m in ipairs({ "PATCH", "DELETE", "OPTIONS", "X-CUSTOM" }) do
      assert.equals(m, echo({ method = m }).method)
    end
  end)

  it("extra headers, in addition to the defaults; numbers become strings", function()
    local req = echo({ headers = { ["X-Api-Key"] = "k-123", ["X-Count"] = 42,
                                   ["X-Float"] = 1.5 } })
    assert.equals("k-123", one(req, "X-Api-Key"))
    assert.equals("42", one(req, "X-Count"))
    assert.equals("1.5", one(req, "X-Float"))
    assert.equals("text/event-stream", one(req, "Accept"))
  end)

  it("a header matching a default (any case) replaces it", function()
    local req = echo({ method = "POST", body = "a=1", headers = {
      accept = "application/x-ndjson", ["USER-AGENT"] = "my-agent/1",
      ["content-type"] = "application/x-www-form-urlencoded", ["cache-control"] = "max-age=0",
    } })
    assert.equals("application/x-ndjson", one(req, "Accept"))
    assert.equals("my-agent/1", one(req, "User-Agent"))
    assert.equals("application/x-www-form-urlencoded", one(req, "Content-Type"))
    assert.equals("max-age=0", one(req, "Cache-Control"))
  end)

  it("false removes a default header", function()
    local req = echo({ method = "POST", body = "{}", headers = {
      ["User-Agent"] = false, ["accept-encoding"] = false, ["Content-Type"] = false,
      ["Cache-Control"] = false,
    } })
    assert.same({}, values(req, "User-Agent"))
    assert.same({}, values(req, "Accept-Encoding"))
    assert.same({}, values(req, "Content-Type"))
    assert.same({}, values(req, "Cache-Control"))
    assert.equals("2", one(req, "Content-Length"))
    assert.equals("text/event-stream", one(req, "Accept"))
  end)

  it("Host can be overridden", function()
    local req = echo({ headers = { host = "api.example.com" } })
    assert.equals("api.example.com", one(req, "Host"))
  end)

  it("Basic auth from user:pass@ in the URL", function()
    local req = server.run(function()
      local got
      local c = http.sse_client("http://Aladdin:open%20sesame@127.0.0.1:" .. s.port .. "/a", {
        headers = { ["X-Script"] = server.script({ { echo = true } }) },
      }, { message = function(d)
        got = d
      end })
      assert.is_true(c:connect())
      sse.drain(c)
      return got
    end)
    -- base64("Aladdin:open sesame")
    assert.equals("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", one(req, "Authorization"))
    assert.equals("127.0.0.1:" .. s.port, one(req, "Host"))
    assert.equals("/a", req.target)
  end)

  it("an explicit Authorization header replaces the URL credentials", function()
    local req = server.run(function()
      local got
      local c = http.sse_client("http://user:pass@127.0.0.1:" .. s.port .. "/", {
        headers = { ["X-Script"] = server.script({ { echo = true } }),
                    authorization = "Bearer t0k" },
      }, { message = function(d)
        got = d
      end })
      assert.is_true(c:connect())
      sse.drain(c)
      return got
    end)
    assert.equals("Bearer t0k", one(req, "Authorization"))
  end)

  it("IPv6: Host is [::1]:port", function()
    local v6 = server.start({ host = "::1" })
    finally(function()
      v6:stop()
    end)
    local req = echo({}, v6)
    assert.equals("[::1]:" .. v6.port, one(req, "Host"))
  end)

  it("the same request is sent again on a reconnect", function()
    server.run(function()
      local c = sse.client(s, { { echo = true } }, { method = "POST", body = "same" })
      assert.is_true(c:connect())
      sse.drain(c)
      assert.is_true(c:connect())
      sse.drain(c)
    end)
    local log = s:requests()
    local a, b = log[#log - 1], log[#log]
    assert.equals("POST", b.method)
    assert.equals("same", b.body)
    assert.equals(a.raw, b.raw)
  end)
end)
