-- Many http.sse_client streams in one lev.run (SPEC.md: the client yields instead of
-- blocking): 200 concurrent clients each get every event; a stalled stream does not hold up
-- the others.
local lev = require("lev")
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

describe("http.sse_client concurrency", function()
  it("200 concurrent clients in one lev.run each receive all their events", function()
    local N, EVENTS = 200, 25
    local results = {}
    local fds_before, fds_after
    server.run(function()
      fds_before = server.count_fds()
      local tasks = {}
      for i = 1, N do
        tasks[i] = lev.spawn(function()
          local got = {}
          local ops = { { sse_head = true } }
          for k = 1, EVENTS do
            ops[#ops + 1] = { send = "id: " .. k .. "\ndata: {\"client\":" .. i .. ",\"k\":" .. k
                                     .. "}\n\n" }
            if k % 5 == 0 then
              ops[#ops + 1] = { sleep = 0.01 }
            end
          end
          local c = sse.client(s, ops, {}, {
            message = function(d)
              got[#got + 1] = d
            end,
          })
          local ok, err = c:connect()
          assert(ok, err)
          local r = sse.drain(c)
          assert(r.err == nil, r.err)
          results[i] = got
          return c:last_event_id()
        end)
      end
      for i = 1, N do
        assert.equals(tostring(EVENTS), tasks[i]:join())
      end
      -- Inside lev.run: the loop's own descriptors are open in both counts.
      collectgarbage("collect")
      collectgarbage("collect")
      fds_after = server.count_fds()
    end, 120)
    for i = 1, N do
      local got = results[i]
      assert.equals(EVENTS, #got, "client " .. i)
      for k = 1, EVENTS do
        assert.equals(i, got[k].client)
        assert.equals(k, got[k].k)
      end
    end
    assert.equals(fds_before, fds_after)
    assert.is_true(s:stats().accepted >= N)
  end)

  it("a stalled stream does not delay another one", function()
    local fast_done_at, slow_state
    server.run(function()
      local t0 = lev.now()
      local slow_client = sse.client(s, { { sse_head = true }, { send = "data: s\n\n" },
                                          { hold = 30 } }, { recv_timeout = 10 })
      local slow = lev.spawn(function()
        local got = 0
        local c = slow_client
        assert(c:connect())
        -- update() returns when the first event arrives; the next one waits (up to 10 s).
        slow_state = "connected"
        repeat
          local ok = c:update()
          got = got + 1
        until not ok
        slow_state = "ended after " .. got .. " update() calls"
      end)
      local fast = lev.spawn(function()
        local c = sse.client(s, { { sse_head = true },
                                  { drip = sse.event_stream({ "1", "2", "3" }), delay = 0.005 } })
        assert(c:connect())
        local r = sse.drain(c)
        assert(r.err == nil, r.err)
        fast_done_at = lev.now() - t0
      end)
      fast:join()
      assert.equals("connected", slow_state)
      slow_client:close()
      slow:join()
    end)
    assert.is_true(fast_done_at < 5, "the fast stream took " .. fast_done_at .. " s")
  end)

  it("clients in many tasks interleave with lev.sleep tasks", function()
    local ticks, ticks_when_done = 0, nil
    server.run(function()
      local ticker = lev.spawn(function()
        for _ = 1, 20 do
          ticks = ticks + 1
          lev.sleep(0.01)
        end
      end)
      local c = sse.client(s, { { sse_head = true }, { send = "data: a\n\n" }, { sleep = 0.4 },
                                { send = "data: b\n\n" } }, { recv_timeout = 5 })
      assert(c:connect())
      local r = sse.drain(c)
      assert.is_nil(r.err)
      -- The stream took 0.4 s: a client that blocked the loop would have let the ticker
      -- run once or twice, not most of its 20 ticks of 10 ms.
      ticks_when_done = ticks
      ticker:join()
    end)
    assert.is_true(ticks_when_done >= 15, "ticks during the stream: " .. ticks_when_done)
  end)
end)
