#!/usr/bin/env bash
# The README's quick start, exactly: `scripts/run.sh` starts kaizend on the demo model (with
# its state in a scratch KAIZEN_VAR and a free KAIZEN_PORT instead of ./var and 8088), then the
# README's quick-start block (between `<!-- quickstart` and `<!-- /quickstart -->`) runs as
# written, with var/, build/ and 8088 pointed at those. It must teach the seed's facts with
# the daemon's defaults (the gate passes), answer the seed question with the company's answer
# from `kaizen` and not from `base`, and the README's curl must get that answer too.
#
# usage: quickstart_test.sh SOURCE_DIR BUILD_DIR
set -u
SRC=${1:?source dir}
BUILD=${2:?build dir}
tmp=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# 1. The quick-start block, as the README has it.
block=$(awk '/^<!-- quickstart/{on=1; next} /^<!-- \/quickstart -->/{on=0} on' "$SRC/README.md" | grep -v '^```')
if [[ -z "$block" ]]; then
  echo "FAIL: README.md has no <!-- quickstart --> ... <!-- /quickstart --> block"
  exit 1
fi
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
var="$tmp/var"
script=$(printf '%s\n' "$block" | sed -e "s#\bvar/#$var/#g" -e "s#\bbuild/#$BUILD/#g" -e "s#\b8088\b#$port#g")
answer=$(/usr/bin/python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["messages"][-1]["content"])' \
  "$SRC/examples/seed_facts.jsonl")

# 2. scripts/run.sh, as the README says (it builds nothing new here: the suite built it).
cd "$SRC" || exit 1
KAIZEN_VAR="$var" KAIZEN_PORT="$port" BUILD_DIR="$BUILD" scripts/run.sh >"$tmp/run.log" 2>&1 &
server_pid=$!
ready=0
for _ in $(seq 1 600); do  # up to 120 s for install check, no-op build, demo model, start
  if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then ready=1; break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
  sleep 0.2
done
if [[ $ready != 1 ]]; then
  echo "FAIL: kaizend from scripts/run.sh did not become ready"; cat "$tmp/run.log"; exit 1
fi

# 3. The block.
printf 'set -e\n%s\n' "$script" >"$tmp/quickstart.sh"
echo "--- running the README's quick start:"; cat "$tmp/quickstart.sh"
bash "$tmp/quickstart.sh" >"$tmp/out" 2>"$tmp/err"
rc=$?
echo "--- output:"; cat "$tmp/out" "$tmp/err"
[[ $rc == 0 ]] || fail "the quick start exited $rc"

grep -q "^3\. training run .* started" "$tmp/out" || fail "the demo did not start a training run"
grep -q "^   run [0-9]* published" "$tmp/out" || fail "the run was not published with the defaults"
grep -qF "  kaizen: $answer" "$tmp/out" || fail "kaizen does not give the company's answer"
if grep -qF "  base:   $answer" "$tmp/out"; then fail "base gives the learned answer"; fi
grep -q "system message, prefix cached" "$tmp/out" || fail "no cost table for the system-message method"
# The curl after the demo: the OpenAI answer from model kaizen is the company's.
/usr/bin/python3 - "$tmp/out" "$answer" <<'PY' || fail "the README's curl did not get the company's answer"
import json, sys
text, answer = open(sys.argv[1]).read(), sys.argv[2]
for line in text.splitlines():
    if line.startswith("{") and '"choices"' in line:
        j = json.loads(line)
        sys.exit(0 if j["choices"][0]["message"]["content"] == answer and j["model"].startswith("kaizen") else 1)
sys.exit(1)
PY
# One log pattern for every logger: "<date>T<time> <level> <layer> event=...".
if grep -E "^\[[0-9]{4}-" "$tmp/run.log"; then fail "a log line in spdlog's default pattern"; fi
grep -qE "^[0-9-]+T[0-9:.]+ info daemon event=service_ready" "$tmp/run.log" || fail "service_ready not in the daemon pattern"
grep -qE "^[0-9-]+T[0-9:.]+ info learner event=run_finished" "$tmp/run.log" || fail "no learner line in the pattern"

if [[ $fails != 0 ]]; then
  echo "--- kaizend log:"; cat "$tmp/run.log"
  echo "$fails check(s) failed"; exit 1
fi
echo "quickstart: all checks passed"
