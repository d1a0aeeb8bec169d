-- sse_lua.lua: a straightforward pure-Lua SSE parser (Lua 5.2 .. 5.4), the kind a Lua user
-- writes by hand: split on LF (dropping a CR before it), fields by their first colon, an
-- event on each blank line. Used by the peers in scripts/bench.sh; not part of lev-http.
local M = {}

-- Returns feed(chunk): calls on_event(data, type, id) for each complete event.
function M.new(on_event)
  local buf, data, etype, id = "", nil, nil, ""
  local find, sub, byte = string.find, string.sub, string.byte
  return function(chunk)
    buf = buf .. chunk
    local pos = 1
    while true do
      local nl = find(buf, "\n", pos, true)
      if not nl then break end
      local stop = nl - 1
      if byte(buf, stop) == 13 then stop = stop - 1 end
      if stop < pos then -- blank line: dispatch
        if data then on_event(data, etype or "message", id) end
        data, etype = nil, nil
      elseif byte(buf, pos) ~= 58 then -- not a ":" comment
        local colon = find(buf, ":", pos, true)
        local field, value
        if colon and colon <= stop then
          field = sub(buf, pos, colon - 1)
          local v = colon + 1
          if byte(buf, v) == 32 then v = v + 1 end
          value = sub(buf, v, stop)
        else
          field, value = sub(buf, pos, stop), ""
        end
        if field == "data" then
          data = data and (data .. "\n" .. value) or value
        elseif field == "event" then
          etype = value
        elseif field == "id" then
          id = value
        end
      end
      pos = nl + 1
    end
    buf = sub(buf, pos)
  end
end

return M
