#!/usr/bin/env bash
# kaizenctl tokenize / detokenize end to end: ids equal the JS reference tokenizer's, the
# text round-trips, and bad input gives a message and the documented exit code.
# env: KAIZEN_BIN_DIR, KAIZEN_QWEN3_TOKENIZER_DIR, KAIZEN_SOURCE_DIR
set -u
ctl="$KAIZEN_BIN_DIR/kaizenctl"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model="$tmp/model"
mkdir -p "$model"
cp "$KAIZEN_QWEN3_TOKENIZER_DIR/tokenizer.json" "$KAIZEN_QWEN3_TOKENIZER_DIR/tokenizer_config.json" "$model/"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_rc WANT CMD...: runs CMD, checks the exit code and that stderr says something.
expect_rc() {
  local want=$1; shift
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ "$rc" = "$want" ] || fail "exit $rc (want $want): $* -- $(cat "$tmp/err")"
  if [ "$want" != 0 ] && [ ! -s "$tmp/err" ]; then fail "no message on stderr: $*"; fi
}

text=$'Bạn có biết về công ty sabitech không?\n<|im_start|>user\nCHOREI 👍🏽 <think>x</think>'
expect_rc 0 "$ctl" tokenize --model "$model" --text "$text"
ours=$(tr -d ' \n' <"$tmp/out")
printf '%s' "$text" | python3 -c 'import json,sys; print(json.dumps([sys.stdin.read()]))' >"$tmp/in.json"
ref=$(node "$KAIZEN_SOURCE_DIR/tools/ref/tokenize_ref.mjs" encode --model "$model" --in "$tmp/in.json" |
      python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[0], separators=(",", ":")))')
[ "$ours" = "$ref" ] || fail "ids differ from reference: ours $ours ref $ref"

expect_rc 0 "$ctl" tokenize --model "$model" --text "$text" --json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["count"]==len(j["ids"])==len(j["tokens"]) and j["ids"][0]>=0' "$tmp/out" ||
  fail "tokenize --json shape"

expect_rc 0 "$ctl" tokenize --model "$model" --text "<|im_end|>"
[ "$(tr -d ' \n' <"$tmp/out")" = "[151645]" ] || fail "special token id: $(cat "$tmp/out")"
expect_rc 0 "$ctl" tokenize --model "$model" --text "<|im_end|>" --no-special
grep -q 151645 "$tmp/out" && fail "--no-special still produced the special id"

ids=$(echo "$ours" | tr -d '[]')
expect_rc 0 "$ctl" detokenize --model "$model" --ids "$ids"
[ "$(cat "$tmp/out")" = "$text" ] || fail "detokenize round trip: $(cat "$tmp/out")"
expect_rc 0 "$ctl" detokenize --model "$model" --json "$ours"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["text"]==sys.argv[2]' "$tmp/out" "$text" ||
  fail "detokenize --json: $(cat "$tmp/out")"
expect_rc 0 "$ctl" detokenize --model "$model" --ids "[151644, 872]" --skip-special
[ "$(cat "$tmp/out")" = "user" ] || fail "--skip-special: $(cat "$tmp/out")"

# Bad input.
expect_rc 3 "$ctl" tokenize --model "$tmp/nope" --text hi
expect_rc 3 "$ctl" tokenize --model "$tmp" --text hi            # no tokenizer.json
mkdir -p "$tmp/bad" && head -c 5000 "$model/tokenizer.json" >"$tmp/bad/tokenizer.json"
expect_rc 1 "$ctl" tokenize --model "$tmp/bad" --text hi        # truncated JSON
grep -q "malformed JSON" "$tmp/err" || fail "truncated tokenizer.json message: $(cat "$tmp/err")"
expect_rc 2 "$ctl" tokenize --model "$model"                    # no --text
expect_rc 2 "$ctl" tokenize --model "$model" --text hi --bogus
expect_rc 2 "$ctl" detokenize --model "$model" --ids 1,x,3
expect_rc 2 "$ctl" detokenize --model "$model" --ids "1,,3"
expect_rc 2 "$ctl" detokenize --model "$model" --ids "[1, 2.5]"
expect_rc 2 "$ctl" detokenize --model "$model" --ids "[1, 2"
expect_rc 2 "$ctl" detokenize --model "$model" --ids 999999999
grep -q "out of range" "$tmp/err" || fail "out-of-range message: $(cat "$tmp/err")"
expect_rc 2 "$ctl" detokenize --model "$model" --ids -1
expect_rc 2 "$ctl" detokenize --model "$model"
expect_rc 0 "$ctl" tokenize --help

[ "$failures" = 0 ] && echo "kaizenctl tokenize/detokenize: all checks passed"
exit "$failures"
