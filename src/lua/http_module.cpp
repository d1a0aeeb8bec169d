#include "lua/http_module.hpp"

namespace levhttp::lua {

int open_module(lua_State *L) {
  lua_newtable(L);
  lua_pushliteral(L, LEVHTTP_VERSION);
  lua_setfield(L, -2, "version");
  // Each binding registers its functions here, as it lands.
  register_sse_parser(L);
  register_sse_client(L);
  return 1;
}

}  // namespace levhttp::lua
