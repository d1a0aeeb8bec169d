// lev/seam.cpp: this runtime's `lev_api` (include/lev/lev.h), published by open_module.
//
// Each wait registers itself on the running task (loop.hpp) and yields with the module's
// continuation; libuv callbacks here only end the wait and queue the task with the outcome and
// detail it is resumed with. One uv_poll_t per fd wait (started here, stopped and closed when
// the wait ends), the task's reusable timer for deadlines, and one self-owning heap request per
// getaddrinfo.
#include <netdb.h>
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>

#include "lev/lev.h"
#include "lev/loop.hpp"
#include "lev/runtime.hpp"

namespace lev {

namespace {

// The task that may wait in L, or a Lua error naming `what`.
Task *require_task(lua_State *L, const char *what) {
  Task *t = waiting_task(L);
  if (t == nullptr) raise_cannot_wait(L, what);
  return t;
}

char *copy_message(const char *msg, size_t *len) {
  *len = std::strlen(msg);
  char *copy = static_cast<char *>(std::malloc(*len + 1));
  if (copy != nullptr) std::memcpy(copy, msg, *len + 1);
  return copy;
}

// Delivers outcome with a message as detail (LEV_FAILED).
void wake_failed(Task *t, const char *msg) {
  size_t len = 0;
  char *copy = copy_message(msg, &len);
  wake_with(t, LEV_FAILED, copy, copy != nullptr ? len : 0);
}

void poll_cb(uv_poll_t *poll, int /*status*/, int /*events*/) {
  // Any event, an error status included, counts as ready: the module's next read or write
  // reports what happened.
  auto *t = static_cast<Task *>(poll->data);
  if (t == nullptr || t->wait != WaitKind::kFd || t->poll != poll) return;
  wake_with(t, LEV_READY, nullptr, 0);
}

void lookup_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  auto *lk = reinterpret_cast<Lookup *>(req);  // req is the first member
  remove_lookup(lk);
  Task *t = lk->task;
  if (t != nullptr) {  // else the wait ended first (deadline, lev.run stopped): drop the answer
    t->lookup = nullptr;
    if (status != 0) {
      wake_failed(t, uv_strerror(status));
    } else {
      size_t n = 0;
      for (const addrinfo *ai = res; ai != nullptr; ai = ai->ai_next) n++;
      size_t len = n * sizeof(sockaddr_storage);
      auto *records =
          static_cast<char *>(n > 0 ? std::calloc(n, sizeof(sockaddr_storage)) : nullptr);
      if (records == nullptr) {
        wake_failed(t, n > 0 ? "out of memory" : "no address found");
      } else {
        size_t i = 0;
        for (const addrinfo *ai = res; ai != nullptr; ai = ai->ai_next, i++) {
          size_t alen = ai->ai_addrlen;
          if (alen > sizeof(sockaddr_storage)) alen = sizeof(sockaddr_storage);
          std::memcpy(records + i * sizeof(sockaddr_storage), ai->ai_addr, alen);
        }
        wake_with(t, LEV_READY, records, len);
      }
    }
  }
  uv_freeaddrinfo(res);
  std::free(lk);
}

void check_deadline(lua_State *L, double deadline, const char *what) {
  if (deadline != deadline) luaL_error(L, "%s: the deadline is NaN", what);
}

double api_now(lua_State *) {
  return now_seconds();
}

int api_can_wait(lua_State *L) {
  return waiting_task(L) != nullptr ? 1 : 0;
}

int api_wait_fd(lua_State *L, int fd, int events, double deadline, lua_KContext ctx,
                lua_KFunction k) {
  const char *what = "lev_api.wait_fd";
  Task *t = require_task(L, what);
  if (fd < 0) luaL_error(L, "%s: invalid fd %d", what, fd);
  if (events == 0 || (events & ~(LEV_READ | LEV_WRITE)) != 0) {
    luaL_error(L, "%s: invalid events %d (LEV_READ, LEV_WRITE or both)", what, events);
  }
  check_deadline(L, deadline, what);
  Loop *loop = t->loop;
  if (loop->fd_waits.find(fd) != loop->fd_waits.end()) {
    luaL_error(L, "%s: fd %d is already waited on by another task", what, fd);
  }
  if (deadline <= now_seconds()) {
    wake_with(t, LEV_TIMEOUT, nullptr, 0);  // yields once, then times out
    return lua_yieldk(L, 0, ctx, k);
  }
  auto *poll = static_cast<uv_poll_t *>(std::malloc(sizeof(uv_poll_t)));
  if (poll == nullptr) luaL_error(L, "%s: out of memory", what);
  int rc = uv_poll_init(&loop->uv, poll, fd);
  if (rc != 0) {
    std::free(poll);  // not initialised: nothing to close
    luaL_error(L, "%s: fd %d: %s", what, fd, uv_strerror(rc));
  }
  poll->data = t;
  int uv_events = UV_DISCONNECT;
  if ((events & LEV_READ) != 0) uv_events |= UV_READABLE;
  if ((events & LEV_WRITE) != 0) uv_events |= UV_WRITABLE;
  rc = uv_poll_start(poll, uv_events, poll_cb);
  bool registered = false;
  if (rc == 0) {
    try {
      loop->fd_waits.emplace(fd, t);
      registered = true;
    } catch (...) {
      rc = UV_ENOMEM;
    }
  }
  if (registered) {
    t->wait = WaitKind::kFd;
    t->poll = poll;
    t->fd = fd;
    rc = arm_deadline(t, deadline);
    if (rc != 0) end_wait(t);  // closes the poll handle
  } else {
    poll->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t *>(poll), [](uv_handle_t *h) { std::free(h); });
  }
  if (rc != 0) luaL_error(L, "%s: %s", what, uv_strerror(rc));
  return lua_yieldk(L, 0, ctx, k);
}

