// lua/event_push.cpp: the Lua shape of an SSE event (see event_push.hpp).
#include "lua/event_push.hpp"

namespace levhttp::lua {

void push_retry(lua_State *L, uint64_t retry_ms) {
  if (retry_ms <= static_cast<uint64_t>(LUA_MAXINTEGER)) {
    lua_pushinteger(L, static_cast<lua_Integer>(retry_ms));
  } else {
    lua_pushnumber(L, static_cast<lua_Number>(retry_ms));
  }
}

void push_event(lua_State *L, const levhttp::sse::Event &ev) {
  lua_createtable(L, 0, 4);
  lua_pushlstring(L, ev.type.data(), ev.type.size());
  lua_setfield(L, -2, "type");
  lua_pushlstring(L, ev.data.data(), ev.data.size());
  lua_setfield(L, -2, "data");
  lua_pushlstring(L, ev.id.data(), ev.id.size());
  lua_setfield(L, -2, "id");
  if (ev.retry) {
    push_retry(L, *ev.retry);
    lua_setfield(L, -2, "retry");
  }
}

}  // namespace levhttp::lua
