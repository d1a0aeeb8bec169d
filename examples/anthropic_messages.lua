-- anthropic_messages.lua: stream a reply from the Anthropic Messages API, token by token.
--
--   lua5.4 examples/anthropic_messages.lua "Write a haiku about sockets"
--
-- Environment:
--   ANTHROPIC_BASE_URL  API root, e.g. https://api.anthropic.com (default: the bundled mock,
--                       $MOCK_URL, or http://127.0.0.1:8089)
--   ANTHROPIC_API_KEY   the key (default "mock-key", which the mock accepts)
--   ANTHROPIC_MODEL     the model (default "claude-3-5-haiku-latest")
--
-- The Messages API sends named events; each one has its own callback here:
--   message_start, content_block_start, ping, content_block_delta (one per token),
--   content_block_stop, message_delta (stop_reason, usage), message_stop,
-- and `error` events (e.g. overloaded_error) when the API fails mid-stream.
-- On failure the error (its kind and HTTP status) goes to stderr and the exit status is 1.

local lev = require("lev")
local http = require("http")
local cjson = require("cjson")

-- Ctrl-C: lua5.4 answers SIGINT by setting a hook on the main thread, but the main thread
-- runs no Lua code while lev.run drives the tasks. The task checks for that hook instead
-- (update() returns at least every recv_timeout) and stops cleanly.
local main_thread = debug.getregistry()[1]
local hooked_at_start = debug.gethook(main_thread) ~= nil -- e.g. a debugger: then don't guess
local function interrupted()
  if hooked_at_start or debug.gethook(main_thread) == nil then return false end
  debug.sethook(main_thread) -- consume the interrupt: we stop on our own
  return true
end

local function base_url()
  local url = os.getenv("ANTHROPIC_BASE_URL")
  if not url or url == "" then
    local mock = os.getenv("MOCK_URL")
    url = (mock and mock ~= "") and mock or "http://127.0.0.1:8089"
  end
  return (url:gsub("/+$", ""))
end

local url = base_url() .. "/v1/messages"
local key = os.getenv("ANTHROPIC_API_KEY") or "mock-key"
local model = os.getenv("ANTHROPIC_MODEL") or "claude-3-5-haiku-latest"
local prompt = #arg > 0 and table.concat(arg, " ") or "Say hello to lev-http."

local body = cjson.encode({
  model = model,
  max_tokens = 1024,
  stream = true,
  messages = { { role = "user", content = prompt } },
})
local headers = { ["x-api-key"] = key, ["anthropic-version"] = "2023-06-01" }

local failure
local stopped = false -- message_stop arrived
local wrote = false -- a token is on stdout without its final newline
local stop_reason

local function fail(msg, status, kind)
  if not failure then failure = { msg = tostring(msg), status = status, kind = kind } end
end

local callbacks = {
  content_block_delta = function(data)
    local delta = type(data) == "table" and data.delta
    if type(delta) == "table" and delta.type == "text_delta" and type(delta.text) == "string" then
      io.write(delta.text)
      io.stdout:flush()
      wrote = true
    end
  end,
  message_delta = function(data)
    local delta = type(data) == "table" and data.delta
    if type(delta) == "table" and type(delta.stop_reason) == "string" then
      stop_reason = delta.stop_reason
    end
  end,
  message_stop = function()
    stopped = true
    wrote = false
    io.write("\n")
    io.stdout:flush()
    if stop_reason and stop_reason ~= "end_turn" then
      io.stderr:write("[stop_reason: ", stop_reason, "]\n")
    end
  end,
  -- message_start, content_block_start, content_block_stop and ping carry nothing to print;
  -- giving them handlers keeps them out of `message`, which is left for unknown event types.
  message_start = function() end,
  content_block_start = function() end,
  content_block_stop = function() end,
  ping = function() end,
  message = function(_, event)
    io.stderr:write("[unexpected event: ", event.type, "]\n")
  end,
  -- HTTP errors (401, 429, ...) and `event: error` mid-stream (kind "event", data raw JSON).
  error = fail,
}

local run_ok, run_err = pcall(lev.run, function()
  local c = http.sse_client(url, { method = "POST", body = body, headers = headers }, callbacks)
  local ok, err, status, kind = c:connect()
  if not ok then
    fail(err, status, kind)
    return
  end
  while c:update() and c:is_connected() do
    if interrupted() then
      c:close()
      return "interrupted"
    end
  end
  c:close()
end)
if run_ok and run_err == "interrupted" then
  io.stderr:write(wrote and "\n" or "", "interrupted\n")
  os.exit(130)
end

if not run_ok then
  if tostring(run_err):find("interrupted", 1, true) then
    io.stderr:write("\ninterrupted\n")
    os.exit(130)
  end
  io.stderr:write("anthropic_messages: ", tostring(run_err), "\n")
  os.exit(1)
end
if not failure and not stopped then
  fail("the stream ended before message_stop", nil, "closed")
end
if failure then
  if wrote then io.write("\n") end
  io.stderr:write(string.format("anthropic_messages: error (kind=%s, status=%s): %s\n",
    tostring(failure.kind), tostring(failure.status), failure.msg))
  os.exit(1)
end
