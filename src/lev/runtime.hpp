// lev/runtime.hpp: the `lev` Lua module (event loop on libuv) as a library.
//
// open_module() is luaopen_lev: it returns the `lev` table (run, spawn, sleep, now, and the
// task type) and publishes the seam (include/lev/lev.h) in the registry. Tests embed the
// runtime by calling it through luaL_requiref(L, "lev", lev::open_module, 0).
#pragma once

#include <cstddef>
#include <lua.hpp>

namespace lev {
int open_module(lua_State *L);

// For tests: the number of getaddrinfo requests of the running lev.run still in libuv's
// threadpool, including those whose wait already ended (answers to be dropped). 0 when no
// loop runs.
std::size_t pending_lookups(lua_State *L);
}  // namespace lev
