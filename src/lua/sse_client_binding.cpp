// lua/sse_client_binding.cpp: http.sse_client, the Lua face of http::Session.
//
// Thin by design: it checks arguments, turns the session's "wait for this fd / resolve this
// name" into yields through the lev seam (lev.h), and turns its "connected / opened / event /
// failed / closed" into Lua callbacks. All state lives in the userdata (the Session and a few
// plain fields) or on the Lua stack of the running method, never in C++ locals that a longjmp
// (lua_error) or a yield would skip: every function that can raise or yield has only trivially
// destructible locals, and C++ work that allocates runs in small noexcept helpers.
//
// Continuations: each method is a loop in a lua_KFunction (connect_k, update_k, close_k). A
// wait yields with api->wait_fd(..., k); a callback runs with lua_callk(..., k). When a wait
// ends or a yielding callback returns, Lua re-enters k, which re-reads everything it needs
// from the userdata, the stack and the context bits, and steps the session again.
#include <lev/lev.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "http/session.hpp"
#include "lua/event_push.hpp"
#include "lua/http_module.hpp"

namespace levhttp::lua {
namespace {

using http::Session;
using Output = Session::Output;

constexpr const char *kClientMeta = "lev-http.sse_client";
constexpr const char *kDecodeKey = "lev-http.cjson.decode";

// Context bits carried across yields.
constexpr lua_KContext kAfterWait = 1;     // resumed from wait_fd / wait_until: two values on top
constexpr lua_KContext kAfterResolve = 2;  // resumed from resolve: two values on top
constexpr lua_KContext kDispatched = 4;    // update(): an event was dispatched during this call
constexpr lua_KContext kWaited = 8;        // update(): this call waited on the fd
constexpr lua_KContext kStarted = 16;      // connect(): the new connection has been started
constexpr lua_KContext kReturnTrue = 32;   // the callback that just ran was the last thing to do
constexpr lua_KContext kResumeMask = kAfterWait | kAfterResolve;

// Yield to other tasks when a stream has kept its task busy this long without waiting.
constexpr double kTimeSlice = 0.002;

struct Client {
  explicit Client(std::size_t max_event_size) : session(max_event_size) {}
  Session session;
  const lev_api *api = nullptr;
  lua_State *main = nullptr;  // the state's main thread: for cancel_fd from __gc
  double recv_timeout = 0.5;
  double last_wait = 0;
  bool json = true;
  bool alive = true;
  std::string errmsg;  // an argument error, formatted here and raised from the top frame
};

Client *to_client(lua_State *L, int idx) {
  return static_cast<Client *>(luaL_checkudata(L, idx, kClientMeta));
}

void fd_closing(void *ctx, int fd) {
  auto *c = static_cast<Client *>(ctx);
  if (c->api && c->main) c->api->cancel_fd(c->main, fd);
}

// ---------------------------------------------------------------------------------------
// Construction: argument checks. Each helper returns false with c->errmsg set.

template <class F>
bool guarded(Client *c, F &&f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc &) {
    c->errmsg = "not enough memory";
  } catch (...) {
    c->errmsg = "internal error";
  }
  return false;
}

bool set_error(Client *c, const char *fmt, const char *a = "", const char *b = "") noexcept {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, a, b);
  return guarded(c, [&] {
    c->errmsg = buf;
    return false;
  });
}

bool check_timeout(lua_State *L, Client *c, const char *name, double *out) {
  if (lua_type(L, -1) != LUA_TNUMBER)
    return set_error(c, "option '%s' must be a number of seconds, got %s", name,
                     luaL_typename(L, -1));
  double v = lua_tonumber(L, -1);
  if (std::isnan(v) || v < 0)
    return set_error(c, "option '%s' must not be negative", name);
  *out = v;
  return true;
}

