-- http.sse_parser: the SSE parser through Lua (SPEC.md, "http.sse_parser"). The parsing
-- rules themselves are ground in the Catch2 tests; here: the binding's shape, the size cap,
-- reset, argument errors, and that splitting the input does not change the events.
local http = require("http")

local function feed_all(p, chunks)
  local all = {}
  for _, c in ipairs(chunks) do
    for _, ev in ipairs(p:feed(c)) do all[#all + 1] = ev end
  end
  return all
end

describe("http.sse_parser", function()
  it("returns completed events as tables", function()
    local p = http.sse_parser()
    local evs = p:feed("event: delta\nid: 42\nretry: 1500\ndata: a\ndata: b\n\ndata: plain\n\n")
    assert.are.equal(2, #evs)
    assert.are.same({ type = "delta", data = "a\nb", id = "42", retry = 1500 }, evs[1])
    assert.are.same({ type = "message", data = "plain", id = "42" }, evs[2])
    assert.is_nil(evs[2].retry)
    assert.are.equal("42", p:last_event_id())
    assert.are.equal(1500, p:retry())
    assert.is_true(math.type(p:retry()) == "integer")
  end)

  it("returns an empty array until an event completes", function()
    local p = http.sse_parser()
    assert.are.same({}, p:feed("data: x"))
    assert.are.same({}, p:feed("\n"))
    assert.are.same({}, p:feed(""))
    local evs = p:feed("\n")
    assert.are.equal(1, #evs)
    assert.are.equal("x", evs[1].data)
  end)

  it("gives data as the raw string, JSON not decoded", function()
    local p = http.sse_parser()
    local evs = p:feed('data: {"a":1}\n\n')
    assert.are.equal('{"a":1}', evs[1].data)
  end)

  it("has no last event id and no retry at first", function()
    local p = http.sse_parser()
    assert.are.equal("", p:last_event_id())
    assert.is_nil(p:retry())
  end)

  it("keeps NUL bytes and replaces invalid UTF-8", function()
    local p = http.sse_parser()
    local evs = p:feed("data: a\0b\n\ndata: \xff\n\n")
    assert.are.equal("a\0b", evs[1].data)
    assert.are.equal("\xEF\xBF\xBD", evs[2].data)
  end)

  it("gives the same events however the bytes are split", function()
    local stream = "\xEF\xBB\xBFid: 1\r\nevent: t\r\ndata: x\r\n\r\n: c\rdata: y\rdata: z\r\r"
      .. "retry: 7\ndata: \xE2\x82\xAC\n\n"
    local whole = feed_all(http.sse_parser(), { stream })
    assert.are.equal(3, #whole)
    for i = 0, #stream do
      local got = feed_all(http.sse_parser(), { stream:sub(1, i), stream:sub(i + 1) })
      assert.are.same(whole, got)
    end
    local bytes = {}
    for i = 1, #stream do bytes[i] = stream:sub(i, i) end
    assert.are.same(whole, feed_all(http.sse_parser(), bytes))
    assert.are.same({ type = "message", data = "\xE2\x82\xAC", id = "1", retry = 7 }, whole[3])
  end)

  describe("reset()", function()
    it("drops the unfinished event and keeps id and retry", function()
      local p = http.sse_parser()
      p:feed("id: 5\nretry: 250\ndata: done\n\nid: 6\ndata: half")
      p:reset()
      assert.are.equal("5", p:last_event_id())
      assert.are.equal(250, p:retry())
      local evs = p:feed("data: next\n\n")
      assert.are.equal(1, #evs)
      assert.are.same({ type = "message", data = "next", id = "5" }, evs[1])
    end)

    it("lets a new stream start with a BOM", function()
      local p = http.sse_parser()
      p:feed("\xEF\xBB\xBFdata: a\n\n")
      p:reset()
      local evs = p:feed("\xEF\xBB\xBFdata: b\n\n")
      assert.are.equal("b", evs[1].data)
    end)
  end)

  describe("max_event_size", function()
    it("accepts a line exactly at the cap", function()
      local p = http.sse_parser({ max_event_size = 10 })
      local evs = p:feed("data: 0123\n\n") -- the line is 10 bytes
      assert.are.equal("0123", evs[1].data)
    end)

    it("raises for a line one byte over", function()
      local p = http.sse_parser({ max_event_size = 10 })
      assert.has_error(function() p:feed("data: 01234\n\n") end,
        "sse_parser: event exceeds max_event_size (10 bytes)")
    end)

    it("raises for a line that never ends", function()
      local p = http.sse_parser({ max_event_size = 100 })
      local ok, err
      for _ = 1, 100 do
        ok, err = pcall(p.feed, p, "xxxxxxxxxx")
        if not ok then break end
      end
      assert.is_false(ok)
      assert.matches("exceeds max_event_size %(100 bytes%)", err)
    end)

    it("raises for an event made of many small data lines", function()
      local p = http.sse_parser({ max_event_size = 100 })
      local ok, err
      for _ = 1, 100 do
        ok, err = pcall(p.feed, p, "data: 0123456789\n")
        if not ok then break end
      end
      assert.is_false(ok)
      assert.matches("exceeds max_event_size", err)
    end)

    it("returns the events completed before the error, then raises on the next feed", function()
      local p = http.sse_parser({ max_event_size = 16 })
      local evs = p:feed("data: one\n\ndata: two\n\ndata: " .. string.rep("x", 50) .. "\n\n")
      assert.are.equal(2, #evs)
      assert.are.equal("one", evs[1].data)
      assert.are.equal("two", evs[2].data)
      assert.has_error(function() p:feed("data: more\n\n") end,
        "sse_parser: event exceeds max_event_size (16 bytes)")
      -- and keeps raising until reset
      assert.has_error(function() p:feed("") end,
        "sse_parser: event exceeds max_event_size (16 bytes)")
      p:reset()
      assert.are.equal("ok", p:feed("data: ok\n\n")[1].data)
    end)

    it("defaults to 16 MiB", function()
      local p = http.sse_parser()
      local big = string.rep("y", 16 * 1024 * 1024 - 6) -- "data: " + big = exactly 16 MiB
      local evs = p:feed("data: " .. big .. "\n\n")
      assert.are.equal(#big, #evs[1].data)
      local q = http.sse_parser()
      assert.has_error(function() q:feed("data: " .. big .. "z\n\n") end,
        "sse_parser: event exceeds max_event_size (16777216 bytes)")
    end)
  end)

  describe("arguments", function()
    it("accepts no argument, nil or an empty table", function()
      assert.is_not_nil(http.sse_parser())
      assert.is_not_nil(http.sse_parser(nil))
      assert.is_not_nil(http.sse_parser({}))
    end)

    it("rejects unknown option names", function()
      assert.has_error(function() http.sse_parser({ max_event_sise = 10 }) end,
        "sse_parser: unknown option 'max_event_sise'")
      assert.has_error(function() http.sse_parser({ 10 }) end, "sse_parser: unknown option '1'")
    end)

    it("rejects a max_event_size that is not a positive integer", function()
      for _, bad in ipairs({ 0, -1, 1.5, "10", true, math.huge }) do
        assert.has_error(function() http.sse_parser({ max_event_size = bad }) end,
          "sse_parser: max_event_size must be a positive integer")
      end
      assert.is_not_nil(http.sse_parser({ max_event_size = 2.0 })) -- an integral float is fine
    end)

    it("rejects options that are not a table", function()
      assert.has_error(function() http.sse_parser(5) end)
      assert.has_error(function() http.sse_parser("x") end)
    end)

    it("rejects feeding something other than a string", function()
      local p = http.sse_parser()
      assert.has_error(function() p:feed({}) end)
      assert.has_error(function() p:feed() end)
      assert.are.same({}, p:feed(12)) -- a number converts, as in string functions
    end)

    it("rejects methods called on something else", function()
      local p = http.sse_parser()
      assert.has_error(function() p.feed({}, "data: x\n\n") end)
      assert.has_error(function() p.reset(nil) end)
    end)
  end)

  it("is collected without trouble", function()
    for _ = 1, 200 do
      local p = http.sse_parser()
      p:feed("data: " .. string.rep("z", 1000))
    end
    collectgarbage()
    collectgarbage()
    assert.matches("^http.sse_parser: ", tostring(http.sse_parser()))
  end)
end)
