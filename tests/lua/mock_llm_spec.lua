-- mock_llm_spec.lua: the bundled mock LLM server, the examples run against it as
-- subprocesses, and http.sse_client driven in-process against it.
--
-- The mock runs with --delay 0 (pacing only where a test asks for it with "mock_delay").
-- Expected texts are never written here: they come from the mock itself, through its
-- non-streaming answer (fetched with python3's urllib) or from a "mock_reply" the test picks.

local cjson = require("cjson")
local lev = require("lev")
local http = require("http")

local function source_dir()
  local env = os.getenv("LEVHTTP_SOURCE_DIR")
  if env and env ~= "" then return env end
  local here = debug.getinfo(1, "S").source:match("^@(.*)/tests/lua/[^/]*$")
  return here or "."
end
local ROOT = source_dir()
local MOCK = ROOT .. "/examples/mock_llm_server.py"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Starts the mock on port 0; sh prints its own pid and execs python, so that pid is the
-- server's. --exit-with-parent makes it go away even if this process dies first.
local function start_mock()
  local p = assert(io.popen("echo PID $$; exec python3 " .. q(MOCK)
    .. " --port 0 --delay 0 --quiet --exit-with-parent", "r"))
  local pid = tonumber((p:read("l") or ""):match("^PID (%d+)$"))
  local port = tonumber((p:read("l") or ""):match("^PORT (%d+)$"))
  assert(pid and port, "the mock server did not start")
  return {
    pid = pid,
    port = port,
    root = "http://127.0.0.1:" .. port,
    stop = function()
      os.execute("kill " .. pid .. " 2>/dev/null")
      p:close()
    end,
  }
end

-- One HTTP request with python3's http.client (independent of the code under test):
-- returns status, headers (lower-case names), body.
local FETCH = [[
import http.client, json, sys
port, method, path, headers, body = sys.argv[1:6]
c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
c.request(method, path, body=body.encode() if body else None, headers=json.loads(headers))
r = c.getresponse()
data = r.read().decode("utf-8")
print(json.dumps({"status": r.status, "headers": {k.lower(): v for k, v in r.getheaders()},
                  "body": data}))
]]
local function fetch(port, method, path, headers, body)
  local p = assert(io.popen("timeout 60 python3 -c " .. q(FETCH) .. " " .. port .. " " .. method
    .. " " .. q(path) .. " " .. q(cjson.encode(headers or {})) .. " " .. q(body or "")))
  local out = p:read("a")
  p:close()
  local r = cjson.decode(out)
  return r.status, r.headers, r.body
end

local function openai_request(prompt, extra)
  local req = { model = "gpt-4o-mini", messages = { { role = "user", content = prompt } } }
  for k, v in pairs(extra or {}) do req[k] = v end
  return cjson.encode(req)
end

local function anthropic_request(prompt, extra)
  local req = { model = "claude-3-5-haiku-latest", max_tokens = 1024,
                messages = { { role = "user", content = prompt } } }
  for k, v in pairs(extra or {}) do req[k] = v end
  return cjson.encode(req)
end

local ANTHROPIC_HEADERS = { ["x-api-key"] = "k", ["anthropic-version"] = "2023-06-01" }

-- The mock's non-streaming answer to a prompt: text and token count.
local function openai_expected(port, prompt)
  local status, _, body = fetch(port, "POST", "/v1/chat/completions",
    { Authorization = "Bearer k" }, openai_request(prompt))
  assert(status == 200, body)
  local r = cjson.decode(body)
  return r.choices[1].message.content, r.usage.completion_tokens
end

local function anthropic_expected(port, prompt)
  local status, _, body = fetch(port, "POST", "/v1/messages", ANTHROPIC_HEADERS,
    anthropic_request(prompt))
  assert(status == 200, body)
  local r = cjson.decode(body)
  return r.content[1].text, r.usage.output_tokens
end

-- Runs an example as a subprocess with the spec's LUA_CPATH/LUA_PATH (inherited) plus `env`.
local function run_example(script, env, args)
  local errfile = os.tmpname()
  local cmd = { "env" }
  for k, v in pairs(env) do -- `env -u NAME` options must precede the NAME=value ones
    if v == false then cmd[#cmd + 1] = "-u " .. k end
  end
  for k, v in pairs(env) do
    if v ~= false then cmd[#cmd + 1] = k .. "=" .. q(v) end
  end
  cmd[#cmd + 1] = "timeout 60 lua5.4 " .. q(ROOT .. "/examples/" .. script)
  for _, a in ipairs(args or {}) do cmd[#cmd + 1] = q(a) end
  cmd[#cmd + 1] = "2>" .. q(errfile)
  local p = assert(io.popen(table.concat(cmd, " "), "r"))
  local out = p:read("a")
  local _, _, code = p:close()
  local err = read_file(errfile)
  os.remove(errfile)
  return out, err, code
end

-- Drives http.sse_client in-process; `handlers` are extra callbacks (named events). Returns a
-- record of everything that happened, in order, with the loop's clock.
local function stream(url, options, named)
  local rec = { log = {}, deltas = {}, chunks = {}, errors = {}, closes = 0, dones = 0 }
  local function note(what, extra)
    local entry = extra or {}
    entry.what, entry.t = what, lev.now()
    rec.log[#rec.log + 1] = entry
  end
  local callbacks = {
    connect = function() note("connect") end,
    open = function(status, headers) note("open", { status = status, headers = headers }) end,
    message = function(data, event)
      note("message", { data = data, event = event })
      rec.chunks[#rec.chunks + 1] = data
      local choice = type(data) == "table" and type(data.choices) == "table" and data.choices[1]
      local content = choice and choice.delta and choice.delta.content
      if type(content) == "string" and content ~= "" then
        rec.deltas[#rec.deltas + 1] = { text = content, t = lev.now() }
      end
    end,
    done = function() rec.dones = rec.dones + 1; note("done") end,
    error = function(msg, status, kind)
      rec.errors[#rec.errors + 1] = { msg = msg, status = status, kind = kind }
      note("error", { kind = kind })
    end,
    close = function() rec.closes = rec.closes + 1; note("close") end,
  }
  for _, name in ipairs(named or {}) do
    callbacks[name] = function(data, event)
      note(name, { data = data, event = event })
      if name == "content_block_delta" and type(data) == "table" and type(data.delta) == "table" then
        rec.deltas[#rec.deltas + 1] = { text = data.delta.text, t = lev.now() }
      end
    end
  end
  lev.run(function()
    local c = http.sse_client(url, options, callbacks)
    local ok, err, status, kind = c:connect()
    rec.connect = { ok = ok, err = err, status = status, kind = kind }
    if ok then
      local deadline = lev.now() + 60
      while c:update() and c:is_connected() do
        assert(lev.now() < deadline, "the stream did not end within 60 s")
      end
    end
    c:close()
  end)
  return rec
end

local function joined(deltas)
  local parts = {}
  for i, d in ipairs(deltas) do parts[i] = d.text end
  return table.concat(parts)
end

local function whats(log)
  local out = {}
  for i, e in ipairs(log) do out[i] = e.what end
  return out
end

-- The JSON body carried by an "HTTP <status>: <body>" error message.
local function error_body(msg)
  local json = tostring(msg):match("^HTTP %d%d%d[^{]*(%b{})")
  assert(json, "no JSON body in error message: " .. tostring(msg))
  return cjson.decode(json)
end

describe("mock LLM server", function()
  local mock
  setup(function() mock = start_mock() end)
  teardown(function() if mock then mock.stop() end end)

  describe("over plain HTTP (python http.client)", function()
    it("streams OpenAI chunks with chunked transfer encoding and ends with [DONE]", function()
      local status, headers, body = fetch(mock.port, "POST", "/v1/chat/completions",
        { Authorization = "Bearer k" }, openai_request("tell me a joke", { stream = true }))
      assert.are.equal(200, status)
      assert.are.equal("chunked", headers["transfer-encoding"])
      assert.truthy(headers["content-type"]:find("text/event-stream", 1, true))
      local events = {}
      for data in body:gmatch("data: ([^\n]*)\n\n") do events[#events + 1] = data end
      assert.are.equal("[DONE]", events[#events])
      local first, last = cjson.decode(events[1]), cjson.decode(events[#events - 1])
      assert.are.equal("chat.completion.chunk", first.object)
      assert.truthy(first.id:match("^chatcmpl%-"))
      assert.are.equal("assistant", first.choices[1].delta.role)
      assert.are.equal("stop", last.choices[1].finish_reason)
      local text = {}
      for i = 2, #events - 2 do
        local chunk = cjson.decode(events[i])
        assert.are.equal(first.id, chunk.id)
        text[#text + 1] = chunk.choices[1].delta.content
      end
      assert.are.equal(openai_expected(mock.port, "tell me a joke"), table.concat(text))
    end)

    it("answers 429 with Retry-After and the provider's JSON error", function()
      local status, headers, body = fetch(mock.port, "POST", "/v1/chat/completions",
        { Authorization = "Bearer rate-limited" }, openai_request("hi", { stream = true }))
      assert.are.equal(429, status)
      assert.are.equal("2", headers["retry-after"])
      assert.are.equal("rate_limit_exceeded", cjson.decode(body).error.code)
      status, headers, body = fetch(mock.port, "POST", "/v1/messages",
        { ["x-api-key"] = "rate-limited", ["anthropic-version"] = "2023-06-01" },
        anthropic_request("hi", { stream = true }))
      assert.are.equal(429, status)
      assert.are.equal("2", headers["retry-after"])
      assert.are.equal("rate_limit_error", cjson.decode(body).error.type)
    end)

    it("answers 404 JSON on a wrong path and 400 without anthropic-version", function()
      local status, headers, body = fetch(mock.port, "POST", "/v1/nothing", {}, "{}")
      assert.are.equal(404, status)
      assert.are.equal("application/json", headers["content-type"])
      assert.truthy(cjson.decode(body).error.message:find("/v1/nothing", 1, true))
      status, _, body = fetch(mock.port, "POST", "/v1/messages", { ["x-api-key"] = "k" },
        anthropic_request("hi"))
      assert.are.equal(400, status)
      assert.are.equal("invalid_request_error", cjson.decode(body).error.type)
    end)
  end)

  describe("http.sse_client in-process", function()
    it("receives an OpenAI reply token by token, then done and close", function()
      local expected, ntokens = openai_expected(mock.port, "Hello there")
      local rec = stream(mock.root .. "/v1/chat/completions", {
        method = "POST", headers = { Authorization = "Bearer k" },
        body = openai_request("Hello there", { stream = true }),
      })
      assert.is_true(rec.connect.ok, rec.connect.err)
      assert.are.same({}, rec.errors)
      assert.are.equal(expected, joined(rec.deltas))
      assert.are.equal(ntokens, #rec.deltas)
      assert.is_true(#rec.deltas > 5)
      assert.are.equal(1, rec.dones)
      assert.are.equal(1, rec.closes)
      local w = whats(rec.log)
      assert.are.same({ "connect", "open" }, { w[1], w[2] })
      assert.are.same({ "done", "close" }, { w[#w - 1], w[#w] })
      assert.are.equal(200, rec.log[2].status)
      assert.are.equal("assistant", rec.chunks[1].choices[1].delta.role)
      assert.are.equal("stop", rec.chunks[#rec.chunks].choices[1].finish_reason)
    end)

    it("delivers each token when it is sent, not at the end of the stream", function()
      local rec = stream(mock.root .. "/v1/chat/completions", {
        method = "POST", headers = { Authorization = "Bearer k" },
        body = openai_request("x", { stream = true, mock_delay = 0.05,
                                     mock_reply = "one two three four five six" }),
      })
      assert.are.same({}, rec.errors)
      assert.are.equal("one two three four five six", joined(rec.deltas))
      assert.are.equal(6, #rec.deltas)
      -- 6 tokens 50 ms apart: the first and the last arrive >= 250 ms apart when each is
      -- dispatched on arrival (all at once, if the client waited for the end).
      assert.is_true(rec.deltas[6].t - rec.deltas[1].t >= 0.2,
        string.format("spread %.3f s", rec.deltas[6].t - rec.deltas[1].t))
    end)

    it("keeps multi-byte UTF-8 and escaped newlines intact", function()
      local reply = "Caf\u{e9} \u{65e5}\u{672c}\u{8a9e} \u{1F680}\nline two \"quoted\"\n"
      local rec = stream(mock.root .. "/v1/chat/completions", {
        method = "POST", headers = { Authorization = "Bearer k" },
        body = openai_request("x", { stream = true, mock_reply = reply }),
      })
      assert.are.same({}, rec.errors)
      assert.are.equal(reply, joined(rec.deltas))
    end)

    it("dispatches the Anthropic named events in order", function()
      local expected, ntokens = anthropic_expected(mock.port, "write a haiku")
      local names = { "message_start", "content_block_start", "ping", "content_block_delta",
                      "content_block_stop", "message_delta", "message_stop" }
      local rec = stream(mock.root .. "/v1/messages", {
        method = "POST", headers = ANTHROPIC_HEADERS,
        body = anthropic_request("write a haiku", { stream = true }),
      }, names)
      assert.is_true(rec.connect.ok, rec.connect.err)
      assert.are.same({}, rec.errors)
      local want = { "connect", "open", "message_start", "content_block_start", "ping" }
      for _ = 1, ntokens do want[#want + 1] = "content_block_delta" end
      for _, n in ipairs({ "content_block_stop", "message_delta", "message_stop", "close" }) do
        want[#want + 1] = n
      end
      assert.are.same(want, whats(rec.log))
      assert.are.equal(expected, joined(rec.deltas))
      assert.are.equal("content_block_delta", rec.log[6].event.type)
      assert.are.equal("end_turn", rec.log[#rec.log - 2].data.delta.stop_reason)
      assert.are.equal(ntokens, rec.log[#rec.log - 2].data.usage.output_tokens)
    end)

    it("reports 401 with kind http, the status and the JSON body (OpenAI)", function()
      for _, headers in ipairs({ { Authorization = "Bearer bad-key" }, {} }) do
        local rec = stream(mock.root .. "/v1/chat/completions", {
          method = "POST", headers = headers, body = openai_request("hi", { stream = true }),
        })
        assert.is_nil(rec.connect.ok)
        assert.are.equal(401, rec.connect.status)
        assert.are.equal("http", rec.connect.kind)
        assert.are.equal(1, #rec.errors)
        assert.are.equal(401, rec.errors[1].status)
        assert.are.equal("http", rec.errors[1].kind)
        local err = error_body(rec.errors[1].msg).error
        assert.are.equal("invalid_request_error", err.type)
        assert.truthy(err.message:find("API key", 1, true))
        assert.are.equal(0, #rec.deltas)
      end
    end)

    it("reports 401 for a bad x-api-key (Anthropic)", function()
      local rec = stream(mock.root .. "/v1/messages", {
        method = "POST", headers = { ["x-api-key"] = "bad-key", ["anthropic-version"] = "2023-06-01" },
        body = anthropic_request("hi", { stream = true }),
      })
      assert.are.equal(401, rec.errors[1].status)
      assert.are.equal("http", rec.errors[1].kind)
      assert.are.equal("authentication_error", error_body(rec.errors[1].msg).error.type)
    end)

    it("reports 429 with kind http, the status and the JSON body", function()
      local rec = stream(mock.root .. "/v1/chat/completions", {
        method = "POST", headers = { Authorization = "Bearer rate-limited" },
        body = openai_request("hi", { stream = true }),
      })
      assert.are.equal(429, rec.connect.status)
      assert.are.equal("http", rec.connect.kind)
      assert.are.equal(1, #rec.errors)
      assert.are.equal(429, rec.errors[1].status)
      assert.are.equal("http", rec.errors[1].kind)
      assert.are.equal("rate_limit_exceeded", error_body(rec.errors[1].msg).error.code)
    end)

    it("reports a mid-stream error event (kind event) after the tokens before it", function()
      local rec = stream(mock.root .. "/v1/chat/completions", {
        method = "POST", headers = { Authorization = "Bearer k" },
        body = openai_request("x", { stream = true, mock_error_after = 3,
                                     mock_reply = "alpha beta gamma delta epsilon" }),
      })
      assert.are.equal("alpha beta gamma", joined(rec.deltas))
      assert.are.equal(1, #rec.errors)
      assert.are.equal("event", rec.errors[1].kind)
      assert.is_nil(rec.errors[1].status)
      assert.are.equal("overloaded_error", cjson.decode(rec.errors[1].msg).error.type)
      assert.are.equal(0, rec.dones)
      assert.are.equal(1, rec.closes)
    end)

    it("reports a dropped connection (kind closed) after the tokens before it", function()
      local rec = stream(mock.root .. "/v1/messages", {
        method = "POST", headers = ANTHROPIC_HEADERS,
        body = anthropic_request("x", { stream = true, mock_disconnect_after = 2,
                                        mock_reply = "alpha beta gamma delta" }),
      }, { "content_block_delta" })
      assert.are.equal("alpha beta", joined(rec.deltas))
      assert.are.equal(1, #rec.errors)
      assert.are.equal("closed", rec.errors[1].kind)
      local w = whats(rec.log)
      assert.are.same({ "error", "close" }, { w[#w - 1], w[#w] })
      assert.are.equal(1, rec.closes)
    end)
  end)

  describe("examples", function()
    it("openai_chat.lua prints the reply and a newline, exit 0", function()
      local prompt = "What is a server-sent event stream?"
      local expected = openai_expected(mock.port, prompt)
      local out, err, code = run_example("openai_chat.lua",
        { OPENAI_BASE_URL = mock.root .. "/v1", OPENAI_API_KEY = "k" }, { prompt })
      assert.are.equal(0, code, err)
      assert.are.equal(expected .. "\n", out)
      -- MOCK_URL is the default when OPENAI_BASE_URL is unset.
      out, err, code = run_example("openai_chat.lua",
        { OPENAI_BASE_URL = false, OPENAI_API_KEY = false, MOCK_URL = mock.root }, { prompt })
      assert.are.equal(0, code, err)
      assert.are.equal(expected .. "\n", out)
    end)

    it("openai_chat.lua reports 401 and 429 on stderr with exit 1", function()
      for key, status in pairs({ ["bad-key"] = 401, ["rate-limited"] = 429 }) do
        local out, err, code = run_example("openai_chat.lua",
          { OPENAI_BASE_URL = mock.root .. "/v1", OPENAI_API_KEY = key }, { "hi" })
        assert.are.equal(1, code)
        assert.are.equal("", out)
        assert.truthy(err:find("kind=http, status=" .. status, 1, true), err)
        assert.truthy(err:find('"error":', 1, true), err)
      end
    end)

    it("openai_chat.lua reports a refused connection with exit 1", function()
      local out, err, code = run_example("openai_chat.lua",
        { OPENAI_BASE_URL = "http://127.0.0.1:1/v1", OPENAI_API_KEY = "k" }, { "hi" })
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.truthy(err:find("kind=connect", 1, true), err)
    end)

    it("anthropic_messages.lua prints the reply and a newline, exit 0", function()
      local prompt = "Tell me about Lua coroutines"
      local expected = anthropic_expected(mock.port, prompt)
      local out, err, code = run_example("anthropic_messages.lua",
        { ANTHROPIC_BASE_URL = mock.root, ANTHROPIC_API_KEY = "k" }, { prompt })
      assert.are.equal(0, code, err)
      assert.are.equal(expected .. "\n", out)
      out, err, code = run_example("anthropic_messages.lua",
        { ANTHROPIC_BASE_URL = mock.root, ANTHROPIC_API_KEY = "bad-key" }, { prompt })
      assert.are.equal(1, code)
      assert.truthy(err:find("kind=http, status=401", 1, true), err)
      assert.truthy(err:find("authentication_error", 1, true), err)
    end)

    it("sse_tail.lua prints every event, JSON re-encoded or raw with --no-json", function()
      local prompt = "hello"
      local expected = anthropic_expected(mock.port, prompt)
      local args = { mock.root .. "/v1/messages", "--data", anthropic_request(prompt, { stream = true }),
                     "--header", "x-api-key: k", "-H", "anthropic-version: 2023-06-01" }
      local function parse(out)
        local events = {}
        for block in out:gmatch("(.-)\n\n") do
          local ev = { data = {} }
          for line in (block .. "\n"):gmatch("(.-)\n") do
            local field, value = line:match("^(%a+): (.*)$")
            if field == "data" then ev.data[#ev.data + 1] = value else ev[field] = value end
          end
          ev.data = table.concat(ev.data, "\n")
          events[#events + 1] = ev
        end
        return events
      end
      for _, raw in ipairs({ false, true }) do
        local a = { table.unpack(args) }
        if raw then a[#a + 1] = "--no-json" end
        local out, err, code = run_example("sse_tail.lua", {}, a)
        assert.are.equal(0, code, err)
        local events = parse(out)
        assert.are.equal("message_start", events[1].event)
        assert.are.equal("ping", events[3].event)
        assert.are.equal("message_stop", events[#events].event)
        local text = {}
        for _, ev in ipairs(events) do
          local data = cjson.decode(ev.data)
          assert.are.equal(ev.event, data.type)
          if ev.event == "content_block_delta" then
            text[#text + 1] = data.delta.text
            -- raw: the server's key order; decoded: keys sorted
            local first_key = ev.data:match('^{"(%w+)"')
            assert.are.equal(raw and "type" or "delta", first_key)
          end
        end
        assert.are.equal(expected, table.concat(text))
      end
    end)

    it("sse_tail.lua prints [DONE] as the last event of an OpenAI stream", function()
      local out, err, code = run_example("sse_tail.lua", {}, {
        mock.root .. "/v1/chat/completions", "-H", "Authorization: Bearer k",
        "-d", openai_request("hi", { stream = true }) })
      assert.are.equal(0, code, err)
      assert.truthy(out:match("data: %[DONE%]\n\n$"), out)
      assert.truthy(err:find("HTTP 200", 1, true), err)
    end)
  end)
end)