bool add_header(lua_State *L, Client *c) {
  // key at -2, value at -1
  if (lua_type(L, -2) != LUA_TSTRING)
    return set_error(c, "header names must be strings, got %s", luaL_typename(L, -2));
  const char *name = lua_tostring(L, -2);
  int vt = lua_type(L, -1);
  if (vt != LUA_TSTRING && vt != LUA_TNUMBER && !(vt == LUA_TBOOLEAN && !lua_toboolean(L, -1)))
    return set_error(c, "header '%s' must be a string, a number or false, got %s", name,
                     luaL_typename(L, -1));
  size_t nlen = 0, vlen = 0;
  name = lua_tolstring(L, -2, &nlen);
  const char *value = vt == LUA_TBOOLEAN ? nullptr : lua_tolstring(L, -1, &vlen);
  return guarded(c, [&] {
    http::HeaderOverride h;
    h.name.assign(name, nlen);
    if (value) h.value = std::string(value, vlen);
    auto err = value ? http::validate_header(h.name, *h.value) : http::validate_header(h.name, "");
    if (err) {
      c->errmsg = *err;
      return false;
    }
    c->session.request().headers.push_back(std::move(h));
    return true;
  });
}

bool read_option(lua_State *L, Client *c) {
  // key at -2, value at -1
  if (lua_type(L, -2) != LUA_TSTRING)
    return set_error(c, "option names must be strings, got %s", luaL_typename(L, -2));
  const char *k = lua_tostring(L, -2);
  http::SessionOptions &o = c->session.options();
  http::Request &req = c->session.request();
  int t = lua_type(L, -1);
  if (!std::strcmp(k, "method")) {
    if (t != LUA_TSTRING) return set_error(c, "option 'method' must be a string, got %s", luaL_typename(L, -1));
    size_t n;
    const char *m = lua_tolstring(L, -1, &n);
    return guarded(c, [&] {
      req.method.assign(m, n);
      if (auto err = http::validate_method(req.method)) {
        c->errmsg = *err;
        return false;
      }
      return true;
    });
  }
  if (!std::strcmp(k, "body")) {
    if (t != LUA_TSTRING) return set_error(c, "option 'body' must be a string, got %s", luaL_typename(L, -1));
    size_t n;
    const char *b = lua_tolstring(L, -1, &n);
    return guarded(c, [&] {
      req.body = std::string(b, n);
      return true;
    });
  }
  if (!std::strcmp(k, "headers")) {
    if (t != LUA_TTABLE) return set_error(c, "option 'headers' must be a table, got %s", luaL_typename(L, -1));
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (!add_header(L, c)) return false;
      lua_pop(L, 1);
    }
    // Table order is arbitrary: sort the caller's extra headers by name so the request bytes
    // are the same on every run.
    return guarded(c, [&] {
      std::stable_sort(req.headers.begin(), req.headers.end(),
                       [](const auto &a, const auto &b) { return a.name < b.name; });
      return true;
    });
  }
  if (!std::strcmp(k, "connect_timeout")) return check_timeout(L, c, k, &o.connect_timeout);
  if (!std::strcmp(k, "send_timeout")) return check_timeout(L, c, k, &o.send_timeout);
  if (!std::strcmp(k, "headers_timeout")) return check_timeout(L, c, k, &o.headers_timeout);
  if (!std::strcmp(k, "recv_timeout")) return check_timeout(L, c, k, &c->recv_timeout);
  if (!std::strcmp(k, "idle_timeout")) {
    o.has_idle_timeout = true;
    return check_timeout(L, c, k, &o.idle_timeout);
  }
  if (!std::strcmp(k, "json")) {
    if (t != LUA_TBOOLEAN) return set_error(c, "option 'json' must be a boolean, got %s", luaL_typename(L, -1));
    c->json = lua_toboolean(L, -1);
    return true;
  }
  if (!std::strcmp(k, "max_event_size")) return true;  // read before the session was made
  http::TlsOptions &tls = o.tls;
  std::string *tls_path = !std::strcmp(k, "tls_certfile") ? &tls.certfile
                          : !std::strcmp(k, "tls_keyfile") ? &tls.keyfile
                          : !std::strcmp(k, "tls_cafile")  ? &tls.cafile
                          : !std::strcmp(k, "tls_capath")  ? &tls.capath
                                                           : nullptr;
  if (tls_path) {
    if (t != LUA_TSTRING) return set_error(c, "option '%s' must be a string, got %s", k, luaL_typename(L, -1));
    size_t n;
    const char *v = lua_tolstring(L, -1, &n);
    if (std::strlen(v) != n) return set_error(c, "option '%s' contains NUL", k);
    return guarded(c, [&] {
      tls_path->assign(v, n);
      return true;
    });
  }
  if (!std::strcmp(k, "tls_no_verify")) {
    if (t != LUA_TBOOLEAN) return set_error(c, "option 'tls_no_verify' must be a boolean, got %s", luaL_typename(L, -1));
    tls.no_verify = lua_toboolean(L, -1);
    return true;
  }
  return set_error(c, "unknown option '%s'", k);
}

