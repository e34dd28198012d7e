#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Birthday probing's extra sockets on loopback (tests/integration/
# bday_xsock.c): an endpoint that learns from two relays' STUN servers
# (sockets of the helper that answer as an endpoint-dependent NAT) that it
# is EDM opens KW_RP_BDAY_SOCKETS extra sockets when a peer says it is EIM,
# moves the connection onto the one a Pong came on and closes the others
# at once, respects the per-endpoint cap across two peers, and closes
# every extra socket when it is freed. Loopback only.
. "$(dirname "$0")/cli_lib.sh"
H=$BUILD/tests/bday_xsock
[ -x "$H" ] || { echo "no $H"; exit 1; }
relay() { # relay NAME: a keyway-relay without STUN; sets ADDR_NAME
  local i a
  "$BUILD/keyway-relay" --listen 127.0.0.1:0 --stun-listen off \
    --cert-out "$WORK/$1.pem" --json 2>"$WORK/$1.log" &
  PIDS+=($!)
  for ((i = 0; i < 100; i++)); do
    grep -q '"event":"relay.listening"' "$WORK/$1.log" 2>/dev/null && break
    sleep 0.05
  done
  a=$(sed -n 's/.*"event":"relay.listening","addr":"\([^"]*\)".*/\1/p' "$WORK/$1.log" | head -n1)
  [ -n "$a" ] || { echo "relay $1 did not start"; cat "$WORK/$1.log"; exit 1; }
  printf -v "ADDR_$1" '%s' "$a"
}
relay r1
relay r2
wait_file "$WORK/r1.pem" 5 && wait_file "$WORK/r2.pem" 5 || { echo "no relay certificates"; exit 1; }
cat "$WORK/r1.pem" "$WORK/r2.pem" >"$WORK/ca.pem"
set +e
timeout 60 "$H" "$ADDR_r1" "$ADDR_r2" "$WORK/ca.pem" >"$WORK/h.out" 2>"$WORK/h.err"
rc=$?
set -e
while read -r l; do
  case $l in
    "ok - "*) ok "${l#ok - }" ;;
    "FAIL - "*) bad "${l#FAIL - }" ;;
  esac
done <"$WORK/h.out"
check "bday_xsock: exit 0 (got $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -20 "$WORK/h.err"
finish
