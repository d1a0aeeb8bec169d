// lev/loop.cpp: the ready queue, waits and their timers, the driver, and loop teardown.
// See loop.hpp for the contract.
#include "lev/loop.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "lev/lev.h"

namespace lev {

namespace {

void free_handle(uv_handle_t *h) {
  std::free(h);
}

void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, free_handle);
}

Task *dequeue(Loop *loop) {
  Task *t = loop->ready_head;
  loop->ready_head = t->ready_next;
  if (loop->ready_head == nullptr) loop->ready_tail = nullptr;
  t->ready_next = nullptr;
  loop->ready_count--;
  return t;
}

// Milliseconds until `deadline` for a libuv timer. libuv's clock is coarser than lev.now(), so
// the timer may fire a little early: timer_cb checks the deadline and re-arms.
uint64_t timeout_ms(double deadline) {
  double ms = std::ceil((deadline - now_seconds()) * 1000.0);
  if (!(ms > 0)) return 0;
  if (ms > 1e15) return static_cast<uint64_t>(1e15);  // re-armed when it fires
  return static_cast<uint64_t>(ms);
}

void timer_cb(uv_timer_t *timer) {
  Task *t = static_cast<Task *>(timer->data);
  if (t == nullptr || t->state != TaskState::kWaiting) return;
  if (now_seconds() < t->deadline) {
    uv_update_time(timer->loop);
    uv_timer_start(timer, timer_cb, timeout_ms(t->deadline), 0);
    return;
  }
  if (t->wait == WaitKind::kSleep) {
    wake(t);
  } else {
    wake_with(t, LEV_TIMEOUT, nullptr, 0);
  }
}

void unlink_joiner(Task *t) {
  Task *target = t->join_target;
  if (target == nullptr) return;
  for (Task **p = &target->joiners; *p != nullptr; p = &(*p)->next_joiner) {
    if (*p == t) {
      *p = t->next_joiner;
      break;
    }
  }
  t->join_target = nullptr;
  t->next_joiner = nullptr;
}

void close_walk_cb(uv_handle_t *h, void *) {
  close_handle(h);
}

// Resumes t once and handles what it did: yielded (waiting or plain yield), returned, or
// raised. A failure nobody joins raises the error for lev.run (a Lua error out of here).
void run_task(lua_State *L, Loop *loop, Task *t) {
  lua_State *co = t->co;
  int nargs = 0;
  if (t->nargs >= 0) {
    nargs = t->nargs;
    t->nargs = -1;
  } else if (t->resume_with == ResumeWith::kOutcome) {
    // t keeps owning the detail until it is on the coroutine's stack: if a push raises
    // (out of memory), the teardown frees it with the task.
    if (!lua_checkstack(co, 2)) luaL_error(L, "lev.run: stack overflow resuming a task");
    lua_pushinteger(co, t->outcome);
    if (t->detail != nullptr) {
      lua_pushlstring(co, t->detail, t->detail_len);
      std::free(t->detail);
      t->detail = nullptr;
    } else {
      lua_pushnil(co);
    }
    nargs = 2;
  }
  t->resume_with = ResumeWith::kNothing;
  t->state = TaskState::kRunning;
  loop->current = t;
  // A hook set on the main thread after the task was created (lua.c's SIGINT handler does
  // this for Ctrl-C) is not inherited by the coroutine: copy it, so the interrupt reaches the
  // running task instead of waiting for lev.run to return.
  if (lua_Hook hook = lua_gethook(L); hook != nullptr && lua_gethook(co) != hook)
    lua_sethook(co, hook, lua_gethookmask(L), lua_gethookcount(L));
  int nres = 0;
  int status = lua_resume(co, L, nargs, &nres);
  loop->current = nullptr;

  if (status == LUA_YIELD) {
    lua_pop(co, nres);
    if (t->state == TaskState::kRunning) {
      if (t->wait == WaitKind::kNone) {
        enqueue(t);  // coroutine.yield() or sleep(0): to the back of the queue
      } else {
        t->state = TaskState::kWaiting;
      }
    }
    return;
  }
  if (status == LUA_OK) {
    finish_task(L, t, nres);
    return;
  }
  if (t->joiners != nullptr) {
    fail_task(L, t);  // re-raised by each joiner's join(); the loop goes on
    return;
  }
  // Nobody joins: lev.run stops and raises. A string gets the failing task's traceback
  // (taken before fail_task resets the coroutine).
  if (lua_type(co, -1) == LUA_TSTRING) {
    luaL_traceback(L, co, lua_tostring(co, -1), 0);
  } else {
    lua_pushvalue(co, -1);
    lua_xmove(co, L, 1);
  }
  fail_task(L, t);
  lua_error(L);
}

}  // namespace

