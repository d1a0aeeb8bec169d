-- openai_chat.lua: stream a chat completion from an OpenAI-compatible API, token by token.
--
--   lua5.4 examples/openai_chat.lua "Tell me a joke"
--
-- Environment:
--   OPENAI_BASE_URL  API root, e.g. https://api.openai.com/v1 (default: the bundled mock,
--                    $MOCK_URL/v1, or http://127.0.0.1:8089/v1)
--   OPENAI_API_KEY   the key (default "mock-key", which the mock accepts)
--   OPENAI_MODEL     the model (default "gpt-4o-mini")
--
-- Each token is written to stdout as soon as its event arrives. On failure the error (its
-- kind and HTTP status) goes to stderr and the exit status is 1.

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
  local url = os.getenv("OPENAI_BASE_URL")
  if not url or url == "" then
    local mock = os.getenv("MOCK_URL")
    url = (mock and mock ~= "") and (mock:gsub("/+$", "") .. "/v1") or "http://127.0.0.1:8089/v1"
  end
  return (url:gsub("/+$", ""))
end

local url = base_url() .. "/chat/completions"
local key = os.getenv("OPENAI_API_KEY") or "mock-key"
local model = os.getenv("OPENAI_MODEL") or "gpt-4o-mini"
local prompt = #arg > 0 and table.concat(arg, " ") or "Say hello to lev-http."

local body = cjson.encode({
  model = model,
  stream = true,
  messages = { { role = "user", content = prompt } },
})
local headers = { Authorization = "Bearer " .. key }

-- The first failure is the one worth reporting (a later "closed" is its consequence).
local failure
local finished = false
local wrote = false -- a token is on stdout without its final newline

local function fail(msg, status, kind)
  if not failure then failure = { msg = tostring(msg), status = status, kind = kind } end
end

local callbacks = {
  -- One chat.completion.chunk per event; the text is in choices[1].delta.content (the first
  -- chunk carries only the role, the last only finish_reason; JSON null is cjson.null).
  message = function(data)
    if type(data) ~= "table" then return end
    if type(data.error) == "table" then -- some servers report errors as a data event
      fail(cjson.encode(data.error), nil, "event")
      return
    end
    local choice = type(data.choices) == "table" and data.choices[1]
    local delta = type(choice) == "table" and choice.delta
    local content = type(delta) == "table" and delta.content
    if type(content) == "string" and content ~= "" then
      io.write(content)
      io.stdout:flush()
      wrote = true
    end
  end,
  done = function()
    finished = true
    wrote = false
    io.write("\n")
    io.stdout:flush()
  end,
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
  io.stderr:write("openai_chat: ", tostring(run_err), "\n")
  os.exit(1)
end
if not failure and not finished then
  fail("the stream ended before [DONE]", nil, "closed")
end
if failure then
  if wrote then io.write("\n") end
  io.stderr:write(string.format("openai_chat: error (kind=%s, status=%s): %s\n",
    tostring(failure.kind), tostring(failure.status), failure.msg))
  os.exit(1)
end
