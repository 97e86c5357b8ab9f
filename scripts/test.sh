#!/usr/bin/env bash
# Installs what is missing, builds, and runs the test suite (ctest).
# Long soak and benchmark runs carry the labels `soak` / `bench` and are skipped;
# run them with: ctest --test-dir build -L soak
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" -LE 'soak|bench' "$@"
