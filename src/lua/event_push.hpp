// lua/event_push.hpp: how an SSE event looks in Lua (shared by http.sse_parser and the client).
//
// push_event() pushes one new table {type=, data=, id=, retry=}: type, data and id are
// strings (id "" when no last event ID is set), retry an integer number of milliseconds,
// present only when the event's block had an accepted retry field. push_retry() pushes a
// retry value. A value above math.maxinteger (possible: the core accepts any uint64) is
// pushed as a float, the nearest Lua can hold. Both may raise a Lua memory error only.
#pragma once

#include <cstdint>
#include <lua.hpp>

#include "sse/parser.hpp"

namespace levhttp::lua {

void push_event(lua_State *L, const levhttp::sse::Event &ev);
void push_retry(lua_State *L, uint64_t retry_ms);

}  // namespace levhttp::lua
