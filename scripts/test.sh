#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (Catch2 + busted, through ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh "$@"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j2
