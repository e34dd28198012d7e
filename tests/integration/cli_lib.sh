# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared helpers of the CLI integration scripts: a work dir, background
# processes killed on exit, bounded waits, pass/fail counting. Loopback only.
set -euo pipefail
BUILD=${1:?usage: $0 BUILD_DIR}
KW=$BUILD/keyway
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kwcli.XXXXXX")
# relays started here keep their self-signed identity under $WORK
export STATE_DIRECTORY=$WORK/relay-state
PIDS=()
PASSED=0
FAILED=0
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ok() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
bad() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
check() { # check DESCRIPTION COMMAND...
  local d=$1
  shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}
# bg NAME CMD...: run in the background, stderr to $WORK/NAME.err
bg() {
  local n=$1
  shift
  "$@" 2>"$WORK/$n.err" &
  PIDS+=($!)
  LASTPID=$!
}
wait_file() { # wait_file FILE SECONDS
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    [ -s "$1" ] && return 0
    sleep 0.05
  done
  return 1
}
# start_relay: a keyway-relay with STUN on 127.0.0.1, its log in
# $WORK/relay.log and its CA in $WORK/ca.pem; sets RELAY_ADDR (ADDR:PORT)
# and RELAY_URL (https://ADDR:PORT/?stun=PORT). Exits with the log when
# it has not started within 5 s.
start_relay() {
  local i saddr
  "$BUILD/keyway-relay" --listen 127.0.0.1:0 --stun-listen 127.0.0.1:0 \
    --cert-out "$WORK/ca.pem" --json 2>"$WORK/relay.log" &
  PIDS+=($!)
  for ((i = 0; i < 100; i++)); do
    grep -q '"event":"stun.listening"' "$WORK/relay.log" 2>/dev/null && break
    sleep 0.05
  done
  RELAY_ADDR=$(sed -n 's/.*"event":"relay.listening","addr":"\([^"]*\)".*/\1/p' "$WORK/relay.log" | head -n1)
  saddr=$(sed -n 's/.*"event":"stun.listening","addr":"\([^"]*\)".*/\1/p' "$WORK/relay.log" | head -n1)
  if [ -z "$RELAY_ADDR" ] || [ -z "$saddr" ]; then
    echo "the relay did not start"
    cat "$WORK/relay.log"
    exit 1
  fi
  RELAY_URL="https://$RELAY_ADDR/?stun=${saddr##*:}"
}
finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