bool parse_uri(Client *c, const char *uri, size_t len) {
  return guarded(c, [&] {
    if (auto err = http::parse_url(std::string_view(uri, len), c->session.request().url)) {
      c->errmsg = "invalid URI: " + *err;
      return false;
    }
    return true;
  });
}

bool check_callbacks(lua_State *L, Client *c, int idx) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      return set_error(c, "callback names must be strings, got %s", luaL_typename(L, -2));
    if (lua_type(L, -1) != LUA_TFUNCTION)
      return set_error(c, "callback '%s' must be a function, got %s", lua_tostring(L, -2),
                       luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  return true;
}

bool finish_request(Client *c) {
  return guarded(c, [&] {
    if (auto err = http::validate(c->session.request())) {
      c->errmsg = *err;
      return false;
    }
    return true;
  });
}

int l_sse_client(lua_State *L) {
  const lev_api *api = lev_get_api(L);
  if (!api || !api->can_wait(L)) return luaL_error(L, "http.sse_client must be used within lev.run()");
  size_t urilen;
  const char *uri = luaL_checklstring(L, 1, &urilen);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);

  lua_Integer max_event = static_cast<lua_Integer>(sse::kDefaultMaxEventSize);
  if (lua_istable(L, 2)) {
    int t = lua_getfield(L, 2, "max_event_size");
    if (t != LUA_TNIL) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) <= 0)
        return luaL_error(L, "option 'max_event_size' must be a positive integer");
      max_event = lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
  }

  auto *c = static_cast<Client *>(lua_newuserdatauv(L, sizeof(Client), 1));  // index 4
  bool constructed = false;
  try {
    new (c) Client(static_cast<std::size_t>(max_event));
    constructed = true;
  } catch (...) {
  }
  if (!constructed) return luaL_error(L, "http.sse_client: not enough memory");
  luaL_setmetatable(L, kClientMeta);
  c->api = api;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  c->main = lua_tothread(L, -1);
  lua_pop(L, 1);
  c->session.set_fd_closing_hook(fd_closing, c);

  if (lua_istable(L, 3)) {
    if (!check_callbacks(L, c, 3)) goto fail;
    lua_pushvalue(L, 3);
  } else {
    lua_newtable(L);
  }
  lua_setiuservalue(L, 4, 1);

  if (!parse_uri(c, uri, urilen)) goto fail;
  if (lua_istable(L, 2)) {
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      if (!read_option(L, c)) goto fail;
      lua_pop(L, 1);
    }
  }
  if (!finish_request(c)) goto fail;
  lua_settop(L, 4);
  return 1;

fail:
  lua_pushfstring(L, "http.sse_client: %s", c->errmsg.c_str());
  return lua_error(L);
}

// ---------------------------------------------------------------------------------------
// Dispatch: running callbacks.

// Pushes callbacks[name] and returns true if it is a function (else pushes nothing).
bool push_callback(lua_State *L, const char *name, size_t len) {
  lua_getiuservalue(L, 1, 1);
  lua_pushlstring(L, name, len);
  int t = lua_rawget(L, -2);
  lua_remove(L, -2);
  if (t == LUA_TFUNCTION) return true;
  lua_pop(L, 1);
  return false;
}

