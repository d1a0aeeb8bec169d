-- helpers/sse.lua: building and driving http.sse_client in the specs.
--
--   local sse = require("helpers.sse")
--   local cb, log = sse.recorder{"delta"}   -- callbacks that append {name, args...} to log
--                                           -- (connect, open, message, error, done, close
--                                           --  and the listed named-event types)
--   local c = sse.client(s, ops, opts, cb)  -- http.sse_client(s.url(opts.path or "/"), opts
--                                           --  plus the X-Script header for ops, cb)
--   local r = sse.drain(c)                  -- update() until it returns false;
--                                           -- r = {ok=false, err=, status=, kind=, updates=n}
--   sse.names(log)                          -- {"connect", "open", "message", ..., "close"}
--   sse.datas(log, name)                    -- the data argument of every `name` entry
--   sse.event_stream(list)                  -- "data: a\n\n..." for a list of strings
local server = require("helpers.server")

local M = {}

function M.recorder(types, log)
  log = log or {}
  local cb = {}
  local function add(entry)
    log[#log + 1] = entry
  end
  cb.connect = function(...)
    add({ "connect", nargs = select("#", ...) })
  end
  cb.open = function(status, headers)
    add({ "open", status, headers })
  end
  cb.message = function(data, event)
    add({ "message", data, event })
  end
  cb.error = function(msg, status, kind, event)
    add({ "error", msg, status, kind, event })
  end
  cb.done = function(...)
    add({ "done", nargs = select("#", ...) })
  end
  cb.close = function(...)
    add({ "close", nargs = select("#", ...) })
  end
  for _, t in ipairs(types or {}) do
    cb[t] = function(data, event)
      add({ t, data, event })
    end
  end
  return cb, log
end

function M.names(log)
  local out = {}
  for i, e in ipairs(log) do
    out[i] = e[1]
  end
  return out
end

function M.datas(log, name)
  local out = {}
  for _, e in ipairs(log) do
    if e[1] == name then
      out[#out + 1] = e[2]
    end
  end
  return out
end

function M.count(log, name)
  local n = 0
  for _, e in ipairs(log) do
    if e[1] == name then
      n = n + 1
    end
  end
  return n
end

function M.client(s, ops, opts, cb)
  local http = require("http")
  opts = opts or {}
  local copy = {}
  for k, v in pairs(opts) do
    copy[k] = v
  end
  local headers = {}
  for k, v in pairs(opts.headers or {}) do
    headers[k] = v
  end
  if ops then
    headers["X-Script"] = server.script(ops)
  end
  copy.headers = headers
  copy.path = nil
  return http.sse_client(s.url(opts.path or "/"), copy, cb)
end

-- update() until it returns false (at most max_updates calls, default 10000).
function M.drain(c, max_updates)
  max_updates = max_updates or 10000
  for n = 1, max_updates do
    local ok, err, status, kind = c:update()
    if not ok then
      return { ok = ok, err = err, status = status, kind = kind, updates = n }
    end
  end
  error("client still alive after " .. max_updates .. " update() calls", 2)
end

-- Asserts that update() reports a clean end: false and no error.
function M.assert_clean_end(c)
  local ok, err, status, kind = c:update()
  assert(ok == false and err == nil and status == nil and kind == nil,
         "expected a clean end, got " .. tostring(ok) .. ", " .. tostring(err) .. ", "
           .. tostring(status) .. ", " .. tostring(kind))
end

function M.event_stream(list)
  local parts = {}
  for i, d in ipairs(list) do
    parts[i] = "data: " .. d .. "\n\n"
  end
  return table.concat(parts)
end

-- The ops for a 200 text/event-stream response carrying `body`, then FIN.
function M.sse_ops(body, extra)
  local ops = { { sse_head = true }, { send = body } }
  for _, op in ipairs(extra or {}) do
    ops[#ops + 1] = op
  end
  return ops
end

return M
