#!/usr/bin/env bash
# Installs what is missing, builds, creates the embedded demo model if needed, and
# starts kaizend on it in the foreground (Ctrl-C stops it). Everything it writes stays
# under ./var/ in the checkout: no root paths, nothing to clean up elsewhere.
#
#   scripts/run.sh                 # demo model, Unix socket ./var/run/kaizend.sock, TCP 127.0.0.1:8088
#   scripts/run.sh --model DIR     # any Hugging Face Qwen3/Qwen2/Llama directory
#   Extra arguments are passed to kaizend (every config key is also a --flag).
#   KAIZEN_VAR=DIR (default ./var) and KAIZEN_PORT=N (default 8088) move the state and the
#   TCP port (tests/e2e/quickstart_test.sh runs this script that way).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
./scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target kaizend kaizenctl

VAR=${KAIZEN_VAR:-$ROOT/var}
PORT=${KAIZEN_PORT:-8088}
mkdir -p "$VAR/run" "$VAR/state"
MODEL="$VAR/demo-model"
if [[ ! -f "$MODEL/model.safetensors" ]]; then
  echo "run.sh: creating the demo model in $MODEL"
  "$BUILD_DIR/bin/kaizenctl" model make-tiny --out "$MODEL" --seed 0
fi
if [[ ! -f "$VAR/api_key" ]]; then
  (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$VAR/api_key")
fi
CONF="$VAR/kaizend.conf"
if [[ ! -f "$CONF" ]]; then
  cat > "$CONF" <<CONF
# Development config written by scripts/run.sh; see systemd/kaizend.conf for every key.
model = $MODEL
state_dir = $VAR/state
socket = $VAR/run/kaizend.sock
listen = 127.0.0.1:$PORT
api_key_file = $VAR/api_key
agent_name = Kaizen
system_prompt = You are {agent_name}, a helpful assistant.
CONF
fi
echo "run.sh: kaizend starting (config $CONF)"
echo "run.sh:   demo:   $BUILD_DIR/bin/kaizenctl --socket $VAR/run/kaizend.sock demo"
echo "run.sh:   chat:   curl -s http://127.0.0.1:$PORT/v1/chat/completions -H \"Authorization: Bearer \$(cat $VAR/api_key)\" \\"
echo "run.sh:             -H 'Content-Type: application/json' -d '{\"model\":\"kaizen\",\"messages\":[{\"role\":\"user\",\"content\":\"Xin chào\"}]}'"
echo "run.sh:   admin:  KAIZEN_SOCKET=$VAR/run/kaizend.sock $BUILD_DIR/bin/kaizenctl status"
exec "$BUILD_DIR/bin/kaizend" --config "$CONF" "$@"