bool push_callback(lua_State *L, const char *name) {
  return push_callback(L, name, std::strlen(name));
}

// Does the function on top of the stack take a second parameter (the event table)?
bool wants_event_table(lua_State *L) {
  lua_Debug ar;
  lua_pushvalue(L, -1);
  lua_getinfo(L, ">u", &ar);
  return ar.nparams >= 2 || ar.isvararg;
}

void push_data(lua_State *L, Client *c, const sse::Event &ev) {
  std::string_view d = ev.data;
  std::size_t i = 0;
  while (i < d.size() && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r')) ++i;
  if (c->json && i < d.size() && (d[i] == '{' || d[i] == '[')) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, kDecodeKey) == LUA_TFUNCTION) {
      lua_pushlstring(L, d.data(), d.size());
      lua_call(L, 1, 1);
      if (!lua_isnil(L, -1)) return;
    }
    lua_pop(L, 1);
  }
  lua_pushlstring(L, d.data(), d.size());
}

// Pushes the callback and arguments for an output; returns the argument count, or -1 when
// there is nothing to call.
int push_call(lua_State *L, Client *c, Output::Kind kind) {
  Session &s = c->session;
  switch (kind) {
    case Output::Connected:
      return push_callback(L, "connect") ? 0 : -1;
    case Output::Open: {
      if (!push_callback(L, "open")) return -1;
      const http::ResponseHead &h = s.head();
      lua_pushinteger(L, h.status);
      lua_createtable(L, 0, static_cast<int>(h.headers.size()));
      for (const auto &kv : h.headers) {
        lua_pushlstring(L, kv.second.data(), kv.second.size());
        lua_setfield(L, -2, kv.first.c_str());
      }
      return 2;
    }
    case Output::Event: {
      const sse::Event &ev = s.event();
      bool found;
      if (ev.type == "error") {
        if (!push_callback(L, "error")) return -1;
        lua_pushlstring(L, ev.data.data(), ev.data.size());
        lua_pushnil(L);
        lua_pushliteral(L, "event");
        push_event(L, ev);
        return 4;
      }
      found = !http::is_lifecycle_name(ev.type) && push_callback(L, ev.type.data(), ev.type.size());
      if (!found && !push_callback(L, "message")) return -1;
      bool full = wants_event_table(L);
      push_data(L, c, ev);
      if (!full) return 1;
      push_event(L, ev);
      return 2;
    }
    case Output::Done:
      return push_callback(L, "done") ? 0 : -1;
    case Output::Failed: {
      if (!push_callback(L, "error")) return -1;
      const http::Failure &f = s.failure();
      lua_pushlstring(L, f.message.data(), f.message.size());
      if (f.status) lua_pushinteger(L, f.status); else lua_pushnil(L);
      lua_pushstring(L, http::kind_name(f.kind));
      return 3;
    }
    case Output::Closed:
      return push_callback(L, "close") ? 0 : -1;
    default:
      return -1;
  }
}

// Pushes nil/false, message, status, kind for how the connection ended; returns the count.
int push_end(lua_State *L, Client *c, bool as_nil) {
  const http::Failure &f = c->session.failure();
  if (as_nil) lua_pushnil(L); else lua_pushboolean(L, 0);
  if (f.kind == http::ErrorKind::None) return 1;
  lua_pushlstring(L, f.message.data(), f.message.size());
  if (f.status) lua_pushinteger(L, f.status); else lua_pushnil(L);
  lua_pushstring(L, http::kind_name(f.kind));
  return 4;
}

// Applies the outcome of a resolve() that the seam left on top of the stack.
bool apply_resolution(lua_State *L, Client *c) {
  int outcome = static_cast<int>(lua_tointeger(L, -2));
  size_t len = 0;
  const char *detail = lua_tolstring(L, -1, &len);
  return guarded(c, [&] {
    Session &s = c->session;
    if (outcome == LEV_READY && detail && len >= sizeof(sockaddr_storage)) {
      s.on_resolved(reinterpret_cast<const sockaddr_storage *>(detail), len / sizeof(sockaddr_storage));
    } else if (outcome == LEV_TIMEOUT) {
      s.on_resolve_timeout();
    } else {
      s.on_resolve_failed(detail ? std::string_view(detail, len) : std::string_view("cancelled"));
    }
    return true;
  });
}

