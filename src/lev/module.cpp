// lev/module.cpp: luaopen_lev (lev::open_module): lev.run, lev.spawn, lev.sleep, lev.now, and
// the per-state Runtime that owns the running loop.
//
// lev.run creates the loop, then runs the main task and the driver inside a protected call,
// so that whatever ends the run (success, a task's error, a deadlock, even a memory error)
// reaches the same teardown: abandoned tasks reset, every handle closed, the libuv loop closed.
// Only then does it return the main task's results or raise.
#include <cmath>

#include "lev/lev.h"
#include "lev/loop.hpp"
#include "lev/runtime.hpp"

namespace lev {

namespace {

const char kRuntimeKey = 0;  // its address keys the Runtime in the registry
constexpr const char *kRuntimeType = "lev.runtime";

// lua_close (or a collected runtime): stop any loop still held, without running Lua code.
int runtime_gc(lua_State *L) {
  auto *rt = static_cast<Runtime *>(luaL_checkudata(L, 1, kRuntimeType));
  destroy_loop(L, rt, false);
  return 0;
}

// Inside lev.run's protected call: [fn, args...] -> the main task's results.
int run_protected(lua_State *L) {
  Loop *loop = get_runtime(L)->loop;
  push_new_task(L, loop, 1);
  int main = lua_gettop(L);
  drive_loop(L, loop);
  const auto *t = static_cast<const Task *>(lua_touserdata(L, main));
  int n = push_results(L, t);
  if (n < 0) return lua_error(L);  // the main task failed and a joiner caught its error
  return n;
}

int lev_run(lua_State *L) {
  Runtime *rt = get_runtime(L);
  if (rt->loop != nullptr) return luaL_error(L, "lev.run cannot be nested");
  luaL_checktype(L, 1, LUA_TFUNCTION);
  int nargs = lua_gettop(L);
  Loop *loop = create_loop(L);
  if (loop == nullptr) return luaL_error(L, "lev.run: cannot create the event loop");
  rt->loop = loop;
  lua_pushcfunction(L, run_protected);
  lua_insert(L, 1);
  int status = lua_pcall(L, nargs, LUA_MULTRET, 0);
  destroy_loop(L, rt, true);
  if (status != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

int lev_spawn(lua_State *L) {
  Runtime *rt = get_runtime(L);
  if (rt->loop == nullptr) return luaL_error(L, "lev.spawn must be used within lev.run()");
  luaL_checktype(L, 1, LUA_TFUNCTION);
  push_new_task(L, rt->loop, 1);
  return 1;
}

int sleep_k(lua_State *, int, lua_KContext) {
  return 0;
}

int lev_sleep(lua_State *L) {
  if (lua_type(L, 1) != LUA_TNUMBER) {
    return luaL_error(L, "lev.sleep: seconds must be a non-negative number, got %s",
                      luaL_typename(L, 1));
  }
  double s = lua_tonumber(L, 1);
  if (!(s >= 0)) {
    return luaL_error(L, "lev.sleep: seconds must be a non-negative number, got %f", s);
  }
  Task *t = waiting_task(L);
  if (t == nullptr) raise_cannot_wait(L, "lev.sleep");
  if (s > 0) {
    // sleep(0) registers nothing: the driver puts the task at the back of the ready queue.
    t->wait = WaitKind::kSleep;
    int rc = arm_deadline(t, now_seconds() + s);  // math.huge: sleeps forever, no timer
    if (rc != 0) {
      t->wait = WaitKind::kNone;
      return luaL_error(L, "lev.sleep: %s", uv_strerror(rc));
    }
  }
  return lua_yieldk(L, 0, 0, sleep_k);
}

int lev_now(lua_State *L) {
  lua_pushnumber(L, now_seconds());
  return 1;
}

}  // namespace

Runtime *get_runtime(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kRuntimeKey);
  auto *rt = static_cast<Runtime *>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return rt;
}

[[noreturn]] void raise_cannot_wait(lua_State *L, const char *what) {
  Runtime *rt = get_runtime(L);
  if (rt != nullptr && rt->loop != nullptr && rt->loop->current != nullptr &&
      rt->loop->current->co == L) {
    luaL_error(L, "%s cannot wait here (attempt to yield across a C-call boundary)", what);
  }
  luaL_error(L, "%s must be used within lev.run()", what);
  __builtin_unreachable();
}

Task *waiting_task(lua_State *L) {
  Runtime *rt = get_runtime(L);
  if (rt == nullptr || rt->loop == nullptr) return nullptr;
  Task *t = rt->loop->current;
  if (t == nullptr || t->co != L || !lua_isyieldable(L)) return nullptr;
  return t;
}

std::size_t pending_lookups(lua_State *L) {
  Runtime *rt = get_runtime(L);
  if (rt == nullptr || rt->loop == nullptr) return 0;
  std::size_t n = 0;
  for (const Lookup *lk = rt->loop->lookups; lk != nullptr; lk = lk->next) n++;
  return n;
}

int open_module(lua_State *L) {
  if (get_runtime(L) == nullptr) {
    auto *rt = static_cast<Runtime *>(lua_newuserdatauv(L, sizeof(Runtime), 0));
    rt->loop = nullptr;
    if (luaL_newmetatable(L, kRuntimeType)) {
      lua_pushcfunction(L, runtime_gc);
      lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &kRuntimeKey);
  }
  register_task_type(L);
  // The seam: a light userdata to a static table, valid for the life of the process.
  lua_pushlightuserdata(L, const_cast<lev_api *>(published_api()));
  lua_setfield(L, LUA_REGISTRYINDEX, LEV_API_REGISTRY_KEY);

  static const luaL_Reg functions[] = {{"run", lev_run},
                                       {"spawn", lev_spawn},
                                       {"sleep", lev_sleep},
                                       {"now", lev_now},
                                       {nullptr, nullptr}};
  luaL_newlib(L, functions);
  lua_pushliteral(L, "lev/libuv");
  lua_setfield(L, -2, "_IMPLEMENTATION");
  return 1;
}

}  // namespace lev
