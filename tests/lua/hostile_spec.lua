-- hostile_spec.lua: http.sse_client against servers that break HTTP, SSE and TLS on purpose
-- (tests/servers/hostile_server.py picks the misbehaviour from the path /scenario/<name>; the
-- TLS rows use tests/servers/tls_server.py). One table row per scenario; every row asserts:
--   * the outcome exactly: the error kind (nil for a clean end) and status, a message fragment;
--   * the events delivered before it: each exactly once, in order, all before `error`;
--   * the callback order: connect, [open], events..., [error], close (close exactly once);
--   * how long it took: within [0.9x, 2x] of the timeout that should end it, or, for a
--     failure that must be immediate, under 1 s while every timeout is 5 s;
--   * that the client's socket is released (count of /proc/self/fd after close and two full
--     garbage collections equals the count before).
local lev = require("lev")
local http = require("http")
local helpers = require("helpers.server")

local source_dir = os.getenv("LEVHTTP_SOURCE_DIR") or "."
local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Servers started here (tests/servers/*.py printing `PORT <n> PID <pid>`), stopped at the end.
local servers = {}
local function start(script, args)
  local s = helpers.start_script(script, args)
  servers[#servers + 1] = s
  return s
end

local function range(first, last)
  local out = {}
  for i = first, last do out[#out + 1] = "event " .. i end
  return out
end

local KiB, MiB = 1024, 1024 * 1024
local BIG_BODY = string.rep("b", 32 * MiB) -- one copy shared by the POST rows

-- Every timeout is 5 s unless a row sets a small one: a failure that must be immediate then
-- shows up as a fast failure, and a client that hangs fails the row at 5 s instead of hanging.
local BASE = { connect_timeout = 5, send_timeout = 5, headers_timeout = 5, idle_timeout = 5 }

-- Row fields:
--   name     the scenario (`path` overrides it: query parameters); label: the test's name
--            when a scenario is used twice
--   opts     client options over BASE
--   kind     the expected error kind (nil: a clean end); status: the expected status
--   msg      a plain substring of the error message
--   events   the data strings expected, in order; done: `done` runs after them
--   open     `open` must run (default: when events are expected or kind is nil)
--   connect  false: the `connect` callback must not run (nor `close`)
--   timeout  the timeout that must end it: elapsed within [0.9x, 2x]; else max (default 1 s)
--   url      a function of the hostile server; tls: a tls_server.py mode
--   check    extra assertions on the record
local ROWS = {
  -- The response head: size and count caps, interim responses.
  { name = "endless_header_line", kind = "too_large", msg = "64 KiB" },
  { name = "endless_status_line", kind = "too_large", msg = "64 KiB" },
  { name = "many_headers", kind = "too_large", msg = "header fields" },
  { name = "endless_continue", kind = "protocol", msg = "interim" },
  { name = "ten_continues", events = range(1, 2) },
  -- Content-Length: every form that is not one plain decimal number is refused.
  { name = "cl_and_chunked", kind = "protocol", msg = "Content-Length" },
  { name = "cl_duplicate", kind = "protocol", msg = "Content-Length" },
  { name = "cl_conflicting", kind = "protocol", msg = "Content-Length" },
  { name = "cl_negative", kind = "protocol", msg = "Content-Length" },
  { name = "cl_plus", kind = "protocol", msg = "Content-Length" },
  { name = "cl_2_64", kind = "protocol", msg = "overflow" },
  { name = "cl_hex", kind = "protocol", msg = "Content-Length" },
  -- Chunked framing: the events of the good chunk come first, then the error.
  { name = "chunk_size_overflow", kind = "protocol", msg = "overflow", events = range(1, 2) },
  { name = "chunk_size_negative", kind = "protocol", msg = "chunk size", events = range(1, 2) },
  -- Chunk data not followed by CRLF: its data is already delivered, then the framing breaks.
  { name = "chunk_missing_crlf", kind = "protocol", events = range(1, 1) },
  { name = "chunk_truncated", kind = "closed", events = range(1, 3) },
  { name = "chunk_extension_1mib", kind = "too_large", msg = "extension", events = range(1, 2) },
  { name = "endless_trailer", kind = "too_large", msg = "trailer", events = range(1, 2) },
  -- Header syntax (llhttp strict mode, plus the reader's own checks).
  { name = "bare_cr_in_header", kind = "protocol" },
  { name = "nul_in_header", kind = "protocol" },
  { name = "obs_fold", kind = "protocol", msg = "folding" },
  { name = "space_before_colon", kind = "protocol" },
  { name = "garbage_status_line", kind = "protocol" },
  { name = "status_1000", kind = "protocol" },
  { name = "http09_reply", kind = "protocol" },
  { name = "empty_reply", kind = "closed", msg = "head" },
  { name = "head_cut_short", kind = "closed", msg = "head" },
  -- Body framing: truncation is reported, bytes after the body are ignored and do not keep
  -- the connection open (the server holds it open: the client ends it itself, at once).
  { name = "body_shorter_than_length", kind = "closed", msg = "end of the body",
    events = range(1, 2) },
  { name = "bytes_after_body", events = range(1, 2) },
  { name = "bytes_after_last_chunk", events = range(1, 2) },
  -- Head boundaries and versions.
  { name = "n_headers", label = "n_headers (100 fields: the cap)", path = "n_headers?n=100",
    events = range(1, 2) },
  { name = "n_headers", label = "n_headers (101 fields)", path = "n_headers?n=101",
    kind = "too_large", msg = "header fields" },
  { name = "http2_status_line", kind = "protocol" },
  { name = "switching_protocols", kind = "protocol", msg = "101" },
  { name = "huge_chunk_then_fin", kind = "closed", msg = "end of the body", events = range(1, 3) },
  -- One byte per TCP segment: every event once, in order.
  { name = "drip_body", events = range(1, 20) },
  -- [DONE] ends the stream: what follows it is never delivered, the held connection is closed.
  { name = "events_after_done", events = range(1, 2), done = true },
  -- SSE sizes.
  { name = "endless_data_line", opts = { max_event_size = MiB }, kind = "too_large",
    msg = "max_event_size", events = range(1, 2) },
  { name = "million_data_lines", label = "million_data_lines (1 MiB cap)",
    opts = { max_event_size = MiB }, kind = "too_large", msg = "max_event_size",
    events = range(1, 2) },
  -- Under the default 16 MiB cap the one unfinished event (2 MB of data) is discarded at the
  -- end of the stream, as the spec says; the stream ends cleanly.
  { name = "million_data_lines", label = "million_data_lines (default cap)",
    events = range(1, 2), max = 3 },
  -- Resets: every event sent before the reset is delivered exactly once.
  { name = "rst_after_events", path = "rst_after_events?n=50", kind = "closed",
    msg = "reset", events = range(1, 50) },
  { name = "rst_after_events", label = "rst_after_events (2000)",
    path = "rst_after_events?n=2000", kind = "closed", msg = "reset", events = range(1, 2000) },
  -- A 32 MiB POST: reset before the body is read (EPIPE/ECONNRESET, never SIGPIPE: this
  -- process survives to assert), and a server that stops reading (send_timeout, CPU idle).
  { name = "reset_before_body", opts = { method = "POST", body = BIG_BODY },
    kind = "closed", msg = "sending the request" },
  { name = "stop_reading",
    opts = { method = "POST", body = BIG_BODY, send_timeout = 1 },
    kind = "timeout", msg = "send_timeout", timeout = 1,
    check = function(r)
      assert.is_true(r.cpu < 0.2 * r.elapsed,
                     ("CPU %.3f s over %.3f s of waiting"):format(r.cpu, r.elapsed))
    end },
  -- DNS: a name that needs the resolver, with a deadline that passes before it can answer.
  { name = "dns_deadline", url = function(h) return "http://localhost:" .. h.port .. "/" end,
    opts = { connect_timeout = 1e-6 }, kind = "timeout", msg = "connect_timeout",
    connect = false },
  -- A 401 sent before the 32 MiB body is read (the server drains the rest): the error body
  -- is still reported.
  { name = "early_401", opts = { method = "POST", body = BIG_BODY },
    kind = "http", status = 401, msg = 'HTTP 401: {"error":"invalid api key"}' },
  -- The same, but the server closes at once without reading: the kernel resets the
  -- connection under the client's send, and the 401 that arrived first is still reported.
  { name = "early_401_close", opts = { method = "POST", body = BIG_BODY },
    kind = "http", status = 401, msg = 'HTTP 401: {"error":"invalid api key"}' },
  -- Error bodies: capped at 64 KiB (an endless one ends at once), and bounded in time by
  -- headers_timeout (a dripped one is reported with what came).
  { name = "endless_error_body", kind = "http", status = 500, msg = "HTTP 500: eeee",
    check = function(r)
      assert.is_true(#r.err <= 64 * KiB + 64, #r.err .. " bytes of message")
      assert.is_true(#r.err >= 64 * KiB, #r.err .. " bytes of message")
    end },
  { name = "dripped_error_body", opts = { headers_timeout = 0.3 }, kind = "http", status = 503,
    msg = "HTTP 503: o", timeout = 0.3,
    check = function(r) assert.is_true(#r.err < 20, r.err) end }, -- ~3 of 1,100 bytes came
  { name = "length_zero", open = true, events = {} },
  -- retry: past uint64 it is ignored; past Lua's integers it is a float (never wraps).
  { name = "retry_overflow", events = { "x", "y", "z", "w" },
    check = function(r)
      assert.same({ "none", "none", 2.0 ^ 64, 2.0 ^ 63 }, r.retries)
      assert.equals("float", math.type(r.retries[3]))
    end },
  -- Status and Content-Type.
  { name = "no_content", open = true, events = {},
    check = function(r) assert.equals(204, r.open_status) end },
  { name = "rate_limited", kind = "http", status = 429,
    msg = 'HTTP 429: {"error":{"type":"rate_limit","message":"slow down please"}}' },
  { name = "server_error_html", kind = "http", status = 500,
    msg = "HTTP 500: <html><body><h1>500 Internal Server Error</h1></body></html>" },
  { name = "html_200", kind = "content_type", msg = "text/html" },
  -- Deadlines: absolute, not reset by a trickle of bytes.
  { name = "drip_headers", opts = { headers_timeout = 0.3 }, kind = "timeout",
    msg = "headers_timeout", timeout = 0.3 },
  { name = "no_response", opts = { headers_timeout = 0.3 }, kind = "timeout",
    msg = "headers_timeout", timeout = 0.3 },
  { name = "events_then_silence", opts = { idle_timeout = 0.3 }, kind = "idle",
    msg = "idle_timeout", events = range(1, 2), timeout = 0.3 },
  -- Ten comments 0.1 s apart keep a 0.3 s idle_timeout from firing for a whole second; once
  -- they stop (after one last event), idle fires 0.3 s after that event.
  { name = "comments_then_silence", opts = { idle_timeout = 0.3 }, kind = "idle",
    msg = "idle_timeout", events = { "last" }, max = 2,
    check = function(r)
      local last = r.times.message[1]
      assert.is_true(last >= 0.9, ("the last event came at %.3f s"):format(last))
      local gap = r.times.error[1] - last
      assert.is_true(gap >= 0.27 and gap <= 0.6, ("idle fired %.3f s after the event"):format(gap))
    end },
  -- TLS (tls_server.py modes): no ServerHello, plain text instead of TLS, no close_notify.
  -- `connect` runs only once the handshake is done, so a failed handshake is `error` alone.
  { name = "tls_no_server_hello", tls = "hang", opts = { connect_timeout = 0.3 },
    kind = "timeout", msg = "connect_timeout", timeout = 0.3, connect = false },
  { name = "tls_garbage", tls = "garbage", kind = "tls", connect = false },
  { name = "tls_truncated_mid_event", tls = "truncate", kind = "closed", tls_events = 3 },
}

local hostile, tls = nil, {}
local pki = os.tmpname()
os.remove(pki)

local function url_for(row)
  if row.url then return row.url(hostile) end
  if row.tls then
    return "https://127.0.0.1:" .. tls[row.tls].port .. "/"
  end
  return "http://127.0.0.1:" .. hostile.port .. "/scenario/" .. (row.path or row.name)
end

-- Runs one row's client to its end; returns a record of what happened.
local function run_row(row)
  local opts = {}
  for k, v in pairs(BASE) do opts[k] = v end
  for k, v in pairs(row.opts or {}) do opts[k] = v end
  if row.tls then
    opts.tls_cafile = pki .. "/ca.pem"
    opts.json = false -- compare the raw data
  end
  return helpers.run(function()
    collectgarbage()
    collectgarbage()
    local r = { log = {}, times = {}, retries = {}, fds_before = helpers.count_fds() }
    local t0
    local function add(name, ...)
      r.log[#r.log + 1] = { name, ... }
      r.times[name] = r.times[name] or {}
      table.insert(r.times[name], lev.now() - t0)
    end
    local c = http.sse_client(url_for(row), opts, {
      connect = function() add("connect") end,
      open = function(status) r.open_status = status; add("open") end,
      message = function(data, event)
        add("message", data)
        r.retries[#r.retries + 1] = event.retry or "none"
      end,
      error = function(msg, status, kind) add("error", msg, status, kind) end,
      done = function() add("done") end,
      close = function() add("close") end,
    })
    t0 = lev.now()
    local cpu0 = os.clock()
    local ok, err, status, kind = c:connect()
    if ok then
      local updates = 0
      repeat
        ok, err, status, kind = c:update()
        updates = updates + 1
      until not ok or updates > 1e6
    end
    r.ok, r.err, r.status, r.kind = ok, err, status, kind
    r.elapsed = lev.now() - t0
    r.cpu = os.clock() - cpu0
    c:close()
    c = nil
    collectgarbage()
    collectgarbage()
    r.fds_after = helpers.count_fds()
    return r
  end, 60)
end

local function names(log)
  local out = {}
  for i, e in ipairs(log) do out[i] = e[1] end
  return out
end

local function expected_names(row, n_events)
  local out = {}
  if row.connect ~= false then out[#out + 1] = "connect" end
  local open = row.open
  if open == nil then open = row.kind == nil or n_events > 0 end
  if open then out[#out + 1] = "open" end
  for _ = 1, n_events do out[#out + 1] = "message" end
  if row.done then out[#out + 1] = "done" end
  if row.kind then out[#out + 1] = "error" end
  if row.connect ~= false then out[#out + 1] = "close" end
  return out
end

describe("http.sse_client against hostile servers", function()
  setup(function()
    hostile = start("hostile_server.py")
    assert(os.execute("bash " .. sh_quote(source_dir .. "/tests/servers/make_pki.sh") .. " "
                      .. sh_quote(pki) .. " >/dev/null"), "make_pki.sh failed")
    for _, mode in ipairs({ "hang", "garbage", "truncate" }) do
      tls[mode] = start("tls_server.py", { "--mode", mode, "--cert", pki .. "/server.pem",
                                           "--key", pki .. "/server.key" })
    end
  end)

  teardown(function()
    for _, s in ipairs(servers) do s.stop() end
    os.execute("rm -rf " .. sh_quote(pki))
  end)

  it("has at least 30 scenarios", function()
    assert.is_true(#ROWS >= 30, #ROWS .. " rows")
  end)

  for _, row in ipairs(ROWS) do
    local outcome = row.kind and ("kind " .. row.kind) or "a clean end"
    it((row.label or row.name) .. ": " .. outcome, function()
      local r = run_row(row)
      local events = row.events
      if row.tls_events then
        events = {}
        for i = 1, row.tls_events do
          events[i] = ('{"n": %d, "text": "event number %d"}'):format(i, i)
        end
      end
      events = events or {}
      -- The outcome.
      assert.equals(row.kind, r.kind, "kind (message: " .. tostring(r.err) .. ")")
      assert.equals(row.status, r.status)
      if row.kind then
        assert.is_falsy(r.ok)
        assert.is_string(r.err)
        if row.msg then assert.matches(row.msg, r.err, 1, true) end
      else
        assert.is_false(r.ok)
        assert.is_nil(r.err)
      end
      -- The events, each once and in order, then error, then close.
      local got = {}
      for _, e in ipairs(r.log) do
        if e[1] == "message" then
          got[#got + 1] = e[2]
        end
      end
      if #events > 50 then
        -- Compare big lists without a huge diff: first mismatch only.
        assert.equals(#events, #got, "number of events")
        for i = 1, #events do
          if events[i] ~= got[i] then
            assert.equals(events[i], got[i], "event " .. i)
          end
        end
      else
        assert.same(events, got)
      end
      assert.same(expected_names(row, #events), names(r.log))
      if row.kind then
        local e = r.log[#r.log - (row.connect == false and 0 or 1)]
        assert.same({ "error", r.err, r.status, r.kind }, e)
      end
      -- How long it took.
      if row.timeout then
        assert.is_true(r.elapsed >= 0.9 * row.timeout and r.elapsed <= 2 * row.timeout,
                       ("took %.3f s for a %.3f s timeout"):format(r.elapsed, row.timeout))
      else
        local max = row.max or 1
        assert.is_true(r.elapsed < max, ("took %.3f s (max %.3f s)"):format(r.elapsed, max))
      end
      -- The socket is released.
      assert.equals(r.fds_before, r.fds_after, "fds before/after")
      if row.check then row.check(r) end
    end)
  end

  it("a POST reset before its 32 MiB body is sent does not raise SIGPIPE (child process)", function()
    -- The in-process row above survives too; this one also checks the exit status.
    local script = table.concat({
      'local lev, http = require("lev"), require("http")',
      "lev.run(function()",
      "  local c = http.sse_client(arg[1], { method = 'POST', body = string.rep('b', 32 << 20) })",
      "  local ok, err, status, kind = c:connect()",
      "  io.write(tostring(kind))",
      "end)",
    }, "\n")
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(script)
    f:close()
    local url = "http://127.0.0.1:" .. hostile.port .. "/scenario/reset_before_body"
    local p = assert(io.popen("lua5.4 " .. sh_quote(path) .. " " .. sh_quote(url) .. " 2>&1"))
    local out = p:read("a")
    local ok, how, code = p:close()
    os.remove(path)
    assert.equals("closed", out)
    assert.same({ true, "exit", 0 }, { ok, how, code })
  end)

  it("200 concurrent streams: one stalls, the other 199 finish as fast as without it", function()
    local N, EVENTS = 199, 2000
    local path = "/scenario/burst?n=" .. EVENTS .. "&size=64"
    -- Runs N full-speed streams (plus the stalled one when `with_stall`); returns the time
    -- until the last full-speed stream ended, and whether the stalled one was still alive.
    local function round(with_stall)
      return helpers.run(function()
        local fds0 = helpers.count_fds()
        local stalled, stalled_events, stalled_alive = nil, 0, nil
        if with_stall then
          stalled = http.sse_client("http://127.0.0.1:" .. hostile.port .. "/scenario/stall",
                                    { recv_timeout = 0.05 },
                                    { message = function() stalled_events = stalled_events + 1 end })
        end
        local counts, finished = {}, 0
        local t0 = lev.now()
        local stall_task
        if stalled then
          stall_task = lev.spawn(function()
            assert(stalled:connect())
            while stalled:update() do end
          end)
        end
        local tasks = {}
        for i = 1, N do
          counts[i] = 0
          tasks[i] = lev.spawn(function()
            local c = http.sse_client("http://127.0.0.1:" .. hostile.port .. path, BASE,
                                      { message = function() counts[i] = counts[i] + 1 end })
            assert(c:connect())
            local ok, err
            repeat ok, err = c:update() until not ok
            assert(err == nil, err)
            finished = finished + 1
          end)
        end
        for _, t in ipairs(tasks) do t:join() end
        local elapsed = lev.now() - t0
        if stalled then
          stalled_alive = stalled:is_connected()
          stalled:close()
          stall_task:join()
        end
        for i = 1, N do assert.equals(EVENTS, counts[i], "stream " .. i) end
        assert.equals(N, finished)
        assert.equals(0, stalled_events)
        collectgarbage()
        collectgarbage()
        assert.equals(fds0, helpers.count_fds(), "fds")
        return elapsed, stalled_alive
      end, 120)
    end
    round(false) -- warm-up (first connections, Python's accept path)
    local alone = round(false)
    local with_stall, alive = round(true)
    assert.is_true(alive, "the stalled stream was still connected when the others finished")
    assert.is_true(with_stall < 1.5 * alone + 0.1,
                   ("%.3f s with the stalled stream vs %.3f s without"):format(with_stall, alone))
    print(("\n199 streams x %d events: %.3f s alone, %.3f s next to a stalled one"):format(
      EVENTS, alone, with_stall))
  end)
end)
