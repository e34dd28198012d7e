#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CallMeMaybe does not reflect toward third parties: connected peers that
# flood a stock `keyway listen` with sealed CallMeMaybes naming addresses
# of others (UDP sockets of tests/integration/disco_reflect.c on
# 127.0.0.2-33) get it to send there no more than the probe budget of
# docs/protocol/disco.md: per remote 32 datagrams / 4608 bytes at once and
# 8 / 1152 per second, per endpoint 256 / 36864 and 64 / 9216. Loopback only.
. "$(dirname "$0")/cli_lib.sh"
H=$BUILD/tests/disco_reflect
[ -x "$H" ] || { echo "no $H"; exit 1; }

"$KW" listen --ephemeral -v --bind 127.0.0.1:0 --ticket-file "$WORK/t" \
  </dev/null >/dev/null 2>"$WORK/l.err" &
lpid=$!
PIDS+=("$lpid")
wait_file "$WORK/t" 10 || bad "listener ticket"

run() { # run NAME ARGS...: the helper's verdict and figures
  local n=$1
  shift
  set +e
  timeout 60 "$H" "$WORK/t" "$@" >"$WORK/$n.out" 2>"$WORK/$n.err"
  local rc=$?
  set -e
  echo "# $(cat "$WORK/$n.out")"
  check "$n: what reached the third parties stays within the bound (exit $rc)" test "$rc" -eq 0
  [ "$rc" -eq 0 ] || cat "$WORK/$n.err"
}
# the audit's flood: one CallMeMaybe naming 16 addresses, 199 empty ones
run same same 1
# every CallMeMaybe brings 16 new candidates
run churn churn 1
# eight identities at once: the endpoint's budget holds them all
run many churn 8

check "the listener is still up" kill -0 "$lpid"
finish
