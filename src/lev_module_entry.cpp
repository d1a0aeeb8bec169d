// The shared object `lev.so`: Lua's entry point for require("lev"). The runtime itself lives
// in src/lev/ (a static library, so the Catch2 tests can embed it in their own lua_State).
#include "lev/runtime.hpp"

extern "C" __attribute__((visibility("default"))) int luaopen_lev(lua_State *L) {
  return lev::open_module(L);
}