// ---------------------------------------------------------------------------------------
// Methods.

int connect_k(lua_State *L, int status, lua_KContext ctx);
int update_k(lua_State *L, int status, lua_KContext ctx);
int close_k(lua_State *L, int status, lua_KContext ctx);

bool start_session(Client *c) {
  return guarded(c, [&] {
    c->session.start(c->api->now(c->main));
    return true;
  });
}

int connect_k(lua_State *L, int status, lua_KContext ctx) {
  Client *c = static_cast<Client *>(lua_touserdata(L, 1));
  if (status == LUA_YIELD && (ctx & kAfterResolve)) {
    if (!apply_resolution(L, c)) return luaL_error(L, "sse_client:connect: %s", c->errmsg.c_str());
  }
  if (ctx & kReturnTrue) {
    lua_pushboolean(L, 1);
    return 1;
  }
  ctx &= ~kResumeMask;
  lua_settop(L, 1);
  const lev_api *api = c->api;
  for (;;) {
    double now = api->now(L);
    Output out = c->session.step(now, true);
    switch (out.kind) {
      case Output::NeedResolve: {
        char port[8];
        std::snprintf(port, sizeof port, "%u", c->session.request().url.port);
        c->last_wait = now;
        return api->resolve(L, c->session.host().c_str(), port, out.deadline, ctx | kAfterResolve,
                            connect_k);
      }
      case Output::Wait:
        c->last_wait = now;
        return api->wait_fd(L, out.fd, out.events, out.deadline, ctx | kAfterWait, connect_k);
      case Output::Ended:
        if (!(ctx & kStarted)) {
          if (!start_session(c)) return luaL_error(L, "sse_client:connect: %s", c->errmsg.c_str());
          ctx |= kStarted;
          continue;
        }
        if (c->session.failure().kind == http::ErrorKind::None) {
          lua_pushnil(L);
          lua_pushliteral(L, "closed: the client was closed before the response arrived");
          lua_pushnil(L);
          lua_pushliteral(L, "closed");
          return 4;
        }
        return push_end(L, c, true);
      case Output::WouldRead:
        continue;
      default: {
        bool last = out.kind == Output::Open;
        int nargs = push_call(L, c, out.kind);
        if (nargs >= 0) lua_callk(L, nargs, 0, ctx | (last ? kReturnTrue : 0), connect_k);
        lua_settop(L, 1);
        if (last) {
          lua_pushboolean(L, 1);
          return 1;
        }
      }
    }
  }
}

int l_connect(lua_State *L) {
  Client *c = to_client(L, 1);
  if (!c->api->can_wait(L)) return luaL_error(L, "sse_client:connect must be used within lev.run()");
  if (c->session.active()) return luaL_error(L, "sse_client:connect: already connected");
  lua_settop(L, 1);
  return connect_k(L, LUA_OK, 0);
}

int update_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  Client *c = static_cast<Client *>(lua_touserdata(L, 1));
  if (ctx & kReturnTrue) {
    lua_pushboolean(L, 1);
    return 1;
  }
  ctx &= ~kResumeMask;
  lua_settop(L, 2);
  const lev_api *api = c->api;
  double deadline = lua_tonumber(L, 2);
  for (;;) {
    double now = api->now(L);
    Output out = c->session.step(now, !(ctx & kDispatched));
    switch (out.kind) {
      case Output::Wait:
      case Output::WouldRead:
        if (out.kind == Output::Wait && !(ctx & kDispatched) && now < deadline) {
          c->last_wait = now;
          return api->wait_fd(L, out.fd, out.events, std::min(out.deadline, deadline),
                              ctx | kWaited | kAfterWait, update_k);
        }
        if (now - c->last_wait > kTimeSlice) {
          // This stream has kept its task busy: let the other tasks run before returning.
          c->last_wait = now;
          return api->wait_until(L, now, ctx | kReturnTrue | kAfterWait, update_k);
        }
        lua_pushboolean(L, 1);
        return 1;
      case Output::Ended:
        return push_end(L, c, false);
      case Output::NeedResolve:
        return luaL_error(L, "sse_client:update: connect() has not finished");
      default: {
        if (out.kind == Output::Event) ctx |= kDispatched;
        int nargs = push_call(L, c, out.kind);
        if (nargs >= 0) lua_callk(L, nargs, 0, ctx, update_k);
        lua_settop(L, 2);
      }
    }
  }
}

