-- helpers/server.lua: starts tests/servers/script_server.py for the busted specs, and small
-- helpers the specs share.
--
--   local server = require("helpers.server")
--   local s = server.start()                       -- or start{host = "::1"},
--                                                  -- start{backlog_full = true}, start{refuse = true},
--                                                  -- start{tls_hello = "hold"} (https:// gets no answer)
--   s.port, s.host, s.url("/path?q")               -- "http://127.0.0.1:<port>/path?q"
--   s:stats()    -> {accepted, requests, open, client_closed, reset, bad_requests}
--   s:requests() -> array of {method, target, version, headers = {{name, value}, ...}, body, raw}
--   s:stop()                                       -- idempotent; every spec stops its servers
--
--   server.script(ops)         -> the JSON text for the X-Script request header
--   server.start_script(name, args) -> another tests/servers/ script: {port, pid, stop}
--   server.count_fds()         -> number of entries in /proc/self/fd
--   server.wait_until(pred, timeout, what)  (inside lev.run) polls pred with lev.sleep(0.01),
--                                            raises "timed out waiting for <what>" at the deadline
--   server.run(fn, limit)      -> lev.run(fn) with a watchdog: raises if fn runs > limit s (30)
--
-- The server is started with io.popen (stdout piped to us, stdin /dev/null). Reading the
-- `PORT <n> PID <pid>` line is the only blocking step; it happens once per server. The server
-- also exits by itself when our end of the pipe closes, so a crashed spec leaves nothing.
local cjson = require("cjson")

local M = {}

local source_dir = os.getenv("LEVHTTP_SOURCE_DIR") or "."
local python = os.getenv("LEVHTTP_PYTHON")
if not python then
  -- /usr/bin/python3 starts faster than a version-manager shim found first on PATH.
  local f = io.open("/usr/bin/python3", "r")
  if f then
    f:close()
    python = "/usr/bin/python3"
  else
    python = "python3"
  end
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local text = f:read("a")
  f:close()
  return text
end

local Server = {}
Server.__index = Server


function Server:stats()
  -- The server rewrites the state file atomically (rename), so a read sees a whole JSON.
  local text = read_file(self.state_file)
  assert(text and text ~= "", "script_server: no state file")
  return cjson.decode(text)
end

-- The log carries the raw request as latin-1 code points (JSON has no bytes): back to bytes.
local function latin1_bytes(s)
  local out = {}
  for _, cp in utf8.codes(s) do
    out[#out + 1] = string.char(cp)
  end
  return table.concat(out)
end

function Server:requests()
  local out = {}
  local text = read_file(self.log_file) or ""
  for line in text:gmatch("[^\n]+") do
    local req = cjson.decode(line)
    req.raw = latin1_bytes(req.raw)
    out[#out + 1] = req
  end
  return out
end

function Server:stop()
  if self.stopped then
    return
  end
  self.stopped = true
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  self.pipe:close() -- waits for the process
  os.remove(self.state_file)
  os.remove(self.state_file .. ".tmp")
  os.remove(self.log_file)
  os.remove(self.tmp)
end

-- args: {host = "::1"}, {backlog_full = true}, {refuse = true}, or extra CLI strings in the
-- array part.
function M.start(args)
  args = args or {}
  local host = args.host or "127.0.0.1"
  local tmp = os.tmpname()
  local cli = {
    "exec",
    python,
    shell_quote(source_dir .. "/tests/servers/script_server.py"),
    "--host",
    shell_quote(host),
    "--state-file",
    shell_quote(tmp .. ".state.json"),
    "--log-file",
    shell_quote(tmp .. ".log.jsonl"),
  }
  if args.backlog_full then
    cli[#cli + 1] = "--backlog-full"
  end
  if args.refuse then
    cli[#cli + 1] = "--refuse"
  end
  if args.tls_hello then
    cli[#cli + 1] = "--tls-hello " .. shell_quote(args.tls_hello)
  end
  for _, a in ipairs(args) do
    cli[#cli + 1] = shell_quote(a)
  end
  cli[#cli + 1] = "</dev/null"
  local pipe = assert(io.popen(table.concat(cli, " "), "r"))
  local line = pipe:read("l")
  local port, pid = (line or ""):match("^PORT (%d+) PID (%d+)")
  if not port then
    pipe:close()
    os.remove(tmp)
    error("script_server did not start: " .. tostring(line))
  end
  local url_host = host:find(":", 1, true) and ("[" .. host .. "]") or host
  return setmetatable({
    -- s.url(path) (a plain function, no colon): "http://<host>:<port><path>"
    url = function(path)
      return "http://" .. url_host .. ":" .. port .. (path or "/")
    end,
    host = host,
    port = tonumber(port),
    pid = tonumber(pid),
    pipe = pipe,
    tmp = tmp,
    state_file = tmp .. ".state.json",
    log_file = tmp .. ".log.jsonl",
  }, Server)
end

-- Starts tests/servers/<script>, a python3 server that prints `PORT <n> PID <pid>` (the TLS
-- and hostile servers), with the given arguments; returns {port=, pid=, stop=}. stop() is
-- idempotent; every spec stops what it starts.
function M.start_script(script, args)
  local cli = { "exec", python, shell_quote(source_dir .. "/tests/servers/" .. script) }
  for _, a in ipairs(args or {}) do
    cli[#cli + 1] = shell_quote(a)
  end
  cli[#cli + 1] = "</dev/null"
  local pipe = assert(io.popen(table.concat(cli, " "), "r"))
  local line = pipe:read("l") or ""
  local port, pid = line:match("^PORT (%d+) PID (%d+)")
  if not port then
    pipe:close()
    error(script .. " did not start: " .. line)
  end
  local s = { port = tonumber(port), pid = pid }
  function s.stop()
    if s.stopped then
      return
    end
    s.stopped = true
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
    pipe:close()
  end
  return s
end

function M.script(ops)
  return cjson.encode(ops)
end

function M.count_fds()
  -- lfs (a busted dependency) lists /proc/self/fd in-process; "." and ".." and the directory
  -- handle itself are counted every time, so before/after differences are exact.
  local lfs = require("lfs")
  local n = 0
  for _ in lfs.dir("/proc/self/fd") do
    n = n + 1
  end
  return n
end

function M.wait_until(pred, timeout, what)
  local lev = require("lev")
  local deadline = lev.now() + (timeout or 5)
  while true do
    local v = pred()
    if v then
      return v
    end
    if lev.now() > deadline then
      error("timed out waiting for " .. (what or "a condition"), 2)
    end
    lev.sleep(0.01)
  end
end

function M.run(fn, limit)
  local lev = require("lev")
  limit = limit or 30
  local finished = false
  return lev.run(function()
    local watchdog = lev.spawn(function()
      local deadline = lev.now() + limit
      while not finished do
        if lev.now() > deadline then
          error("spec body still running after " .. limit .. " s", 0)
        end
        lev.sleep(0.05)
      end
    end)
    local results = table.pack(xpcall(fn, function(e)
      return type(e) == "string" and debug.traceback(e, 2) or e
    end))
    finished = true
    watchdog:join()
    if not results[1] then
      error(results[2], 0)
    end
    return table.unpack(results, 2, results.n)
  end)
end

return M
