// alloc_failure_test.cpp: Lua allocation failures across a whole connect-and-stream
// (issue 6, item 5).
//
// Each run is a fresh lua_State whose lua_Alloc fails on purpose, loading lev and http and
// streaming a small SSE response from a local server (alloc_sse_server.hpp) inside lev.run.
// For every N, one of three failure modes (Mode below):
//   - only the Nth allocation fails. Lua 5.4 answers a failed allocation with an emergency
//     full collection and one retry, which then succeeds: this mostly tests that path;
//   - the Nth allocation and its retries fail: a failure the emergency collection cannot
//     cure, as when memory is really short, so it reaches whatever called the allocator;
//   - every allocation from the Nth on fails: then error handlers and teardown have no
//     memory either.
// Whatever N and the mode are, a run must:
//   - end, under the test's lua_pcall, either OK with the complete transcript (the failure
//     hit something that recovered, e.g. Lua's emergency collection) or with an error value
//     that is a string mentioning memory ("not enough memory", or a module's own message);
//   - after lua_close, have freed every byte the Lua allocator handed out;
//   - leave no fd open (the process's /proc/self/fd entries are back to the count before).
// A crash or an abort fails the whole executable; C++ heap leaks (a longjmp over a live C++
// object, a malloc'd buffer dropped on an error path) are LeakSanitizer's job in the
// -DLEVHTTP_SANITIZE=ON build, where this test runs too.
//
// Reproduce one N: LEVHTTP_ALLOC_N=<n> core_tests "[alloc]" runs only that N (in each mode)
// and prints what happened; with LEVHTTP_ALLOC_TRACE=1 too, the stack of the first failed
// allocation (symbolized in the sanitizer build).
#include <dirent.h>
#include <execinfo.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "alloc_sse_server.hpp"
#include "lev/runtime.hpp"
#include "lua/http_module.hpp"

// LeakSanitizer (the -DLEVHTTP_SANITIZE=ON build): lua-cjson 2.1.0's decode keeps a malloc'd
// scratch buffer (strbuf_new) that it frees only on its normal and parse-error paths, so a Lua
// memory error inside cjson.safe.decode leaks it. That is lua-cjson's, not ours: ignore leaks
// allocated inside cjson.so and nothing else.
extern "C" const char *__lsan_default_suppressions() {
  return "leak:cjson.so\n";
}

