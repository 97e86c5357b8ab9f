#!/usr/bin/env bash
# kaizenctl db import / backup / verify / restore, end to end on a scratch state dir.
set -u
CTL=${KAIZEN_BIN_DIR:?}/kaizenctl
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() {  # check DESCRIPTION COMMAND...: the command must succeed
  if ! "${@:2}"; then echo "FAIL: $1"; fails=$((fails + 1)); fi
}
expect_code() {  # expect_code WANT DESCRIPTION -- COMMAND...
  local want=$1 what=$2; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?
  if [ "$got" != "$want" ]; then
    echo "FAIL: $what: exit $got, want $want"; cat "$tmp/out" "$tmp/err"; fails=$((fails + 1))
  fi
}

cat >"$tmp/faq.jsonl" <<'JSONL'
{"messages":[{"role":"user","content":"CHOREI có nghĩa là gì?"},{"role":"assistant","content":"CHOREI là tên công ty."}]}
{"messages":[{"role":"user","content":"oops"}
{"messages":[{"role":"system","content":"s"},{"role":"user","content":"sabitech?"},{"role":"assistant","content":"Có."}]}
JSONL

expect_code 1 "import with one bad line" -- "$CTL" db import --state-dir "$tmp/state" "$tmp/faq.jsonl"
check "per-line error names file and line" grep -q "faq.jsonl:2: not valid JSON" "$tmp/err"
check "summary counts" grep -q "3 lines, 2 imported, 0 already present, 1 bad" "$tmp/out"
expect_code 1 "re-import" -- "$CTL" db import --json --state-dir "$tmp/state" "$tmp/faq.jsonl"
check "re-import adds nothing" grep -q '"imported": 0' "$tmp/out"
check "re-import sees duplicates" grep -q '"duplicates": 2' "$tmp/out"

mkdir -p "$tmp/state/adapters/v000001" && echo weights >"$tmp/state/adapters/v000001/adapter_model.safetensors"
expect_code 0 "backup" -- "$CTL" db backup --state-dir "$tmp/state" --out "$tmp/bk"
check "backup copied adapters" test -f "$tmp/bk/adapters/v000001/adapter_model.safetensors"
expect_code 0 "second (incremental) backup" -- "$CTL" db backup --state-dir "$tmp/state" --out "$tmp/bk"
expect_code 0 "verify" -- "$CTL" db verify --backup "$tmp/bk"
check "verify lists both backups" grep -q "2 backup(s)" "$tmp/out"
check "verify counts examples" grep -q "examples=2" "$tmp/out"
check "verify says OK" grep -q "backup OK" "$tmp/out"
expect_code 0 "verify --json" -- "$CTL" db verify --json --backup "$tmp/bk"
check "verify json ok" grep -q '"ok": true' "$tmp/out"

expect_code 0 "restore into a new state dir" -- "$CTL" db restore --backup "$tmp/bk" --state-dir "$tmp/state2"
check "restore copied adapters" test -f "$tmp/state2/adapters/v000001/adapter_model.safetensors"
expect_code 1 "restored data is there (import finds duplicates)" -- \
  "$CTL" db import --json --state-dir "$tmp/state2" "$tmp/faq.jsonl"
check "restored examples" grep -q '"duplicates": 2' "$tmp/out"
expect_code 1 "restore refuses to overwrite" -- "$CTL" db restore --backup "$tmp/bk" --state-dir "$tmp/state2"
check "overwrite message" grep -q "already holds a database" "$tmp/err"
expect_code 0 "restore --force" -- "$CTL" db restore --force --backup "$tmp/bk" --state-dir "$tmp/state2"

# Damage one table file of the backup: verify must notice.
sst=$(find "$tmp/bk/db" -name '*.sst' | head -1)
check "backup has table files" test -n "$sst"
printf 'XXXXXXXXXXXXXXXX' | dd of="$sst" bs=1 seek=100 conv=notrunc status=none
expect_code 1 "verify damaged backup" -- "$CTL" db verify --backup "$tmp/bk"
check "damage reported as corruption" grep -q "Corruption" "$tmp/err"

expect_code 2 "missing flags is usage" -- "$CTL" db backup --state-dir "$tmp/state"
expect_code 2 "unknown flag is usage" -- "$CTL" db verify --backup "$tmp/bk" --bogus
expect_code 3 "missing backup is not found" -- "$CTL" db verify --backup "$tmp/nope"
expect_code 3 "missing state dir is not found" -- "$CTL" db backup --state-dir "$tmp/nope" --out "$tmp/bk2"

if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "kaizenctl db: all checks passed"
