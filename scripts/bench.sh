#!/usr/bin/env bash
# The one benchmark command: installs what the peers need, builds (RelWithDebInfo = -O2 -g,
# what users get, unless BUILD_TYPE says otherwise), runs every end-to-end benchmark RUNS
# times (default 3; the report takes medians), and rewrites BENCHMARKS.md and
# tests/bench/throughput.png. Sections of BENCHMARKS.md titled "Parser" and "lev" are kept
# as they are (their owners write them). Raw results go to tests/bench/out/. Not part of the
# test command; takes about 10 minutes. Run it as root or with sudo available (apt-get).
#
#   scripts/bench.sh            BUILD_DIR=build RUNS=3 by default
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
RUNS=${RUNS:-3}
EVENTS=${EVENTS:-200000}
OUT=$ROOT/tests/bench/out
BENCH=$ROOT/tests/bench

# --- what the benchmark needs ----------------------------------------------------------
bash scripts/setup.sh
PKGS=(gnuplot-nox lua-http lua5.2 lua-cjson nodejs npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if command -v node >/dev/null && command -v npm >/dev/null; then
  # Node 20 may come from elsewhere than Debian: only install Debian's if there is none.
  missing=("${missing[@]/nodejs/}")
  missing=("${missing[@]/npm/}")
fi
read -r -a missing <<<"${missing[*]}"
if ((${#missing[@]} > 0)); then
  echo "bench: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ ! -d $BENCH/node_modules/eventsource-parser ]]; then
  (cd "$BENCH" && npm ci --no-audit --no-fund --silent)
fi

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$BUILD_DIR" -j2 --target lev http sse_server_bench sse_parser_bench >/dev/null
BUILD=$(cd "$BUILD_DIR" && pwd)
SERVER=$BUILD/tests/bench/sse_server_bench
mkdir -p "$OUT"
rm -f "$OUT"/*.txt
cc -O2 -shared -fPIC -o "$OUT/onebyte_recv.so" "$BENCH/onebyte_recv.c" -ldl
bash tests/servers/make_pki.sh "$OUT/pki" >/dev/null
CA=$OUT/pki/ca.pem

export LUA_CPATH="$BUILD/?.so;;"
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
# 10,000 idle + 1,000 active streams need more than the usual 1024 fds.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
IDLE_MAX=10000
if [[ $NOFILE != unlimited ]] && ((NOFILE < 11200)); then IDLE_MAX=$((NOFILE - 1200)); fi

# --- servers ----------------------------------------------------------------------------
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
start_server() { # file args... (not in a subshell: pids must reach the trap)
  local file=$1
  shift
  "$SERVER" serve "$@" >"$file" &
  pids+=($!)
  for _ in $(seq 100); do [[ -s $file ]] && break; sleep 0.05; done
}
start_server "$OUT/plain.port"
start_server "$OUT/tls.port" --tls "$OUT/pki/server.pem" "$OUT/pki/server.key"
PORT=$(awk '{print $2}' "$OUT/plain.port")
TPORT=$(awk '{print $2}' "$OUT/tls.port")
URL=http://127.0.0.1:$PORT
TURL=https://localhost:$TPORT
STREAM="/stream?n=$EVENTS"

RESULTS=$OUT/results.txt
# record NAME COMMAND...: runs it (with a time limit), appends "NAME key=value..." to results.
record() {
  local name=$1
  shift
  local line
  # Shell functions (exported below) run through bash so that timeout can run them.
  if declare -F "$1" >/dev/null; then set -- bash -c '"$@"' _ "$@"; fi
  if line=$(timeout 300 "$@" 2>>"$OUT/errors.txt" | tail -1) && [[ -n $line ]]; then
    echo "$name $line" >>"$RESULTS"
  else
    echo "$name failed=1" >>"$RESULTS"
    echo "bench: $name failed (see $OUT/errors.txt)" >&2
  fi
}
sink() { # PATH -> "bytes=<n> wall=<s> cpu=<s>"
  "$SERVER" fetch "$PORT" "$1" 2>&1 >/dev/null | awk '{printf "bytes=%d wall=%s cpu=%s\n", $1, $2, $3}'
}
tls_sink() {
  python3 - "$TPORT" "$1" "$CA" <<'EOF'
import socket, ssl, sys, time
port, path, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
t0 = time.monotonic()
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
buf, n = bytearray(1 << 16), 0
while True:
    try:
        k = s.recv_into(buf)
    except (ssl.SSLEOFError, ConnectionResetError):
        break
    if k == 0:
        break
    n += k
print(f"bytes={n} wall={time.monotonic() - t0:.6f}")
EOF
}
# The same 16 MB read one byte per recv() by the raw client: the cost of the reads alone.
floor_sink() {
  LD_PRELOAD="$OUT/onebyte_recv.so" "$SERVER" fetch "$PORT" "$1" 2>&1 >/dev/null |
    awk '{printf "bytes=%d wall=%s cpu=%s\n", $1, $2, $3}'
}
export SERVER PORT TPORT CA OUT
export -f sink tls_sink floor_sink

{
  echo "date $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc)"
  echo "mem $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel $(uname -r)"
  echo "os $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "build $BUILD_DIR ${BUILD_TYPE:-RelWithDebInfo} $(c++ --version | head -1)"
  echo "lua $(lua5.4 -v 2>&1 | head -1)"
  echo "lua52 $(lua5.2 -v 2>&1 | head -1)"
  echo "cjson $(dpkg-query -W -f='${Version}' lua-cjson)"
  echo "luahttp $(dpkg-query -W -f='${Version}' lua-http) (cqueues $(dpkg-query -W -f='${Version}' lua-cqueues))"
  echo "node $(node --version)"
  echo "esp $(node -p "require('$BENCH/node_modules/eventsource-parser/package.json').version")"
  echo "openssl $(openssl version)"
  echo "libuv $(dpkg-query -W -f='${Version}' libuv1-dev)"
  echo "load_before $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"

echo "bench: warming up the servers" >&2
sink "$STREAM" >/dev/null
sink "$STREAM&framing=close" >/dev/null
tls_sink "$STREAM" >/dev/null

# --- 2 + 5: throughput, lev-http and peers, JSON on/off, plain and TLS ------------------
for run in $(seq "$RUNS"); do
  echo "bench: throughput run $run/$RUNS (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  echo "load run$run $(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/machine.txt"
  record sink_plain sink "$STREAM"
  record sink_tls tls_sink "$STREAM"
  record cjson_only lua5.4 "$BENCH/cjson_only.lua" "$EVENTS"
  for json in off on; do
    record "lev_$json" lua5.4 "$BENCH/e2e_lev.lua" "$URL$STREAM" "$json" "$EVENTS"
    record "lev_tls_$json" lua5.4 "$BENCH/e2e_lev.lua" "$TURL$STREAM" "$json" "$EVENTS" "$CA"
    record "node_$json" node "$BENCH/e2e_node.mjs" "$URL$STREAM" "$json" "$EVENTS"
    record "luahttp_$json" lua5.2 "$BENCH/e2e_luahttp.lua" "$URL$STREAM" "$json" "$EVENTS"
    record "purelua_$json" bash -c '"$1" fetch "$2" "$3" --out 2>/dev/null | lua5.4 "$4" "$5" "$6"' _ \
      "$SERVER" "$PORT" "$STREAM&framing=close" "$BENCH/e2e_purelua.lua" "$json" "$EVENTS"
  done
done

# --- 3: latency ---------------------------------------------------------------------------
for run in $(seq "$RUNS"); do
  echo "bench: latency run $run/$RUNS" >&2
  record latency lua5.4 "$BENCH/e2e_latency.lua" "$URL/latency?n=10000&us=1000" 10000
  record latency_floor "$SERVER" fetch "$PORT" "/latency?n=10000&us=1000" --latency
done

# --- 4: scale -------------------------------------------------------------------------------
for run in $(seq "$RUNS"); do
  echo "bench: scale run $run/$RUNS" >&2
  for idle in 0 1000 "$IDLE_MAX"; do
    record "scale_$idle" lua5.4 "$BENCH/e2e_scale.lua" "$URL" "$idle" 1000 100 20000
  done
  record scale_tls lua5.4 "$BENCH/e2e_scale.lua" "$TURL" 2000 100 100 20000 "$CA"
done

# --- 6: linearity -------------------------------------------------------------------------
LINE=$((16 << 20))
for run in $(seq "$RUNS"); do
  echo "bench: linearity run $run/$RUNS" >&2
  record line_normal lua5.4 "$BENCH/e2e_line.lua" "$URL/line?mb=16&kind=line" "$LINE"
  record line_1byte env LD_PRELOAD="$OUT/onebyte_recv.so" lua5.4 "$BENCH/e2e_line.lua" \
    "$URL/line?mb=16&kind=line" "$LINE"
  record line_1mb_1byte env LD_PRELOAD="$OUT/onebyte_recv.so" lua5.4 "$BENCH/e2e_line.lua" \
    "$URL/line?mb=1&kind=line" $((1 << 20))
  record line_floor floor_sink "/line?mb=16&kind=line"
done
"$BUILD/tests/bench/sse_parser_bench" >"$OUT/sse_parser_bench.txt" 2>&1 || true

echo "load_after $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
python3 "$BENCH/report.py" "$OUT" "$ROOT/BENCHMARKS.md" "$BENCH/throughput.png"
echo "bench: wrote BENCHMARKS.md and tests/bench/throughput.png" >&2
