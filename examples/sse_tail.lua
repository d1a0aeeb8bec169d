-- sse_tail.lua: print every event of a server-sent event stream until it ends (or Ctrl-C).
--
--   lua5.4 examples/sse_tail.lua URL [--no-json] [--header 'Name: value']...
--                                    [--data BODY] [--method METHOD]
--
--   --no-json          print each payload exactly as received (default: JSON payloads are
--                      decoded by the client and printed back as compact JSON, keys sorted;
--                      lua-cjson 2.1.0 decodes [] and {} alike, so an empty array prints {})
--   --header, -H       an extra request header, repeatable
--   --data, -d         a request body (the method becomes POST unless --method says otherwise)
--   --method, -X       the HTTP method
--
-- Each event is printed as a block ended by a blank line:
--   event: <type>
--   id: <last event id>        (only when there is one)
--   retry: <ms>                (only when the event's block set one)
--   data: <payload line>       (one line per line of the payload)
-- Response status and headers go to stderr. Exit status: 0 when the stream ends cleanly,
-- 1 on an error, 2 on bad arguments, 130 on Ctrl-C.

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

local function usage(msg)
  io.stderr:write("sse_tail: ", msg, "\n",
    "usage: sse_tail.lua URL [--no-json] [--header 'Name: value']... [--data BODY] [--method M]\n")
  os.exit(2)
end

local url
local json = true
local headers = {}
local body, method
do
  local i = 1
  local function value(flag)
    i = i + 1
    if arg[i] == nil then usage(flag .. " needs a value") end
    return arg[i]
  end
  while i <= #arg do
    local a = arg[i]
    if a == "--no-json" then
      json = false
    elseif a == "--header" or a == "-H" then
      local h = value(a)
      local name, v = h:match("^%s*([^:]-)%s*:%s*(.-)%s*$")
      if not name or name == "" then usage("bad header '" .. h .. "' (want 'Name: value')") end
      headers[name] = v
    elseif a == "--data" or a == "-d" then
      body = value(a)
    elseif a == "--method" or a == "-X" then
      method = value(a)
    elseif a:sub(1, 1) == "-" then
      usage("unknown option " .. a)
    elseif url then
      usage("more than one URL")
    else
      url = a
    end
    i = i + 1
  end
end
if not url then usage("no URL") end
method = method or (body and "POST" or "GET")

-- Compact JSON with sorted object keys, so the same payload always prints the same way.
local function to_json(v)
  if type(v) ~= "table" then
    return (cjson.encode(v):gsub("\\/", "/"))
  end
  local n = #v
  local count = 0
  for _ in pairs(v) do count = count + 1 end
  if n > 0 and count == n then
    local parts = {}
    for k = 1, n do parts[k] = to_json(v[k]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local parts = {}
  for k, name in ipairs(keys) do
    local val = v[name]
    if val == nil then val = v[tonumber(name)] end
    parts[k] = to_json(name) .. ":" .. to_json(val)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function print_event(data, event)
  local out = { "event: " .. tostring(event.type) }
  if event.id and event.id ~= "" then out[#out + 1] = "id: " .. event.id end
  if event.retry then out[#out + 1] = "retry: " .. tostring(event.retry) end
  local text
  if type(data) == "table" then
    text = to_json(data)
  else
    text = tostring(data)
  end
  for line in (text .. "\n"):gmatch("(.-)\n") do out[#out + 1] = "data: " .. line end
  io.write(table.concat(out, "\n"), "\n\n")
  io.stdout:flush()
end

local failure

local callbacks = {
  open = function(status, hdrs)
    local names = {}
    for name in pairs(hdrs) do names[#names + 1] = name end
    table.sort(names)
    io.stderr:write("HTTP ", tostring(status), "\n")
    for _, name in ipairs(names) do io.stderr:write(name, ": ", tostring(hdrs[name]), "\n") end
    io.stderr:write("\n")
  end,
  -- With no named-event handlers, every event reaches `message` ...
  message = print_event,
  -- ... except one whose data is exactly [DONE] (the stream then ends) ...
  done = function()
    print_event("[DONE]", { type = "message", id = "" })
  end,
  -- ... and `event: error`, which arrives as error(raw_data, nil, "event", event).
  error = function(msg, status, kind, event)
    if kind == "event" and type(event) == "table" then
      local data = event.data
      if json then
        local ok, decoded = pcall(cjson.decode, data)
        if ok and type(decoded) == "table" then data = decoded end
      end
      print_event(data, event)
      return
    end
    if not failure then failure = { msg = tostring(msg), status = status, kind = kind } end
  end,
}

local options = { method = method, body = body, headers = headers, json = json }
local run_ok, run_err = pcall(lev.run, function()
  local c = http.sse_client(url, options, callbacks)
  local ok, err, status, kind = c:connect()
  if not ok then
    if not failure then failure = { msg = tostring(err), status = status, kind = kind } end
    return
  end
  while c:update() do
    if interrupted() then
      c:close()
      return "interrupted"
    end
  end
  c:close()
end)
if run_ok and run_err == "interrupted" then os.exit(130) end

if not run_ok then
  if tostring(run_err):find("interrupted", 1, true) then os.exit(130) end
  io.stderr:write("sse_tail: ", tostring(run_err), "\n")
  os.exit(1)
end
if failure then
  io.stderr:write(string.format("sse_tail: error (kind=%s, status=%s): %s\n",
    tostring(failure.kind), tostring(failure.status), failure.msg))
  os.exit(1)
end
