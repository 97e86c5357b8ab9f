#!/bin/sh
# Checks the shipped systemd units with systemd-analyze (offline) and the sample config
# with kaizend --check-config.  usage: systemd_units_test.sh SYSTEMD_DIR KAIZEND WORK_DIR
set -eu
src=$1 kaizend=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
# verify needs ExecStart to exist: point it at the built binary.
sed "s#^ExecStart=/usr/bin/kaizend#ExecStart=$kaizend#" "$src/kaizend.service" > "$work/kaizend.service"
cp "$src/kaizend.socket" "$work/kaizend.socket"
grep -q "^ExecStart=$kaizend " "$work/kaizend.service"

status=0
SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$work/kaizend.service" \
  "$work/kaizend.socket" > "$work/verify.log" 2>&1 || status=$?
cat "$work/verify.log"
# Complaints about other units on the host are not ours; any line naming ours fails.
if grep -E "kaizend\.(service|socket)" "$work/verify.log"; then
  echo "FAIL: systemd-analyze verify reported problems in kaizend units"; exit 1
fi
if [ "$status" -ne 0 ] && [ -s "$work/verify.log" ] && ! grep -qiE "bus|connect|Failed to" "$work/verify.log"; then
  echo "FAIL: systemd-analyze verify exit $status"; exit 1
fi

# Exposure score (lower is better); informational, but it must run.
if systemd-analyze security --offline=true "$work/kaizend.service" > "$work/security.log" 2>&1; then
  tail -n 3 "$work/security.log"
else
  tail -n 5 "$work/security.log"; echo "(systemd-analyze security --offline unavailable)"
fi

# The sample config is valid (the api key file stays commented out).
"$kaizend" --check-config --config "$src/kaizend.conf" > "$work/check.log" 2>&1 || {
  cat "$work/check.log"; echo "FAIL: sample kaizend.conf does not pass --check-config"; exit 1; }
echo "ok"
