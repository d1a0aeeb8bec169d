// lua/sse_parser_binding.cpp: http.sse_parser{max_event_size = N}, the SSE parser for Lua code
// that gets the bytes some other way (SPEC.md, "http.sse_parser").
//
//   local p = http.sse_parser{max_event_size = 1024}   -- the table is optional
//   for _, ev in ipairs(p:feed(bytes)) do ... ev.type, ev.data, ev.id, ev.retry ... end
//   p:reset()            -- end of one stream (keeps last_event_id and retry)
//   p:last_event_id()    -- string ("" if none)
//   p:retry()            -- integer ms, or nil
//
// A line or event beyond max_event_size: feed() raises
// "sse_parser: event exceeds max_event_size (N bytes)". Nothing completed is lost: if that
// same feed() completed events before the oversized line, it returns them, and the error is
// raised by the next feed() instead. Once raised, every feed() raises it until reset().
//
// The parser lives inside the userdata (placement new; __gc runs the destructor). Every C++
// call that could throw runs in a small noexcept helper, so no exception reaches Lua and no
// C++ object with a destructor is alive in a frame that raises.
#include <cstring>
#include <lua.hpp>
#include <new>
#include <string_view>

#include "lua/event_push.hpp"
#include "lua/http_module.hpp"
#include "sse/parser.hpp"

namespace levhttp::lua {
namespace {

constexpr const char *kParserMeta = "http.sse_parser";

struct ParserBox {
  sse::Parser parser;
  bool too_large = false;  // TooLarge was reached; feed() raises until reset()
  bool alive = true;       // false once __gc ran

  explicit ParserBox(std::size_t max) : parser(max) {}
};

ParserBox *check_parser(lua_State *L) {
  auto *box = static_cast<ParserBox *>(luaL_checkudata(L, 1, kParserMeta));
  if (!box->alive) luaL_argerror(L, 1, "sse_parser already collected");
  return box;
}

int raise_too_large(lua_State *L, const ParserBox *box) {
  return luaL_error(L, "sse_parser: event exceeds max_event_size (%I bytes)",
                    static_cast<lua_Integer>(box->parser.max_event_size()));
}

bool feed_bytes(ParserBox *box, const char *s, std::size_t n) noexcept {
  try {
    box->parser.feed(std::string_view(s, n));
    return true;
  } catch (...) {
    return false;
  }
}

bool next_event(ParserBox *box, sse::Event &ev, sse::Parser::Result &r) noexcept {
  try {
    r = box->parser.next(ev);
    return true;
  } catch (...) {
    return false;
  }
}

bool reset_parser(ParserBox *box) noexcept {
  try {
    box->parser.reset();  // copies the last event ID back into the ID buffer: may allocate
    return true;
  } catch (...) {
    return false;
  }
}

// parser:feed(bytes) -> array of the events completed by these bytes.
int parser_feed(lua_State *L) {
  ParserBox *box = check_parser(L);
  std::size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  if (box->too_large) return raise_too_large(L, box);
  if (!feed_bytes(box, s, n)) return luaL_error(L, "sse_parser: out of memory");
  lua_newtable(L);
  lua_Integer count = 0;
  for (;;) {
    sse::Event ev;  // views only: trivially destructible
    sse::Parser::Result r;
    if (!next_event(box, ev, r)) return luaL_error(L, "sse_parser: out of memory");
    if (r == sse::Parser::Result::NeedMore) break;
    if (r == sse::Parser::Result::TooLarge) {
      box->too_large = true;
      if (count == 0) return raise_too_large(L, box);
      break;  // return what completed first; the next feed() raises
    }
    push_event(L, ev);
    lua_rawseti(L, -2, ++count);
  }
  return 1;
}

int parser_reset(lua_State *L) {
  ParserBox *box = check_parser(L);
  if (!reset_parser(box)) return luaL_error(L, "sse_parser: out of memory");
  box->too_large = false;
  return 0;
}

int parser_last_event_id(lua_State *L) {
  ParserBox *box = check_parser(L);
  std::string_view id = box->parser.last_event_id();
  lua_pushlstring(L, id.data(), id.size());
  return 1;
}

int parser_retry(lua_State *L) {
  ParserBox *box = check_parser(L);
  std::optional<uint64_t> retry = box->parser.retry();
  if (retry) {
    push_retry(L, *retry);
  } else {
    lua_pushnil(L);
  }
  return 1;
}

int parser_gc(lua_State *L) {
  auto *box = static_cast<ParserBox *>(luaL_checkudata(L, 1, kParserMeta));
  if (box->alive) {
    box->alive = false;
    box->~ParserBox();
  }
  return 0;
}

int parser_tostring(lua_State *L) {
  auto *box = static_cast<ParserBox *>(luaL_checkudata(L, 1, kParserMeta));
  lua_pushfstring(L, "http.sse_parser: %p", static_cast<void *>(box));
  return 1;
}

// Reads the options table at index 1 (nil or absent: defaults). Raises on mistakes.
std::size_t read_options(lua_State *L) {
  std::size_t max = sse::kDefaultMaxEventSize;
  if (lua_isnoneornil(L, 1)) return max;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING || std::strcmp(lua_tostring(L, -2), "max_event_size")) {
      // luaL_tolstring: a non-string key is named too (never lua_tolstring on the key itself,
      // which would confuse lua_next).
      const char *name = luaL_tolstring(L, -2, nullptr);
      luaL_error(L, "sse_parser: unknown option '%s'", name);
    }
    int is_int = 0;
    lua_Integer v = lua_tointegerx(L, -1, &is_int);
    if (!is_int || lua_type(L, -1) != LUA_TNUMBER || v <= 0) {
      luaL_error(L, "sse_parser: max_event_size must be a positive integer");
    }
    max = static_cast<std::size_t>(v);
    lua_pop(L, 1);
  }
  return max;
}

// http.sse_parser([options]) -> parser
int new_parser(lua_State *L) {
  std::size_t max = read_options(L);
  void *mem = lua_newuserdatauv(L, sizeof(ParserBox), 0);
  new (mem) ParserBox(max);  // the constructor allocates nothing and cannot throw
  luaL_setmetatable(L, kParserMeta);
  return 1;
}

const luaL_Reg kMethods[] = {
    {"feed", parser_feed},   {"reset", parser_reset}, {"last_event_id", parser_last_event_id},
    {"retry", parser_retry}, {nullptr, nullptr},
};

}  // namespace

void register_sse_parser(lua_State *L) {
  if (luaL_newmetatable(L, kParserMeta)) {
    luaL_newlib(L, kMethods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, parser_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, parser_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, new_parser);
  lua_setfield(L, -2, "sse_parser");
}

}  // namespace levhttp::lua