int api_wait_until(lua_State *L, double deadline, lua_KContext ctx, lua_KFunction k) {
  const char *what = "lev_api.wait_until";
  Task *t = require_task(L, what);
  check_deadline(L, deadline, what);
  if (deadline <= now_seconds()) {
    wake_with(t, LEV_TIMEOUT, nullptr, 0);
    return lua_yieldk(L, 0, ctx, k);
  }
  t->wait = WaitKind::kTimer;
  int rc = arm_deadline(t, deadline);
  if (rc != 0) {
    t->wait = WaitKind::kNone;
    luaL_error(L, "%s: %s", what, uv_strerror(rc));
  }
  return lua_yieldk(L, 0, ctx, k);
}

void api_cancel_fd(lua_State *L, int fd) {
  Runtime *rt = get_runtime(L);
  if (rt == nullptr || rt->loop == nullptr) return;
  auto it = rt->loop->fd_waits.find(fd);
  if (it == rt->loop->fd_waits.end()) return;
  Task *t = it->second;
  wake_with(t, LEV_CANCELLED, nullptr, 0);  // end_wait stops the poll now
}

int api_resolve(lua_State *L, const char *host, const char *port, double deadline, lua_KContext ctx,
                lua_KFunction k) {
  const char *what = "lev_api.resolve";
  Task *t = require_task(L, what);
  if (host == nullptr) luaL_error(L, "%s: host is NULL", what);
  check_deadline(L, deadline, what);
  if (deadline <= now_seconds()) {
    wake_with(t, LEV_TIMEOUT, nullptr, 0);
    return lua_yieldk(L, 0, ctx, k);
  }
  auto *lk = static_cast<Lookup *>(std::calloc(1, sizeof(Lookup)));
  if (lk == nullptr) luaL_error(L, "%s: out of memory", what);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  lk->task = t;
  int rc = uv_getaddrinfo(&t->loop->uv, &lk->req, lookup_cb, host, port, &hints);
  if (rc != 0) {
    std::free(lk);
    wake_failed(t, uv_strerror(rc));
    return lua_yieldk(L, 0, ctx, k);
  }
  add_lookup(t->loop, lk);
  t->wait = WaitKind::kResolve;
  t->lookup = lk;
  rc = arm_deadline(t, deadline);
  if (rc != 0) {
    end_wait(t);  // the lookup is dropped when it answers
    wake_failed(t, uv_strerror(rc));
  }
  return lua_yieldk(L, 0, ctx, k);
}

const lev_api kApi = {
    LEV_API_VERSION, "lev/libuv",    api_now,       api_can_wait,
    api_wait_fd,     api_wait_until, api_cancel_fd, api_resolve,
};

}  // namespace

const lev_api *published_api() {
  return &kApi;
}

}  // namespace lev
