#!/usr/bin/env bash
# Installs the Debian packages lev-http needs to build and test. Idempotent: when every
# package is present it does nothing (no apt-get update, no network). Run as root.
set -euo pipefail
PKGS=(lua5.4 liblua5.4-dev lua-cjson libuv1-dev libssl-dev openssl node-llhttp catch2 lua-busted
      python3 cmake g++ make pkg-config ca-certificates)
# Extra packages for CI-only checks (fuzzing with clang's libFuzzer): `setup.sh --ci`.
if [[ "${1:-}" == "--ci" ]]; then PKGS+=(clang libclang-rt-14-dev); fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then exit 0; fi
echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
