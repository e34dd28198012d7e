#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Address families and advertised candidates on loopback:
#  - --bind 127.0.0.1:0 alone turns IPv6 off: the ticket names 127.0.0.1
#    only, and a peer reaches it there;
#  - --bind [::1]:0 alone: the ticket names ::1 only;
#  - a bad --deny-prefix is a usage error (exit 2) naming the flag.
. "$(dirname "$0")/cli_lib.sh"
TT=$BUILD/tests/ticket_tool

"$KW" listen --ephemeral -q --bind 127.0.0.1:0 --ticket-file "$WORK/t4" \
  </dev/null >"$WORK/l4.out" 2>"$WORK/l4.err" &
PIDS+=($!)
wait_file "$WORK/t4" 10 || bad "v4 listener ticket"
addrs=$("$TT" addrs "$(cat "$WORK/t4")")
check "v4 only: the ticket names 127.0.0.1 and nothing else ($(echo $addrs))" \
  test "$(grep -c . <<<"$addrs")" -eq 1 -a -n "$(grep '^127\.0\.0\.1:[0-9]*$' <<<"$addrs")"

set +e
timeout 30 "$KW" ping --ephemeral -q -c 2 --bind 127.0.0.1:0 "$(cat "$WORK/t4")" \
  >"$WORK/p4.out" 2>"$WORK/p4.err"
rc=$?
set -e
check "v4 only: ping goes to 127.0.0.1 (exit $rc)" \
  test "$(grep -Ec '^seq=[12] path=direct addr=127\.0\.0\.1:[0-9]+ ' "$WORK/p4.out")" -eq 2

"$KW" listen --ephemeral -q --bind '[::1]:0' --ticket-file "$WORK/t6" \
  </dev/null >"$WORK/l6.out" 2>"$WORK/l6.err" &
PIDS+=($!)
if wait_file "$WORK/t6" 10; then
  addrs=$("$TT" addrs "$(cat "$WORK/t6")")
  check "v6 only: the ticket names [::1] and nothing else ($(echo $addrs))" \
    test "$(grep -c . <<<"$addrs")" -eq 1 -a -n "$(grep '^\[::1\]:[0-9]*$' <<<"$addrs")"
else
  # a machine without IPv6 cannot bind ::1: the listener must say so
  check "v6 only: without IPv6 the listener fails with a reason" \
    grep -qi "addr\|bind\|ipv6\|unsupported" "$WORK/l6.err"
fi

set +e
"$KW" listen --ephemeral --deny-prefix 10.0.0.1/8 </dev/null >/dev/null 2>"$WORK/bad.err"
rc=$?
set -e
check "a bad --deny-prefix is a usage error (exit $rc)" test "$rc" -eq 2
check "the error names the flag" grep -q -- "--deny-prefix 10.0.0.1/8" "$WORK/bad.err"
finish
