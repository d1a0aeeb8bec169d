/*
 * lev/lev.h: the seam between an event loop and the C/C++ modules that wait on it.
 *
 * Contract
 * --------
 * A loop implementation ("a LEV") publishes one `lev_api` table in the Lua registry under
 * the key LEV_API_REGISTRY_KEY, as a light userdata pointing at a `lev_api` that stays valid
 * for as long as the Lua state lives. A module finds it with lev_get_api() at call time: it
 * never links against the loop or its library, so any LEV that publishes the same table can
 * host it. `lev` (this project's runtime, on libuv) publishes it when `require("lev")` runs.
 *
 * Tasks. Lua coroutines run as tasks of the loop. Only a task may wait: every waiting
 * function below raises a Lua error ("... must be used within lev.run()") when `L` is not
 * the running coroutine of a task (can_wait() tells beforehand, without raising).
 *
 * Waiting. wait_fd, wait_until and resolve register what the task waits for, then yield the
 * task with lua_yieldk(L, 0, ctx, k). They must therefore be called as the return expression
 * of a lua_CFunction or of a continuation:
 *
 *     return api->wait_fd(L, fd, LEV_READ, deadline, ctx, my_continuation);
 *
 * and, as with any yield, no C++ object with a destructor may be alive in the calling frame.
 * When the wait ends, the loop resumes the task and Lua calls k(L, LUA_YIELD, ctx) with two
 * values pushed on top of the stack the C function had when it yielded:
 *
 *     index -2: integer outcome, one of enum lev_outcome;
 *     index -1: detail: nil, or for resolve() the addresses / the error message (below).
 *
 * The continuation pops them and carries on (it may wait again). Exactly one outcome is
 * delivered per wait; a task waits on one thing at a time.
 *
 * Deadlines are absolute times on the clock of now() (seconds, monotonic, a double). A
 * deadline already past still yields once and delivers LEV_TIMEOUT, so a caller loop always
 * lets other tasks run. LEV_NO_DEADLINE waits without a limit (use it sparingly: every wait
 * on a peer should have a deadline).
 *
 * File descriptors. wait_fd waits until `fd` is readable (LEV_READ) and/or writable
 * (LEV_WRITE); errors and hang-ups count as ready, so the next read/write reports them. At
 * most one wait per fd at a time (a second one raises an error). Before closing an fd it may
 * be waiting on, a module calls cancel_fd(L, fd): the waiting task, if any, is resumed with
 * LEV_CANCELLED on the loop's next turn, and the loop no longer watches the fd, so it may be
 * closed at once. cancel_fd is safe to call at any time, also when no loop is running, and
 * from any coroutine (for example a client closed by another task, or its __gc).
 *
 * Name resolution. resolve(L, host, port, deadline, ctx, k) looks up host and port (a
 * numeric service string) without blocking the loop (getaddrinfo with AI_ADDRCONFIG,
 * AF_UNSPEC, SOCK_STREAM), for at most until `deadline`. The continuation gets:
 *   LEV_READY    and a string holding n consecutive `struct sockaddr_storage` records
 *                (n = length / sizeof(struct sockaddr_storage), n >= 1), in the order
 *                getaddrinfo returned them;
 *   LEV_FAILED   and an error message (e.g. "Name or service not known");
 *   LEV_TIMEOUT  and nil when the deadline passed first (a late answer is dropped safely);
 *   LEV_CANCELLED and nil when the loop was asked to stop the wait.
 * The string belongs to Lua: nothing is left for the module to free.
 *
 * Clock. now(L) returns the loop's monotonic clock in seconds, with sub-microsecond
 * resolution; it works with or without a running loop.
 *
 * A task whose loop stops (an error in another task ends lev.run) is never resumed: a
 * module must keep its own state consistent at every yield, and release its resources from
 * __gc/__close. Versioning: `version` is LEV_API_VERSION of the publisher; a module checks
 * that it is at least the version it was built for. New members are only ever appended.
 */
#ifndef LEV_LEV_H
#define LEV_LEV_H

#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LEV_API_VERSION 1
#define LEV_API_REGISTRY_KEY "lev.api"
#define LEV_NO_DEADLINE (1e300)

enum lev_events { LEV_READ = 1, LEV_WRITE = 2 };

enum lev_outcome {
  LEV_READY = 0,     /* the fd is ready / the resolution succeeded */
  LEV_TIMEOUT = 1,   /* the deadline passed first */
  LEV_CANCELLED = 2, /* cancel_fd() ended the wait */
  LEV_FAILED = 3     /* resolve(): the name could not be resolved; detail is the message */
};

typedef struct lev_api {
  unsigned version; /* LEV_API_VERSION of the publisher */
  const char *name; /* the implementation, e.g. "lev/libuv" */

  double (*now)(lua_State *L);
  int (*can_wait)(lua_State *L); /* 1 if L is a running task that may wait, else 0 */

  int (*wait_fd)(lua_State *L, int fd, int events, double deadline, lua_KContext ctx,
                 lua_KFunction k);
  int (*wait_until)(lua_State *L, double deadline, lua_KContext ctx, lua_KFunction k);
  void (*cancel_fd)(lua_State *L, int fd);
  int (*resolve)(lua_State *L, const char *host, const char *port, double deadline,
                 lua_KContext ctx, lua_KFunction k);
} lev_api;

/* The published table, or NULL when no LEV has been loaded into this Lua state. */
static inline const lev_api *lev_get_api(lua_State *L) {
  const lev_api *api;
  lua_getfield(L, LUA_REGISTRYINDEX, LEV_API_REGISTRY_KEY);
  api = (const lev_api *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return api;
}

#ifdef __cplusplus
}
#endif

#endif /* LEV_LEV_H */