int l_update(lua_State *L) {
  Client *c = to_client(L, 1);
  if (!c->api->can_wait(L)) return luaL_error(L, "sse_client:update must be used within lev.run()");
  Session::Phase p = c->session.phase();
  if (p != Session::Phase::Streaming && c->session.active())
    return luaL_error(L, "sse_client:update: connect() has not finished");
  lua_settop(L, 1);
  lua_pushnumber(L, c->api->now(L) + c->recv_timeout);
  return update_k(L, LUA_OK, 0);
}

int close_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  Client *c = static_cast<Client *>(lua_touserdata(L, 1));
  lua_settop(L, 1);
  for (;;) {
    Output out = c->session.step(c->api->now(L), false);
    if (out.kind == Output::Ended || out.kind == Output::Wait || out.kind == Output::WouldRead)
      return 0;
    int nargs = push_call(L, c, out.kind);
    if (nargs >= 0) lua_callk(L, nargs, 0, 0, close_k);
    lua_settop(L, 1);
  }
}

int l_close(lua_State *L) {
  Client *c = to_client(L, 1);
  lua_settop(L, 1);
  c->session.close();
  return close_k(L, LUA_OK, 0);
}

int l_is_connected(lua_State *L) {
  lua_pushboolean(L, to_client(L, 1)->session.streaming());
  return 1;
}

int l_last_event_id(lua_State *L) {
  std::string_view id = to_client(L, 1)->session.last_event_id();
  lua_pushlstring(L, id.data(), id.size());
  return 1;
}

int l_gc(lua_State *L) {
  auto *c = static_cast<Client *>(luaL_checkudata(L, 1, kClientMeta));
  if (c->alive) {
    c->alive = false;
    c->~Client();
  }
  return 0;
}

int l_tostring(lua_State *L) {
  Client *c = to_client(L, 1);
  const http::Url &u = c->session.request().url;
  lua_pushfstring(L, "http.sse_client(%s://%s%s)", u.scheme.c_str(), u.host_header().c_str(),
                  u.target.c_str());
  return 1;
}

void ensure_cjson(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, kDecodeKey) != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  // cjson.safe: a decode that returns nil on bad JSON instead of raising. Looked up once per
  // Lua state; without lua-cjson, payloads are passed as strings.
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson.safe");
  int status = lua_pcall(L, 1, 1, 0);
  if (status == LUA_ERRMEM) lua_error(L);  // out of memory is not "lua-cjson is missing"
  if (status == LUA_OK && lua_istable(L, -1)) {
    lua_getfield(L, -1, "decode");
    lua_remove(L, -2);
  } else {
    lua_pop(L, 1);
    lua_pushboolean(L, 0);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, kDecodeKey);
}

}  // namespace

void register_sse_client(lua_State *L) {
  static const luaL_Reg methods[] = {{"connect", l_connect},
                                     {"update", l_update},
                                     {"close", l_close},
                                     {"is_connected", l_is_connected},
                                     {"last_event_id", l_last_event_id},
                                     {nullptr, nullptr}};
  if (luaL_newmetatable(L, kClientMeta)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  ensure_cjson(L);
  lua_pushcfunction(L, l_sse_client);
  lua_setfield(L, -2, "sse_client");
}

}  // namespace levhttp::lua
