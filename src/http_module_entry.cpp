// The shared object `http.so`: Lua's entry point for require("http"). The bindings live in
// src/lua/; they know the event loop only through include/lev/lev.h.
#include "lua/http_module.hpp"

extern "C" __attribute__((visibility("default"))) int luaopen_http(lua_State *L) {
  return levhttp::lua::open_module(L);
}
