// lev/loop.hpp: the loop behind `lev.run`, its tasks, and the waits they register.
//
// Contract
// --------
// One Runtime per Lua state (a full userdata in the registry, created by open_module). While
// `lev.run` executes, Runtime::loop points at the one Loop of that run: a libuv loop, a FIFO
// ready queue and the list of live tasks. Tasks are coroutines resumed only by the driver
// (drive_loop, called by lev.run): libuv callbacks never touch Lua, they only end a task's wait
// and put the task on the ready queue with what it must be resumed with (nothing, or the seam's
// two values: an outcome and a detail). The driver pops the ready queue, resumes each task,
// and, between batches, runs libuv once: UV_RUN_NOWAIT when tasks are still ready, UV_RUN_ONCE
// (block for I/O or a timer) when none is.
//
// A Task lives inside its Lua userdata (the object `lev.spawn` returns). While the task has not
// finished, the loop holds a registry reference to that userdata, so the Task pointer stays
// valid; a finished task keeps only its results (a registry reference released by __gc). Every
// libuv handle is allocated on the C heap and freed by its close callback, so no handle outlives
// or points into Lua memory after its wait ended.
//
// Functions here never raise Lua errors unless their comment says so.
#pragma once

#include <uv.h>

#include <cstddef>
#include <lua.hpp>
#include <unordered_map>

#include "lev/lev.h"

namespace lev {

struct Loop;
struct Lookup;

enum class TaskState {
  kQueued,    // on the ready queue (new, woken, or yielded with nothing to wait for)
  kRunning,   // the driver is resuming it
  kWaiting,   // suspended in a wait registered with the loop
  kDone,      // returned; results kept in results_ref
  kFailed,    // raised; error value kept in results_ref
  kAbandoned  // its lev.run stopped before it finished: never resumed again
};

enum class WaitKind { kNone, kSleep, kJoin, kFd, kTimer, kResolve };

// How the driver resumes a task that was woken.
enum class ResumeWith {
  kNothing,  // first run (fn and args already on its stack), sleep, join, plain yield
  kOutcome   // a seam wait: push (integer outcome, detail) as in include/lev/lev.h
};

struct Task {
  lua_State *co;  // the coroutine; also referenced by the userdata's user value 1
  Loop *loop;     // the loop running it; nullptr once finished or abandoned
  int self_ref;   // registry ref to the userdata while the task is live
  TaskState state;
  int nargs;  // values on co's stack for the first resume (fn + args); -1 once started

  // What the task waits for (one thing at a time).
  WaitKind wait;
  double deadline;    // absolute, lev.now() clock; >= LEV_NO_DEADLINE: none
  uv_timer_t *timer;  // lazily allocated, reused across waits, closed when the task ends
  uv_poll_t *poll;    // kFd: the poll handle of this wait
  int fd;             // kFd: the fd waited on
  Lookup *lookup;     // kResolve: the getaddrinfo request, until it answers or is dropped
  Task *join_target;  // kJoin: the task joined
  Task *next_joiner;  // kJoin: next task joining the same target
  Task *joiners;      // tasks blocked in join() on this one

  // What to resume with once woken.
  ResumeWith resume_with;
  int outcome;   // enum lev_outcome
  char *detail;  // malloc'd detail string, or nullptr for nil
  size_t detail_len;

  Task *ready_next;             // ready queue link
  Task *live_prev, *live_next;  // the loop's list of live tasks

  // Once finished: kDone: nresults values (0: none, 1: the value, >1: a table with `n`);
  // kFailed: the error value.
  int results_ref;
  int nresults;
};

// A getaddrinfo request. It belongs to the task while the task waits for it; when the wait
// ends first (deadline, abandonment) `task` becomes nullptr and the request owns itself: its
// callback frees it and drops the answer.
struct Lookup {
  uv_getaddrinfo_t req;
  Loop *loop;
  Task *task;
  Lookup *prev, *next;  // the loop's list of requests still in the threadpool
};

struct Loop {
  uv_loop_t uv;
  lua_State *L;  // the state that called lev.run (registry operations)
  Task *current = nullptr;
  Task *ready_head = nullptr, *ready_tail = nullptr;
  size_t ready_count = 0;
  bool in_uv_run = false;  // the driver is inside uv_run (a wake must end its poll)
  Task *live_head = nullptr;
  size_t live_count = 0;
  Lookup *lookups = nullptr;
  std::unordered_map<int, Task *> fd_waits;
};

struct Runtime {
  Loop *loop;  // the running loop, or nullptr
};

// The Runtime of L's state (created by open_module), or nullptr before require("lev").
Runtime *get_runtime(lua_State *L);

// The task that may wait in L right now: the running task's own coroutine, when it can yield.
// nullptr otherwise (no loop, not a task, a nested coroutine, or a C-call boundary).
Task *waiting_task(lua_State *L);

// Raises "<what> must be used within lev.run()" (or, in a task that cannot yield here, a
// C-call boundary error). For a waiting function called where waiting_task(L) is nullptr.
[[noreturn]] void raise_cannot_wait(lua_State *L, const char *what);

// Monotonic clock in seconds (uv_hrtime based).
double now_seconds();

// --- the ready queue and waits (loop.cpp) ---
void add_live(Loop *loop, Task *t);  // new task: on the live list and the ready queue
void remove_live(Task *t);           // a finished task leaves the live list
void enqueue(Task *t);               // put a woken task on the ready queue
void end_wait(Task *t);              // stop whatever t waits on (handles stopped or closed)
void wake(Task *t);                  // end_wait + enqueue, resumed with nothing
void wake_with(Task *t, int outcome, char *detail, size_t len);  // takes detail (malloc'd)
// Records t's deadline and, unless it is LEV_NO_DEADLINE or later, starts t's timer, whose
// expiry wakes t (kSleep: with nothing; other waits: with LEV_TIMEOUT). The caller handles a
// deadline already past. Returns 0 or a libuv error code.
int arm_deadline(Task *t, double deadline);
// Closes t's reusable timer (when t finishes).
void release_timer(Task *t);
// The loop's list of getaddrinfo requests still in the threadpool.
void add_lookup(Loop *loop, Lookup *lk);
void remove_lookup(Lookup *lk);

// --- the run (loop.cpp) ---
Loop *create_loop(lua_State *L);  // nullptr if uv_loop_init fails
// Drives the loop until every task finished. Raises a Lua error (to be caught by lev.run's
// protected call) when a task fails with no joiner, or on deadlock.
void drive_loop(lua_State *L, Loop *loop);
// Stops everything: abandons live tasks, closes every handle, cancels and waits for lookups,
// closes and frees the libuv loop. With reset_threads, resets abandoned tasks' coroutines so
// their to-be-closed variables run (not during lua_close). Sets rt->loop to nullptr first.
void destroy_loop(lua_State *L, Runtime *rt, bool reset_threads);

// --- the seam (seam.cpp) ---
const lev_api *published_api();  // this runtime's table, static for the process

// --- tasks (task.cpp) ---
// Creates a task running the function at stack index `first` with the values above it as
// arguments (consumed), pushes the task object and schedules it. Raises on error.
Task *push_new_task(lua_State *L, Loop *loop, int first);
// Called by the driver when t returned (nres results on top of t->co) or raised.
void finish_task(lua_State *L, Task *t, int nres);
void fail_task(lua_State *L, Task *t);
// Pushes a finished task's results; returns their count. For a failed task, pushes the error
// value and returns -1.
int push_results(lua_State *L, const Task *t);
void register_task_type(lua_State *L);  // the metatable of task objects

}  // namespace lev
