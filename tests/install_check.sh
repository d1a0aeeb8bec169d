#!/usr/bin/env bash
# Checks the install layout (issue: LuaRocks' layout): `cmake --install BUILD --prefix P` puts
# lev.so and http.so in P/lib/lua/5.4/ and the seam header in P/include/lev/, and a plain
# lua5.4 loads both modules from there (and runs a task) with only LUA_CPATH set.
set -euo pipefail
# In the sanitizer build the runtime is preloaded for lua5.4 only; the tools here (cmake,
# mktemp) are not instrumented and must not run under it.
preload=${LD_PRELOAD:-}
unset LD_PRELOAD
build=${1:?usage: install_check.sh BUILD_DIR}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/lib/lua/5.4/lev.so"
test -f "$prefix/lib/lua/5.4/http.so"
test -f "$prefix/include/lev/lev.h"
out=$(cd / && env -u LUA_PATH LD_PRELOAD="$preload" LUA_CPATH="$prefix/lib/lua/5.4/?.so;;" lua5.4 -e '
  local lev, http = require("lev"), require("http")
  assert(type(http.sse_client) == "function" and type(http.sse_parser) == "function")
  io.write(lev.run(function() return lev.spawn(function() lev.sleep(0) return "ok" end):join() end))')
test "$out" = ok
echo "install layout ok: $prefix"
