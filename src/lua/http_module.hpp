// lua/http_module.hpp: the `http` Lua module, the binding layer over the core.
//
// open_module() is luaopen_http: it builds the `http` table. Each binding file registers
// its functions into the table on top of the stack.
#pragma once

#include <lua.hpp>

namespace levhttp::lua {
int open_module(lua_State *L);
void register_sse_parser(lua_State *L); // http.sse_parser (src/lua/sse_parser_binding.cpp)
void register_sse_client(lua_State *L); // http.sse_client (src/lua/sse_client_binding.cpp)
}  // namespace levhttp::lua
