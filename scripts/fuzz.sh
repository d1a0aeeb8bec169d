#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for N seconds (default 60) over its
# committed seed corpus (tests/fuzz/corpus/<target>/). A crash fails the run and leaves the
# reproducer in build-fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
bash scripts/setup.sh --ci
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DLEVHTTP_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=$(cd tests/fuzz && ls *_fuzz.cpp 2>/dev/null | sed 's/\.cpp$//')
[[ -n "$targets" ]] || { echo "fuzz: no targets"; exit 0; }
cmake --build build-fuzz -j"$(nproc)" --target $targets
mkdir -p build-fuzz/artifacts
for t in $targets; do
  name=${t%_fuzz}
  corpus=build-fuzz/corpus/$name
  mkdir -p "$corpus"
  seeds=tests/fuzz/corpus/$name
  [[ -d "$seeds" ]] || seeds=""
  echo "fuzz: $t for ${secs}s"
  log=build-fuzz/$t.log
  rc=0
  build-fuzz/tests/fuzz/$t -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix=build-fuzz/artifacts/ "$corpus" $seeds >"$log" 2>&1 || rc=$?
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$log" || true
  if [[ $rc -ne 0 ]]; then
    tail -n 60 "$log"
    echo "fuzz: $t FAILED (exit $rc)"
    exit 1
  fi
done
echo "fuzz: all targets ran clean"