double now_seconds() {
  return static_cast<double>(uv_hrtime()) / 1e9;
}

void add_live(Loop *loop, Task *t) {
  t->loop = loop;
  t->live_prev = nullptr;
  t->live_next = loop->live_head;
  if (loop->live_head != nullptr) loop->live_head->live_prev = t;
  loop->live_head = t;
  loop->live_count++;
  enqueue(t);
}

void remove_live(Task *t) {
  Loop *loop = t->loop;
  if (t->live_prev != nullptr) {
    t->live_prev->live_next = t->live_next;
  } else {
    loop->live_head = t->live_next;
  }
  if (t->live_next != nullptr) t->live_next->live_prev = t->live_prev;
  t->live_prev = t->live_next = nullptr;
  loop->live_count--;
}

void enqueue(Task *t) {
  Loop *loop = t->loop;
  t->state = TaskState::kQueued;
  t->ready_next = nullptr;
  if (loop->ready_tail != nullptr) {
    loop->ready_tail->ready_next = t;
  } else {
    loop->ready_head = t;
  }
  loop->ready_tail = t;
  loop->ready_count++;
  // Woken from a libuv callback (a timer fired at the start of a UV_RUN_ONCE turn): without
  // this, libuv would go on to block in its poll until the next timer or I/O, with the task
  // ready. uv_stop makes that poll return at once; the flag resets when uv_run returns.
  if (loop->in_uv_run) uv_stop(&loop->uv);
}

void end_wait(Task *t) {
  if (t->timer != nullptr) uv_timer_stop(t->timer);
  switch (t->wait) {
    case WaitKind::kFd:
      if (t->poll != nullptr) {
        // Stopped now (not at close time), so the caller of cancel_fd may close the fd at once.
        uv_poll_stop(t->poll);
        t->poll->data = nullptr;
        close_handle(reinterpret_cast<uv_handle_t *>(t->poll));
        t->poll = nullptr;
      }
      if (t->loop != nullptr) t->loop->fd_waits.erase(t->fd);
      t->fd = -1;
      break;
    case WaitKind::kResolve:
      if (t->lookup != nullptr) {
        t->lookup->task = nullptr;  // the request now owns itself; its answer is dropped
        t->lookup = nullptr;
      }
      break;
    case WaitKind::kJoin:
      unlink_joiner(t);
      break;
    case WaitKind::kNone:
    case WaitKind::kSleep:
    case WaitKind::kTimer:
      break;
  }
  t->wait = WaitKind::kNone;
}

void wake(Task *t) {
  end_wait(t);
  t->resume_with = ResumeWith::kNothing;
  enqueue(t);
}

void wake_with(Task *t, int outcome, char *detail, size_t len) {
  end_wait(t);
  std::free(t->detail);
  t->resume_with = ResumeWith::kOutcome;
  t->outcome = outcome;
  t->detail = detail;
  t->detail_len = len;
  enqueue(t);
}

int arm_deadline(Task *t, double deadline) {
  t->deadline = deadline;
  if (deadline >= LEV_NO_DEADLINE) return 0;
  uv_loop_t *uv = &t->loop->uv;
  if (t->timer == nullptr) {
    auto *timer = static_cast<uv_timer_t *>(std::malloc(sizeof(uv_timer_t)));
    if (timer == nullptr) return UV_ENOMEM;
    uv_timer_init(uv, timer);
    timer->data = t;
    t->timer = timer;
  }
  // The loop's cached time may be stale after tasks ran: refresh it so the timer counts from now.
  uv_update_time(uv);
  return uv_timer_start(t->timer, timer_cb, timeout_ms(deadline), 0);
}

