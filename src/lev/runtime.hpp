// lev/runtime.hpp: the `lev` Lua module (event loop on libuv) as a library.
//
// open_module() is luaopen_lev: it returns the `lev` table (run, spawn, sleep, now, and the
// task type) and publishes the seam (include/lev/lev.h) in the registry. Tests embed the
// runtime by calling it through luaL_requiref(L, "lev", lev::open_module, 0).
#pragma once

#include <lua.hpp>

namespace lev {
int open_module(lua_State *L);
}
