// lev/task.cpp: task objects (what lev.spawn returns): creation, results, task:join().
//
// A task object is a userdata holding the Task (loop.hpp) with one user value: the task's
// coroutine, dropped once the task finished. Results (or the error value) of a finished task
// are kept in the registry until the object is collected (__gc releases them), so join()
// returns them any number of times, also after lev.run returned.
#include <cstdlib>
#include <new>

#include "lev/loop.hpp"

namespace lev {

namespace {

constexpr const char *kTaskType = "lev.task";

Task *check_task(lua_State *L, int idx) {
  return static_cast<Task *>(luaL_checkudata(L, idx, kTaskType));
}

const char *state_name(TaskState s) {
  switch (s) {
    case TaskState::kQueued:
      return "ready";
    case TaskState::kRunning:
      return "running";
    case TaskState::kWaiting:
      return "waiting";
    case TaskState::kDone:
      return "done";
    case TaskState::kFailed:
      return "failed";
    case TaskState::kAbandoned:
      return "abandoned";
  }
  return "?";
}

bool finished(const Task *t) {
  return t->state == TaskState::kDone || t->state == TaskState::kFailed;
}

// The end of a task, done or failed: off the live list, its joiners woken, the coroutine
// dropped, and the loop's reference released (the object lives on while Lua holds it).
void retire(lua_State *L, Task *t) {
  release_timer(t);
  // Wake joiners in the order they joined (the list is newest first).
  Task *rev = nullptr;
  for (Task *j = t->joiners; j != nullptr;) {
    Task *next = j->next_joiner;
    j->next_joiner = rev;
    rev = j;
    j = next;
  }
  t->joiners = nullptr;
  for (Task *j = rev; j != nullptr;) {
    Task *next = j->next_joiner;
    j->next_joiner = nullptr;
    j->join_target = nullptr;
    wake(j);
    j = next;
  }
  remove_live(t);
  t->loop = nullptr;
  t->co = nullptr;

  lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);
  lua_pushnil(L);
  lua_setiuservalue(L, -2, 1);
  lua_pop(L, 1);
  int ref = t->self_ref;
  t->self_ref = LUA_NOREF;
  luaL_unref(L, LUA_REGISTRYINDEX, ref);  // t may be collected from here on
}

int finish_join(lua_State *L, const Task *t) {
  int n = push_results(L, t);
  if (n < 0) return lua_error(L);  // re-raise the task's error in the joiner
  return n;
}

int join_k(lua_State *L, int, lua_KContext) {
  const Task *t = check_task(L, 1);
  if (!finished(t)) return luaL_error(L, "task:join: resumed before the task finished");
  return finish_join(L, t);
}

int task_join(lua_State *L) {
  Task *t = check_task(L, 1);
  lua_settop(L, 1);
  if (finished(t)) return finish_join(L, t);
  if (t->state == TaskState::kAbandoned) {
    return luaL_error(L, "task:join: the task was abandoned (its lev.run stopped early)");
  }
  Task *self = waiting_task(L);
  if (self == nullptr) raise_cannot_wait(L, "task:join");
  if (self == t) return luaL_error(L, "task:join: a task cannot join itself");
  self->wait = WaitKind::kJoin;
  self->join_target = t;
  self->next_joiner = t->joiners;
  t->joiners = self;
  return lua_yieldk(L, 0, 0, join_k);
}

int task_tostring(lua_State *L) {
  const Task *t = check_task(L, 1);
  lua_pushfstring(L, "%s: %p (%s)", kTaskType, static_cast<const void *>(t), state_name(t->state));
  return 1;
}

int task_gc(lua_State *L) {
  Task *t = check_task(L, 1);
  int ref = t->results_ref;
  t->results_ref = LUA_NOREF;
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  return 0;
}

}  // namespace

Task *push_new_task(lua_State *L, Loop *loop, int first) {
  int top = lua_gettop(L);
  int n = top - first + 1;  // the function and its arguments
  lua_State *co = lua_newthread(L);
  auto *t = static_cast<Task *>(lua_newuserdatauv(L, sizeof(Task), 1));
  new (t) Task{};
  t->co = co;
  t->self_ref = LUA_NOREF;
  t->results_ref = LUA_NOREF;
  t->fd = -1;
  t->nargs = n - 1;
  t->state = TaskState::kQueued;
  luaL_setmetatable(L, kTaskType);
  lua_pushvalue(L, top + 1);
  lua_setiuservalue(L, top + 2, 1);
  if (!lua_checkstack(co, n)) luaL_error(L, "lev.spawn: too many arguments");
  lua_rotate(L, first, 2);  // [thread, task, fn, args...]
  lua_xmove(L, co, n);
  lua_remove(L, -2);  // the thread: the task's user value holds it
  lua_pushvalue(L, -1);
  t->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  add_live(loop, t);
  return t;
}

void finish_task(lua_State *L, Task *t, int nres) {
  lua_State *co = t->co;
  luaL_checkstack(L, nres + 2, "too many results");
  lua_xmove(co, L, nres);
  if (nres == 1) {
    t->results_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  } else if (nres > 1) {
    int base = lua_gettop(L) - nres;
    lua_createtable(L, nres, 1);
    for (int i = 1; i <= nres; i++) {
      lua_pushvalue(L, base + i);
      lua_rawseti(L, -2, i);
    }
    t->results_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, base);
  }
  t->nresults = nres;
  t->state = TaskState::kDone;
  retire(L, t);
}

void fail_task(lua_State *L, Task *t) {
  lua_State *co = t->co;
  // Close the failed coroutine's to-be-closed variables; the error value stays on top of its
  // stack (or the error of a failing __close replaces it, as coroutine.close() reports).
  lua_resetthread(co);
  if (lua_gettop(co) == 0) lua_pushnil(co);
  luaL_checkstack(L, 1, nullptr);
  lua_xmove(co, L, 1);
  t->results_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  t->nresults = 0;
  t->state = TaskState::kFailed;
  retire(L, t);
}

int push_results(lua_State *L, const Task *t) {
  if (t->state == TaskState::kFailed) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->results_ref);
    return -1;
  }
  int n = t->nresults;
  if (n == 0) return 0;
  luaL_checkstack(L, n + 1, "too many results");
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->results_ref);
  if (n == 1) return 1;
  int table = lua_gettop(L);
  for (int i = 1; i <= n; i++) lua_rawgeti(L, table, i);
  lua_remove(L, table);
  return n;
}

void register_task_type(lua_State *L) {
  if (luaL_newmetatable(L, kTaskType)) {
    static const luaL_Reg methods[] = {{"join", task_join}, {nullptr, nullptr}};
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, task_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, task_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}

}  // namespace lev