void release_timer(Task *t) {
  if (t->timer == nullptr) return;
  uv_timer_stop(t->timer);
  t->timer->data = nullptr;
  close_handle(reinterpret_cast<uv_handle_t *>(t->timer));
  t->timer = nullptr;
}

void add_lookup(Loop *loop, Lookup *lk) {
  lk->loop = loop;
  lk->prev = nullptr;
  lk->next = loop->lookups;
  if (loop->lookups != nullptr) loop->lookups->prev = lk;
  loop->lookups = lk;
}

void remove_lookup(Lookup *lk) {
  if (lk->prev != nullptr) {
    lk->prev->next = lk->next;
  } else {
    lk->loop->lookups = lk->next;
  }
  if (lk->next != nullptr) lk->next->prev = lk->prev;
  lk->prev = lk->next = nullptr;
}

Loop *create_loop(lua_State *L) {
  auto *loop = new (std::nothrow) Loop;
  if (loop == nullptr) return nullptr;
  if (uv_loop_init(&loop->uv) != 0) {
    delete loop;
    return nullptr;
  }
  loop->L = L;
  return loop;
}

void drive_loop(lua_State *L, Loop *loop) {
  for (;;) {
    // One pass over the tasks ready now; tasks they wake or spawn run in the next pass, after
    // libuv had a turn, so a task that keeps yielding cannot starve I/O and timers.
    for (size_t n = loop->ready_count; n > 0 && loop->ready_head != nullptr; n--) {
      run_task(L, loop, dequeue(loop));
    }
    if (loop->live_count == 0) return;
    loop->in_uv_run = true;
    int alive = uv_run(&loop->uv, loop->ready_count > 0 ? UV_RUN_NOWAIT : UV_RUN_ONCE);
    loop->in_uv_run = false;
    if (alive == 0 && loop->ready_count == 0 && loop->live_count > 0) {
      lua_pushfstring(L, "lev.run: deadlock: %d task(s) waiting forever",
                      static_cast<int>(loop->live_count));
      lua_error(L);
    }
  }
}

void destroy_loop(lua_State *L, Runtime *rt, bool reset_threads) {
  Loop *loop = rt->loop;
  if (loop == nullptr) return;
  rt->loop = nullptr;

  // 1. Abandon the tasks still alive: end their waits (poll handles closed, lookups detached).
  Task *abandoned = loop->live_head;
  for (Task *t = abandoned; t != nullptr; t = t->live_next) {
    end_wait(t);
    release_timer(t);
    std::free(t->detail);
    t->detail = nullptr;
    t->joiners = nullptr;
    t->state = TaskState::kAbandoned;
    t->loop = nullptr;
  }
  loop->live_head = nullptr;
  loop->live_count = 0;
  loop->ready_head = loop->ready_tail = nullptr;
  loop->ready_count = 0;

  // 2. Close every handle, cancel the lookups still queued in the threadpool, and run the loop
  // until the close callbacks ran and every lookup answered (cancelled or not): libuv cannot
  // close a loop with requests in flight, and a running getaddrinfo cannot be interrupted.
  uv_walk(&loop->uv, close_walk_cb, nullptr);
  for (Lookup *lk = loop->lookups; lk != nullptr; lk = lk->next) {
    uv_cancel(reinterpret_cast<uv_req_t *>(&lk->req));
  }
  uv_run(&loop->uv, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop->uv) == 0) delete loop;  // else leak rather than free in use

  if (!reset_threads) return;  // lua_close: the state is going away, leave Lua alone

  // 3. Reset the abandoned coroutines so their to-be-closed variables run (outside any loop:
  // a __close handler that waits gets the usual error, which is dropped here).
  for (Task *t = abandoned; t != nullptr;) {
    Task *next = t->live_next;
    t->live_prev = t->live_next = nullptr;
    if (t->co != nullptr) {
      lua_resetthread(t->co);
      lua_settop(t->co, 0);
      t->co = nullptr;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);
    lua_pushnil(L);
    lua_setiuservalue(L, -2, 1);  // drop the coroutine
    lua_pop(L, 1);
    int ref = t->self_ref;
    t->self_ref = LUA_NOREF;
    luaL_unref(L, LUA_REGISTRYINDEX, ref);  // t may be collected from here on
    t = next;
  }
}

}  // namespace lev
