#!/usr/bin/env bash
# The demo: builds lev-http, starts the bundled mock LLM server on a free local port, and
# streams a chat completion from it with examples/openai_chat.lua, token by token.
#
#   bash scripts/demo.sh                     # default prompt
#   bash scripts/demo.sh "Tell me a joke"    # your prompt
#
# Needs no network and no API key. MOCK_DELAY (seconds between tokens, default 0.03) sets the
# pacing; BUILD_DIR (default build) is where scripts/build.sh builds. The exit status is the
# example's. The mock is stopped on exit, however the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
export BUILD_DIR

# Setup and build quietly; show their output only when they fail.
log=$(mktemp)
mock_pid=""
cleanup() {
  if [[ -n "$mock_pid" ]]; then
    kill "$mock_pid" 2>/dev/null || true
    wait "$mock_pid" 2>/dev/null || true
  fi
  rm -f "$log"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for step in setup build; do
  if ! bash "scripts/$step.sh" >"$log" 2>&1; then
    cat "$log" >&2
    echo "demo: scripts/$step.sh failed" >&2
    exit 1
  fi
done

# The mock prints "PORT <n>" once it listens; wait for that line (with a deadline).
coproc MOCK { exec python3 "$ROOT/examples/mock_llm_server.py" --port 0 --quiet --exit-with-parent \
  --delay "${MOCK_DELAY:-0.03}"; }
mock_pid=$MOCK_PID
line=""
if ! read -r -t 10 -u "${MOCK[0]}" line || [[ "$line" != PORT\ * ]]; then
  echo "demo: the mock server did not start" >&2
  exit 1
fi
port=${line#PORT }

export LUA_CPATH="$BUILD_DIR/?.so;;"
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
export OPENAI_BASE_URL="http://127.0.0.1:$port/v1"
export OPENAI_API_KEY="mock-key"

prompt="${*:-What is a server-sent event stream?}"
echo "demo: mock LLM on 127.0.0.1:$port; prompt: $prompt" >&2
status=0
lua5.4 "$ROOT/examples/openai_chat.lua" "$prompt" || status=$?
exit "$status"