namespace {

// The Lua side of a run, given the URLs to stream from: inside lev.run, a client per URL with
// every callback noted, then the odd paths (a dropped client, an argument error, the parser,
// a joined task and a failing one). Returns the transcript, one line per thing noted. A
// memory error that a pcall here catches is raised again: it is the run's outcome.
constexpr const char kChunk[] = R"lua(
local urls = {...}
local lev = require("lev")
local http = require("http")
local lines = {}
local function note(...)
  local parts = table.pack(...)
  for i = 1, parts.n do parts[i] = tostring(parts[i]) end
  lines[#lines + 1] = table.concat(parts, " ", 1, parts.n)
end
local function stream(url)
  local c <close> = http.sse_client(url, {recv_timeout = 5, headers = {["X-Test"] = "alloc"}}, {
    connect = function() note("connect") end,
    open = function(status, headers) note("open", status, headers["content-type"]) end,
    message = function(data, ev)
      if type(data) == "table" then
        note("json", data.s or ("#" .. #data), "id=" .. ev.id)
      else
        note("message", data, "id=" .. ev.id)
      end
    end,
    tick = function(data, ev)
      lev.sleep(0)  -- a callback that yields
      note("tick", data, "id=" .. ev.id, "retry=" .. tostring(ev.retry))
    end,
    error = function(msg, status, kind) note("error", kind, status, msg) end,
    close = function() note("close") end,
  })
  local ok, err, _, kind = c:connect()
  if not ok then note("connect failed", kind, err) end
  while c:update() do end
end
lev.run(function()
  local helper = lev.spawn(function(x)
    lev.sleep(0)
    return x * 2
  end, 21)
  for _, url in ipairs(urls) do stream(url) end
  -- A client dropped while connected: closed by its __gc, without callbacks.
  do
    local c = http.sse_client(urls[1], nil, {close = function() note("close") end})
    note("dropped client connects", c:connect())
  end
  collectgarbage()
  -- An argument error: the half-built client is collected, the message names the option.
  local ok, err = pcall(http.sse_client, urls[1], {recv_timout = 1})
  if not tostring(err):find("unknown option 'recv_timout'", 1, true) then error(err, 0) end
  note("bad option", ok)
  local parser = http.sse_parser()
  local events = parser:feed("id: 1\ndata: a\n\ndata: b")
  note("parser", #events, events[1].data, parser:last_event_id())
  note("joined", helper:join())
  -- A task that fails while joined: its error goes to the joiner, not to lev.run.
  local failing = lev.spawn(function() error("boom", 0) end)
  ok, err = pcall(failing.join, failing)
  -- The task may have failed for want of memory instead: that error is the run's outcome.
  if err ~= "boom" then error(err, 0) end
  note("failed task", ok, err)
end)
return table.concat(lines, "\n")
)lua";

// What kChunk returns for one stream from the server when nothing fails.
#define EXPECTED_STREAM          \
  "connect\n"                    \
  "open 200 text/event-stream\n" \
  "message hello id=\n"          \
  "tick 1 id=7 retry=1500\n"     \
  "json two id=7\n"              \
  "json #3 id=7\n"               \
  "message line1\nline2 id=7\n"  \
  "close\n"

// Three requests: a stream by address (no name lookup), the same by name (lev's resolve
// through the seam), and a 401 (the error path: error body, error callback, nil from connect);
// then a client dropped while connected, an argument error, the parser, and the two tasks.
constexpr const char kExpectedTranscript[] = EXPECTED_STREAM EXPECTED_STREAM
    "connect\n"
    "error http 401 HTTP 401: {\"error\":\"no key\"}\n"
    "close\n"
    "connect failed http HTTP 401: {\"error\":\"no key\"}\n"
    "dropped client connects true\n"
    "bad option false\n"
    "parser 1 a 1\n"
    "joined 42\n"
    "failed task false boom";

enum class Mode {
  kOnlyNth,        // the Nth allocation fails
  kNthAndRetries,  // the Nth allocation fails, and so does each immediate retry of it
  kFromNth         // the Nth and every later allocation fail
};

const char *mode_name(Mode m) {
  switch (m) {
    case Mode::kOnlyNth:
      return "fail the Nth only";
    case Mode::kNthAndRetries:
      return "fail the Nth and its retries";
    case Mode::kFromNth:
      return "fail from the Nth on";
  }
  return "?";
}

// The allocator under test. Every call with nsize > 0 is an allocation (realloc included, as
// Lua may get NULL for any of them); `live` is the bytes handed out and not yet freed.
struct AllocState {
  std::size_t count = 0;    // allocations so far
  std::size_t fail_at = 0;  // 0: never fail
  Mode mode = Mode::kOnlyNth;
  std::size_t failures = 0;
  long long live = 0;
  bool trace = false;  // print the stack of the first failed allocation
  // The request that failed last (kNthAndRetries): the same request again is its retry.
  bool retrying = false;
  void *failed_ptr = nullptr;
  std::size_t failed_osize = 0, failed_nsize = 0;
};

bool should_fail(AllocState *s, void *ptr, std::size_t osize, std::size_t nsize) {
  if (s->fail_at == 0) return false;
  switch (s->mode) {
    case Mode::kOnlyNth:
      return s->count == s->fail_at;
    case Mode::kFromNth:
      return s->count >= s->fail_at;
    case Mode::kNthAndRetries:
      if (s->count == s->fail_at || (s->retrying && ptr == s->failed_ptr &&
                                     osize == s->failed_osize && nsize == s->failed_nsize)) {
        s->retrying = true;
        s->failed_ptr = ptr;
        s->failed_osize = osize;
        s->failed_nsize = nsize;
        return true;
      }
      s->retrying = false;
      return false;
  }
  return false;
}

// The sanitizer runtime's symbolizing stack printer, when linked in (-DLEVHTTP_SANITIZE=ON).
extern "C" void __sanitizer_print_stack_trace() __attribute__((weak));

void print_stack() {
  std::fprintf(stderr, "alloc_failure_test: the first failed allocation was made from:\n");
  if (__sanitizer_print_stack_trace != nullptr) {
    __sanitizer_print_stack_trace();
    return;
  }
  void *frames[64];
  int n = backtrace(frames, 64);
  backtrace_symbols_fd(frames, n, 2);  // addresses: resolve them with addr2line
}

void *failing_alloc(void *ud, void *ptr, std::size_t osize, std::size_t nsize) {
  auto *s = static_cast<AllocState *>(ud);
  std::size_t old = ptr != nullptr ? osize : 0;  // for a new block osize is a type tag
  if (nsize == 0) {
    s->live -= static_cast<long long>(old);
    std::free(ptr);
    return nullptr;
  }
  s->count++;
  if (should_fail(s, ptr, osize, nsize)) {
    if (s->failures == 0 && s->trace) print_stack();
    s->failures++;
    return nullptr;
  }
  void *p = std::realloc(ptr, nsize);
  if (p != nullptr) s->live += static_cast<long long>(nsize) - static_cast<long long>(old);
  return p;
}

// An unprotected error: the state cannot be used any more. Say which run it was and stop.
thread_local std::size_t g_current_n = 0;
thread_local Mode g_current_mode = Mode::kOnlyNth;

int on_panic(lua_State *L) {
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)";
  std::fprintf(stderr, "alloc_failure_test: PANIC (unprotected Lua error) at N=%zu (%s): %s\n",
               g_current_n, mode_name(g_current_mode), msg);
  std::abort();
}

// Runs in the test's lua_pcall: everything that may raise, the setup included.
int protected_main(lua_State *L) {
  const auto *urls = static_cast<const std::vector<std::string> *>(lua_touserdata(L, 1));
  luaL_openlibs(L);
  luaL_requiref(L, "lev", lev::open_module, 0);
  lua_pop(L, 1);
  luaL_requiref(L, "http", levhttp::lua::open_module, 0);
  lua_pop(L, 1);
  if (luaL_loadbuffer(L, kChunk, sizeof kChunk - 1, "=alloc_chunk") != LUA_OK) lua_error(L);
  for (const std::string &url : *urls) lua_pushstring(L, url.c_str());
  lua_call(L, static_cast<int>(urls->size()), 1);
  return 1;
}

struct RunResult {
  bool created = false;  // lua_newstate succeeded
  int status = LUA_OK;
  bool message_is_string = false;
  std::string message;  // the transcript, or the error message
  std::size_t allocations = 0;
  std::size_t failures = 0;
  long long live_after_close = 0;
};

RunResult run_once(const std::vector<std::string> &urls, std::size_t fail_at, Mode mode) {
  AllocState state;
  state.fail_at = fail_at;
  state.mode = mode;
  state.trace = std::getenv("LEVHTTP_ALLOC_TRACE") != nullptr;
  g_current_n = fail_at;
  g_current_mode = mode;
  RunResult r;
  lua_State *L = lua_newstate(failing_alloc, &state);
  if (L != nullptr) {
    r.created = true;
    lua_atpanic(L, on_panic);
    // Neither pushes allocate: the new state's stack has room for a few values.
    lua_pushcfunction(L, protected_main);
    lua_pushlightuserdata(L, const_cast<std::vector<std::string> *>(&urls));
    r.status = lua_pcall(L, 1, 1, 0);
    r.message_is_string = lua_type(L, -1) == LUA_TSTRING;
    if (r.message_is_string) r.message = lua_tostring(L, -1);
    lua_close(L);
  }
  r.allocations = state.count;
  r.failures = state.failures;
  r.live_after_close = state.live;
  return r;
}

// The open fds of the process: number -> what it points to.
std::map<int, std::string> open_fds() {
  std::map<int, std::string> fds;
  DIR *d = opendir("/proc/self/fd");
  if (d == nullptr) return fds;
  int self = dirfd(d);
  while (const dirent *e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::atoi(e->d_name);
    if (fd == self) continue;
    char target[256] = "";
    std::string path = std::string("/proc/self/fd/") + e->d_name;
    ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
    if (n > 0) target[n] = '\0';
    fds[fd] = target;
  }
  closedir(d);
  return fds;
}

std::string fd_diff(const std::map<int, std::string> &before,
                    const std::map<int, std::string> &after) {
  std::string out;
  for (const auto &[fd, what] : after) {
    auto it = before.find(fd);
    if (it == before.end() || it->second != what) {
      out += " +" + std::to_string(fd) + "=" + what;
    }
  }
  for (const auto &[fd, what] : before) {
    if (after.find(fd) == after.end()) out += " -" + std::to_string(fd) + "=" + what;
  }
  return out;
}

constexpr double kServerIdleSeconds = 10;

// "not enough memory" (LUA_ERRMEM), "...: out of memory", lua-cjson's "Memory allocation
// error in CJSON protected call": any letter case.
bool mentions_memory(const std::string &message) {
  std::string lower = message;
  for (char &ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return lower.find("memory") != std::string::npos;
}

// One run at N, checked. Returns "" when clean, else what went wrong.
std::string check_run(alloc_test::SseServer &server, std::size_t n, Mode mode,
                      RunResult *out = nullptr) {
  if (!server.wait_idle(kServerIdleSeconds)) return "the server is still busy before the run";
  auto fds_before = open_fds();
  std::string denied = server.url().substr(0, server.url().rfind('/')) + "/denied";
  RunResult r = run_once({server.url(), server.url_by_name(), denied}, n, mode);
  if (out != nullptr) *out = r;
  std::string problems;
  if (r.live_after_close != 0) {
    problems +=
        "; " + std::to_string(r.live_after_close) + " Lua bytes still allocated after lua_close";
  }
  if (r.created) {
    if (!r.message_is_string) {
      problems += "; the pcall result is not a string (status " + std::to_string(r.status) + ")";
    } else if (r.status == LUA_OK) {
      if (r.message != kExpectedTranscript) {
        std::string flat = r.message;
        for (char &ch : flat) {
          if (ch == '\n') ch = '|';
        }
        problems += "; OK but the transcript differs: " + flat;
      }
    } else if (!mentions_memory(r.message)) {
      problems += "; error status " + std::to_string(r.status) +
                  " whose message does not mention memory: " + r.message;
    }
  }
  // The client's fds are closed by lua_close; the server may still hold its end for a moment.
  if (!server.wait_idle(kServerIdleSeconds)) problems += "; the server stayed busy after the run";
  auto fds_after = open_fds();
  if (fds_after != fds_before)
    problems += "; fds left open or changed:" + fd_diff(fds_before, fds_after);
  return problems;
}

// Every N up to kDenseUpTo, then a stride chosen so that at most kSampledRuns more N are
// tried up to `limit` (plus the last 50 N, where the teardown allocates). A run makes about
// 900 allocations today, so every N is tried: the three sweeps take about 2 s (5 s with
// sanitizers); the stride only keeps the runtime bounded if a run grows past 2,000.
constexpr std::size_t kDenseUpTo = 2000;
constexpr std::size_t kSampledRuns = 1500;

std::vector<std::size_t> sample_points(std::size_t limit) {
  std::vector<std::size_t> ns;
  for (std::size_t n = 1; n <= limit && n <= kDenseUpTo; n++) ns.push_back(n);
  if (limit > kDenseUpTo) {
    std::size_t stride = (limit - kDenseUpTo) / kSampledRuns + 1;
    for (std::size_t n = kDenseUpTo + stride; n <= limit; n += stride) ns.push_back(n);
    std::size_t tail = limit > 50 ? limit - 50 : 1;
    for (std::size_t n = std::max(tail, kDenseUpTo + 1); n <= limit; n++) {
      if (ns.back() < n) ns.push_back(n);
    }
  }
  return ns;
}

std::size_t env_n() {
  const char *v = std::getenv("LEVHTTP_ALLOC_N");
  return v != nullptr ? static_cast<std::size_t>(std::strtoull(v, nullptr, 10)) : 0;
}

void sweep(alloc_test::SseServer &server, Mode mode, std::size_t limit) {
  std::vector<std::size_t> ns;
  if (std::size_t one = env_n(); one != 0) {
    ns.push_back(one);
  } else {
    ns = sample_points(limit);
  }
  // Problems, runs of consecutive N with the same one merged: (first N, last N, what).
  struct Problem {
    std::size_t first, last;
    std::string what;
  };
  std::vector<Problem> problems;
  std::size_t bad_runs = 0;
  std::size_t ok_runs = 0, error_runs = 0;
  auto started = std::chrono::steady_clock::now();
  for (std::size_t n : ns) {
    RunResult r;
    std::string p = check_run(server, n, mode, &r);
    if (r.created && r.status == LUA_OK) {
      ok_runs++;
    } else {
      error_runs++;
    }
    if (env_n() != 0) {
      std::fprintf(stderr, "N=%zu %s: created=%d status=%d allocations=%zu failures=%zu\n%s\n%s\n",
                   n, mode_name(mode), r.created, r.status, r.allocations, r.failures,
                   r.message.c_str(), p.empty() ? "clean" : p.c_str());
    }
    if (p.empty()) continue;
    bad_runs++;
    if (!problems.empty() && problems.back().what == p) {
      problems.back().last = n;
    } else {
      problems.push_back({n, n, p});
    }
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fprintf(stderr,
               "alloc_failure_test [%s]: %zu values of N up to %zu in %.1f s: %zu OK, %zu memory "
               "errors, %zu with problems\n",
               mode_name(mode), ns.size(), ns.back(), seconds, ok_runs, error_runs, bad_runs);
  for (std::size_t i = 0; i < problems.size() && i < 40; i++) {
    const Problem &pr = problems[i];
    std::string range = pr.first == pr.last
                            ? std::to_string(pr.first)
                            : std::to_string(pr.first) + ".." + std::to_string(pr.last);
    UNSCOPED_INFO(std::string(mode_name(mode)) + ", N=" + range + pr.what);
  }
  CHECK(bad_runs == 0);
}

// The allocations a clean run makes, counted once per process (the sweeps cover a little
// more, as the count varies slightly with I/O timing).
std::size_t counted_allocations(alloc_test::SseServer &server) {
  static std::size_t counted = [&server] {
    RunResult r;
    std::string p = check_run(server, 0, Mode::kOnlyNth, &r);
    return p.empty() && r.status == LUA_OK ? r.allocations : std::size_t{0};
  }();
  return counted;
}

}  // namespace

TEST_CASE("a clean connect-and-stream run is counted", "[alloc]") {
  alloc_test::SseServer server;
  RunResult r;
  // Twice: the first run also makes process-wide one-time allocations (libuv's threadpool
  // and signal pipe, the dlopen of cjson.so), which would show as fds opened by the run.
  check_run(server, 0, Mode::kOnlyNth);
  std::string p = check_run(server, 0, Mode::kOnlyNth, &r);
  INFO(p);
  CHECK(p.empty());
  CHECK(r.created);
  CHECK(r.status == LUA_OK);
  CHECK(r.message == kExpectedTranscript);
  CHECK(r.failures == 0);
  CHECK(r.allocations > 100);  // the counting allocator sees the run
  std::fprintf(stderr, "alloc_failure_test: a clean run makes %zu Lua allocations\n",
               r.allocations);
}

TEST_CASE("the fd check of a run sees an fd left open", "[alloc]") {
  auto before = open_fds();
  int fd = dup(2);
  REQUIRE(fd >= 0);
  auto after = open_fds();
  close(fd);
  CHECK(after != before);
  CHECK(fd_diff(before, after).find("+" + std::to_string(fd) + "=") != std::string::npos);
  CHECK(open_fds() == before);
}

TEST_CASE("the Nth Lua allocation fails for every N of a run", "[alloc]") {
  alloc_test::SseServer server;
  check_run(server, 0, Mode::kOnlyNth);  // warm-up, as above
  std::size_t total = counted_allocations(server);
  REQUIRE(total > 0);
  sweep(server, Mode::kOnlyNth, total + total / 10);
}

TEST_CASE("the Nth Lua allocation and its retries fail for every N of a run", "[alloc]") {
  alloc_test::SseServer server;
  check_run(server, 0, Mode::kOnlyNth);  // warm-up, as above
  std::size_t total = counted_allocations(server);
  REQUIRE(total > 0);
  sweep(server, Mode::kNthAndRetries, total + total / 10);
}

TEST_CASE("every Lua allocation from the Nth on fails for every N of a run", "[alloc]") {
  alloc_test::SseServer server;
  check_run(server, 0, Mode::kOnlyNth);  // warm-up, as above
  std::size_t total = counted_allocations(server);
  REQUIRE(total > 0);
  sweep(server, Mode::kFromNth, total + total / 10);
}
