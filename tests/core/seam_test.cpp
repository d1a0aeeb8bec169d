// seam_test.cpp: the lev_api seam (include/lev/lev.h) as this runtime publishes it, driven the
// way a C module uses it: small lua_CFunctions that call the seam with continuations, called
// from Lua chunks running inside lev.run in an embedded lua_State.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <string>

#include "lev/lev.h"
#include "lev/runtime.hpp"

namespace {

// libuv sizes its threadpool once, at its first use in the process: make it one thread, so
// that the resolve-deadline test can occupy it deterministically. Set before main() runs.
const bool kThreadpoolOfOne = [] {
  setenv("UV_THREADPOOL_SIZE", "1", 1);
  return true;
}();

const lev_api *api(lua_State *L) {
  const lev_api *a = lev_get_api(L);
  if (a == nullptr) luaL_error(L, "lev_api not published");
  return a;
}

double deadline_arg(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return LEV_NO_DEADLINE;
  return api(L)->now(L) + luaL_checknumber(L, idx);
}

// Continuation: return (outcome, detail) as delivered.
int k_outcome(lua_State *, int, lua_KContext) {
  return 2;
}

// seam.wait(fd, events, timeout|nil) -> outcome, detail
int l_wait(lua_State *L) {
  int fd = static_cast<int>(luaL_checkinteger(L, 1));
  int events = static_cast<int>(luaL_checkinteger(L, 2));
  double deadline = deadline_arg(L, 3);
  lua_settop(L, 0);
  return api(L)->wait_fd(L, fd, events, deadline, 0, k_outcome);
}

// seam.wait_until(deadline) -> outcome, detail
int l_wait_until(lua_State *L) {
  double deadline = luaL_checknumber(L, 1);
  lua_settop(L, 0);
  return api(L)->wait_until(L, deadline, 0, k_outcome);
}

// Continuation for resolve: a LEV_READY detail becomes a table of "address port" strings.
int k_resolved(lua_State *L, int, lua_KContext) {
  if (lua_tointeger(L, -2) != LEV_READY) return 2;
  size_t len = 0;
  const char *records = lua_tolstring(L, -1, &len);
  if (records == nullptr || len == 0 || len % sizeof(sockaddr_storage) != 0) {
    return luaL_error(L, "bad resolve detail of %d bytes", static_cast<int>(len));
  }
  size_t n = len / sizeof(sockaddr_storage);
  lua_createtable(L, static_cast<int>(n), 0);
  for (size_t i = 0; i < n; i++) {
    sockaddr_storage ss;
    std::memcpy(&ss, records + i * sizeof(ss), sizeof(ss));
    char text[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss.ss_family == AF_INET) {
      const auto *sin = reinterpret_cast<const sockaddr_in *>(&ss);
      inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
      port = ntohs(sin->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      const auto *sin6 = reinterpret_cast<const sockaddr_in6 *>(&ss);
      inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
      port = ntohs(sin6->sin6_port);
    }
    lua_pushfstring(L, "%s %d", text, static_cast<int>(port));
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_replace(L, -2);
  return 2;
}

// seam.resolve(host, port, timeout|nil) -> outcome, {addresses} | message | nil
int l_resolve(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  const char *port = luaL_checkstring(L, 2);
  double deadline = deadline_arg(L, 3);
  // host and port stay on the stack (alive) while the lookup runs; the runtime copies them.
  return api(L)->resolve(L, host, port, deadline, 0, k_resolved);
}

int l_cancel(lua_State *L) {
  api(L)->cancel_fd(L, static_cast<int>(luaL_checkinteger(L, 1)));
  return 0;
}

int l_can_wait(lua_State *L) {
  lua_pushboolean(L, api(L)->can_wait(L));
  return 1;
}

int l_now(lua_State *L) {
  lua_pushnumber(L, api(L)->now(L));
  return 1;
}

int l_socketpair(lua_State *L) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    return luaL_error(L, "socketpair: %s", std::strerror(errno));
  }
  lua_pushinteger(L, fds[0]);
  lua_pushinteger(L, fds[1]);
  return 2;
}

int l_write(lua_State *L) {
  size_t len = 0;
  const char *data = luaL_checklstring(L, 2, &len);
  ssize_t n = write(static_cast<int>(luaL_checkinteger(L, 1)), data, len);
  if (n < 0) return luaL_error(L, "write: %s", std::strerror(errno));
  lua_pushinteger(L, n);
  return 1;
}

int l_close(lua_State *L) {
  if (close(static_cast<int>(luaL_checkinteger(L, 1))) != 0) {
    return luaL_error(L, "close: %s", std::strerror(errno));
  }
  return 0;
}

int l_pending_lookups(lua_State *L) {
  lua_pushinteger(L, static_cast<lua_Integer>(lev::pending_lookups(L)));
  return 1;
}

// An embedded interpreter with `lev` (as a global too) and the `seam` test functions.
struct State {
  lua_State *L;
  State() : L(luaL_newstate()) {
    luaL_openlibs(L);
    luaL_requiref(L, "lev", lev::open_module, 0);
    lua_setglobal(L, "lev");
    static const luaL_Reg fns[] = {{"wait", l_wait},
                                   {"wait_until", l_wait_until},
                                   {"resolve", l_resolve},
                                   {"cancel", l_cancel},
                                   {"can_wait", l_can_wait},
                                   {"now", l_now},
                                   {"socketpair", l_socketpair},
                                   {"write", l_write},
                                   {"close", l_close},
                                   {"pending_lookups", l_pending_lookups},
                                   {nullptr, nullptr}};
    luaL_newlib(L, fns);
    lua_pushinteger(L, LEV_READ);
    lua_setfield(L, -2, "READ");
    lua_pushinteger(L, LEV_WRITE);
    lua_setfield(L, -2, "WRITE");
    lua_pushinteger(L, LEV_READY);
    lua_setfield(L, -2, "READY");
    lua_pushinteger(L, LEV_TIMEOUT);
    lua_setfield(L, -2, "TIMEOUT");
    lua_pushinteger(L, LEV_CANCELLED);
    lua_setfield(L, -2, "CANCELLED");
    lua_pushinteger(L, LEV_FAILED);
    lua_setfield(L, -2, "FAILED");
    lua_setglobal(L, "seam");
  }
  ~State() { lua_close(L); }
  State(const State &) = delete;
  State &operator=(const State &) = delete;

  // Runs a chunk; returns "" or the error message.
  std::string run(const char *code) {
    std::string err;
    if (luaL_dostring(L, code) != LUA_OK) {
      const char *msg = lua_tostring(L, -1);
      err = msg != nullptr ? msg : "(non-string error)";
    }
    lua_settop(L, 0);
    return err;
  }
};

}  // namespace

TEST_CASE("seam: resolve whose deadline passes first drops the late answer", "[seam]") {
  // The first use of the threadpool in this process (see kThreadpoolOfOne): its single thread
  // is kept busy 300 ms by a private loop, so the lookup queued behind it cannot answer
  // before its 50 ms deadline.
  REQUIRE(kThreadpoolOfOne);
  uv_loop_t busy_loop;
  REQUIRE(uv_loop_init(&busy_loop) == 0);
  uv_work_t busy;
  auto occupy = [&] {
    REQUIRE(uv_queue_work(
                &busy_loop, &busy, [](uv_work_t *) { usleep(300 * 1000); },
                [](uv_work_t *, int) {}) == 0);
  };
  State s;

  SECTION("the answer arrives while the loop still runs") {
    occupy();
    REQUIRE(s.run(R"(
      lev.run(function()
        local t0 = lev.now()
        local outcome, detail = seam.resolve("localhost", "80", 0.05)
        local elapsed = lev.now() - t0
        assert(outcome == seam.TIMEOUT, "outcome " .. tostring(outcome))
        assert(detail == nil)
        assert(elapsed >= 0.05 and elapsed < 0.25, "elapsed " .. elapsed)
        assert(seam.pending_lookups() == 1, "the lookup is still queued")
        -- wait, with a deadline, for the late answer to arrive and be dropped
        local limit = lev.now() + 5
        while seam.pending_lookups() > 0 and lev.now() < limit do lev.sleep(0.005) end
        assert(seam.pending_lookups() == 0, "the late answer never came")
      end)
    )") == "");
  }
  SECTION("lev.run ends first: the queued lookup is cancelled") {
    occupy();
    REQUIRE(s.run(R"(
      local t0 = lev.now()
      lev.run(function()
        local outcome = seam.resolve("localhost", "80", 0.05)
        assert(outcome == seam.TIMEOUT, "outcome " .. tostring(outcome))
        assert(seam.pending_lookups() == 1)
      end)
      -- cancelled while queued: lev.run did not wait for the busy pool thread
      local elapsed = lev.now() - t0
      assert(elapsed < 0.25, "lev.run waited " .. elapsed)
    )") == "");
  }
  uv_run(&busy_loop, UV_RUN_DEFAULT);
  REQUIRE(uv_loop_close(&busy_loop) == 0);
}

TEST_CASE("seam: published in the registry, usable outside a loop where documented", "[seam]") {
  State s;
  const lev_api *a = lev_get_api(s.L);
  REQUIRE(a != nullptr);
  CHECK(a->version >= 1u);
  CHECK(std::string(a->name) == "lev/libuv");
  double t0 = a->now(s.L);
  double t1 = a->now(s.L);
  CHECK(t1 >= t0);
  CHECK(a->can_wait(s.L) == 0);
  a->cancel_fd(s.L, 0);  // no loop: a no-op
  CHECK(s.run(R"(assert(seam.can_wait() == false))") == "");
  std::string err = s.run("seam.wait(0, seam.READ, 1)");
  CHECK(err.find("lev_api.wait_fd must be used within lev.run()") != std::string::npos);
  err = s.run("seam.wait_until(seam.now() + 1)");
  CHECK(err.find("lev_api.wait_until must be used within lev.run()") != std::string::npos);
  err = s.run(R"(seam.resolve("localhost", "80", 1))");
  CHECK(err.find("lev_api.resolve must be used within lev.run()") != std::string::npos);
}

TEST_CASE("seam: can_wait is true only in a task's own coroutine where it can yield", "[seam]") {
  State s;
  REQUIRE(s.run(R"(
    lev.run(function()
      assert(seam.can_wait() == true, "main task")
      assert(lev.spawn(function() return seam.can_wait() end):join() == true, "spawned")
      assert(coroutine.wrap(function() return seam.can_wait() end)() == false, "nested")
      local inside_sort
      table.sort({ 2, 1 }, function(x, y) inside_sort = seam.can_wait(); return x < y end)
      assert(inside_sort == false, "C-call boundary")
      local ok, err = coroutine.wrap(function() return pcall(seam.wait_until, seam.now()) end)()
      assert(not ok and err:find("must be used within lev.run", 1, true), err)
    end)
  )") == "");
}

TEST_CASE("seam: wait_fd readiness on a socketpair", "[seam]") {
  State s;
  REQUIRE(s.run(R"(
    local a, b = seam.socketpair()
    lev.run(function()
      -- an empty socket buffer: writable at once
      local n = select("#", seam.wait(a, seam.WRITE, 1))
      assert(n == 2, "exactly two values, got " .. n)
      local outcome, detail = seam.wait(a, seam.WRITE, 1)
      assert(outcome == seam.READY and detail == nil)
      -- not readable until the peer writes
      local readable_at
      local reader = lev.spawn(function()
        local o = seam.wait(a, seam.READ, 5)
        readable_at = lev.now()
        return o
      end)
      lev.sleep(0.02)
      assert(readable_at == nil, "readable before anything was written")
      local wrote_at = lev.now()
      seam.write(b, "x")
      assert(reader:join() == seam.READY)
      assert(readable_at >= wrote_at)
      -- both directions at once
      assert(seam.wait(a, seam.READ | seam.WRITE, 1) == seam.READY)
    end)
    seam.close(a)
    seam.close(b)
  )") == "");
}

TEST_CASE("seam: wait_fd times out when no data comes", "[seam]") {
  State s;
  REQUIRE(s.run(R"(
    local a, b = seam.socketpair()
    lev.run(function()
      local t0 = lev.now()
      local outcome, detail = seam.wait(a, seam.READ, 0.05)
      local elapsed = lev.now() - t0
      assert(outcome == seam.TIMEOUT, "outcome " .. outcome)
      assert(detail == nil)
      assert(elapsed >= 0.05 and elapsed < 0.5, "elapsed " .. elapsed)
      -- the fd is free again: a new wait on it works
      seam.write(b, "y")
      assert(seam.wait(a, seam.READ, 1) == seam.READY)
    end)
    seam.close(a)
    seam.close(b)
  )") == "");
}

TEST_CASE("seam: cancel_fd from another task, then close, ends the wait with CANCELLED", "[seam]") {
  State s;
  REQUIRE(s.run(R"(
    local a, b = seam.socketpair()
    lev.run(function()
      local waiter = lev.spawn(function() return seam.wait(a, seam.READ, 5) end)
      lev.sleep(0.01)
      seam.cancel(a)
      seam.close(a) -- at once: the loop no longer watches it
      seam.cancel(a) -- nothing waits any more: a no-op
      seam.cancel(12345) -- never waited on: a no-op
      local outcome, detail = waiter:join()
      assert(outcome == seam.CANCELLED, "outcome " .. outcome)
      assert(detail == nil)
      -- the fd number may be reused right away
      local c, d = seam.socketpair()
      seam.write(d, "z")
      assert(seam.wait(c, seam.READ, 1) == seam.READY)
      seam.close(c)
      seam.close(d)
    end)
    seam.close(b)
  )") == "");
}

TEST_CASE("seam: one outcome per wait, even when data and cancel_fd come in the same turn",
          "[seam]") {
  State s;
  REQUIRE(s.run(R"(
    local a, b = seam.socketpair()
    lev.run(function()
      local waiter = lev.spawn(function()
        local first = seam.wait(a, seam.READ, 5)
        -- a second wait must not be ended by anything left over from the first
        local t0 = seam.now()
        local second = seam.wait_until(t0 + 0.03)
        return first, second, seam.now() - t0
      end)
      lev.sleep(0.01)
      seam.write(b, "x") -- readable now, but the loop has not polled yet
      seam.cancel(a)
      local first, second, waited = waiter:join()
      assert(first == seam.CANCELLED, "first " .. first)
      assert(second == seam.TIMEOUT, "second " .. second)
      assert(waited >= 0.03, "second wait ended early: " .. waited)
    end)
    seam.close(a)
    seam.close(b)
  )") == "");
}

TEST_CASE("seam: the peer closing its end makes the wait READY", "[seam]") {
  State s;
  REQUIRE(s.run(R"(
    local a, b = seam.socketpair()
    lev.run(function()
      local waiter = lev.spawn(function() return seam.wait(a, seam.READ, 5) end)
      lev.sleep(0.01)
      seam.close(b)
      assert(waiter:join() == seam.READY)
    end)
    seam.close(a)
  )") == "");
}

TEST_CASE("seam: one wait per fd", "[seam]") {
  State s;
  REQUIRE(s.run(R"(
    local a, b = seam.socketpair()
    lev.run(function()
      local first = lev.spawn(function() return seam.wait(a, seam.READ, 1) end)
      lev.sleep(0)
      local ok, err = pcall(seam.wait, a, seam.READ, 1)
      assert(not ok and err:find("already waited on", 1, true), err)
      seam.write(b, "x")
      assert(first:join() == seam.READY)
      local ok2, err2 = pcall(seam.wait, a, 4, 1)
      assert(not ok2 and err2:find("invalid events", 1, true), err2)
    end)
    seam.close(a)
    seam.close(b)
  )") == "");
}

TEST_CASE("seam: 200 tasks waiting on 200 socketpairs", "[seam]") {
  State s;
  REQUIRE(s.run(R"(
    local pairs_ = {}
    for i = 1, 200 do pairs_[i] = { seam.socketpair() } end
    lev.run(function()
      local ready = 0
      local waiters = {}
      for i = 1, 200 do
        waiters[i] = lev.spawn(function()
          if seam.wait(pairs_[i][1], seam.READ, 5) == seam.READY then ready = ready + 1 end
        end)
      end
      lev.sleep(0.01)
      assert(ready == 0)
      for i = 200, 1, -1 do seam.write(pairs_[i][2], "!") end
      for i = 1, 200 do waiters[i]:join() end
      assert(ready == 200, "ready " .. ready)
    end)
    for i = 1, 200 do seam.close(pairs_[i][1]); seam.close(pairs_[i][2]) end
  )") == "");
}

TEST_CASE("seam: wait_until, and deadlines already past yield once then time out", "[seam]") {
  State s;
  REQUIRE(s.run(R"(
    lev.run(function()
      local t0 = seam.now()
      local outcome, detail = seam.wait_until(t0 + 0.03)
      assert(outcome == seam.TIMEOUT and detail == nil)
      assert(seam.now() >= t0 + 0.03)

      -- each already-past wait lets another task run before it returns
      local a, b = seam.socketpair()
      local function yields_once(fn, ...)
        local ran = false
        lev.spawn(function() ran = true end)
        local o, d = fn(...)
        assert(ran, "did not yield")
        return o, d
      end
      assert(yields_once(seam.wait_until, seam.now() - 1) == seam.TIMEOUT)
      seam.write(b, "data") -- readable, yet the deadline is past
      assert(yields_once(seam.wait, a, seam.READ, -1) == seam.TIMEOUT)
      local o, d = yields_once(seam.resolve, "localhost", "80", -1)
      assert(o == seam.TIMEOUT and d == nil)
      seam.close(a)
      seam.close(b)
    end)
  )") == "");
}

TEST_CASE("seam: resolve localhost and a name under .invalid", "[seam]") {
  State s;
  REQUIRE(s.run(R"(
    lev.run(function()
      local outcome, addrs = seam.resolve("localhost", "8080", 10)
      assert(outcome == seam.READY, "outcome " .. tostring(outcome) .. " " .. tostring(addrs))
      assert(type(addrs) == "table" and #addrs >= 1)
      local loopback = false
      for _, a in ipairs(addrs) do
        assert(a:match(" 8080$"), a)
        if a == "127.0.0.1 8080" or a == "::1 8080" then loopback = true end
      end
      assert(loopback, table.concat(addrs, ", "))

      local o2, msg = seam.resolve("no-such-host.invalid", "80", 10)
      assert(o2 == seam.FAILED, "outcome " .. tostring(o2))
      assert(type(msg) == "string" and #msg > 0)
    end)
  )") == "");
}

TEST_CASE("seam: lev never changes the process's signal handlers", "[seam]") {
  const int signals[] = {SIGPIPE, SIGCHLD, SIGINT, SIGTERM, SIGHUP};
  struct sigaction before[5];
  for (int i = 0; i < 5; i++) REQUIRE(sigaction(signals[i], nullptr, &before[i]) == 0);
  {
    State s;
    REQUIRE(s.run(R"(
      local a, b = seam.socketpair()
      lev.run(function()
        lev.spawn(function() seam.write(b, "x") end)
        assert(seam.wait(a, seam.READ, 1) == seam.READY)
        lev.sleep(0.001)
        seam.resolve("localhost", "80", 10)
      end)
      seam.close(a)
      seam.close(b)
    )") == "");
  }
  for (int i = 0; i < 5; i++) {
    struct sigaction after;
    REQUIRE(sigaction(signals[i], nullptr, &after) == 0);
    CHECK(after.sa_handler == before[i].sa_handler);
    CHECK(after.sa_flags == before[i].sa_flags);
  }
}

TEST_CASE("seam: lua_close after an abandoned run with live waits is clean", "[seam]") {
  State *s = new State;
  REQUIRE(s->run(R"(
    local a, b = seam.socketpair()
    local ok, err = pcall(lev.run, function()
      lev.spawn(function() seam.wait(a, seam.READ) end)
      lev.spawn(function() seam.wait_until(seam.now() + 10) end)
      lev.spawn(function() seam.resolve("localhost", "80", 10) end)
      lev.sleep(0.01)
      error("stop")
    end)
    assert(not ok and err:find("stop", 1, true))
    seam.close(a)
    seam.close(b)
  )") == "");
  delete s;  // lua_close: ASan/LSan check nothing leaked or was used after free
}
