#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# --relay-only, --direct-only and --ticket-type with a keyway-relay on
# loopback: a relay-only listener's ticket names the relay and no address,
# and its pipe goes by the relay only (from either side); --direct-only
# never takes the relay (and says so when a ticket has no address);
# --ticket-type id|relay|addresses|full hold what they say, and an id-only
# ticket is dialed by lookup. Only 127.0.0.1 is used.
. "$(dirname "$0")/cli_lib.sh"
TT=$BUILD/tests/ticket_tool
start_relay
url=$RELAY_URL
R=(--ephemeral --relay "$url" --relay-ca "$WORK/ca.pem" --bind 127.0.0.1:0)
head -c 1M /dev/urandom >"$WORK/a"
head -c 1M /dev/urandom >"$WORK/b"
want_a=$(sha256sum <"$WORK/a")
want_b=$(sha256sum <"$WORK/b")

# pipe NAME LISTEN_OPTS -- CONNECT_OPTS: a 1 MiB pipe each way
pipe() {
  local n=$1; shift
  local lo=() co=()
  while [ "$1" != -- ]; do lo+=("$1"); shift; done; shift
  co=("$@")
  rm -f "$WORK/$n.t"
  "$KW" listen "${R[@]}" --once --json "${lo[@]}" --ticket-file "$WORK/$n.t" \
    <"$WORK/a" >"$WORK/$n.lout" 2>"$WORK/$n.lerr" &
  local lpid=$!
  PIDS+=("$lpid")
  wait_file "$WORK/$n.t" 10 || { bad "$n: listener ticket"; return; }
  set +e
  timeout 30 "$KW" connect "${R[@]}" --json "${co[@]}" "$(cat "$WORK/$n.t")" \
    <"$WORK/b" >"$WORK/$n.cout" 2>"$WORK/$n.cerr"
  PRC=$?
  timeout 10 tail --pid="$lpid" -f /dev/null
  set -e
}
intact() { # intact NAME
  [ "$(sha256sum <"$WORK/$1.cout")" = "$want_a" ] &&
    [ "$(sha256sum <"$WORK/$1.lout")" = "$want_b" ]
}
kinds() { grep -ho '"event":"path"[^}]*"kind":"[a-z]*"' "$@" | sed 's/.*"kind":"//; s/"//' | sort -u | tr '\n' ' '; }

pipe ro --relay-only -- 
check "relay-only listener: ticket names the relay" test "$("$TT" relay "$(cat "$WORK/ro.t")")" = "$url"
check "relay-only listener: ticket names no address" test -z "$("$TT" addrs "$(cat "$WORK/ro.t")")"
check "relay-only listener: pipe exit 0" test "$PRC" -eq 0
check "relay-only listener: bytes intact both ways" intact ro
check "relay-only listener: every path event says relay ($(kinds "$WORK/ro.cerr" "$WORK/ro.lerr"))" \
  test "$(kinds "$WORK/ro.cerr" "$WORK/ro.lerr")" = "relay "

pipe rc -- --relay-only
check "relay-only dialer, full ticket: exit 0" test "$PRC" -eq 0
check "relay-only dialer: bytes intact" intact rc
check "relay-only dialer: only relay paths ($(kinds "$WORK/rc.cerr" "$WORK/rc.lerr"))" \
  test "$(kinds "$WORK/rc.cerr" "$WORK/rc.lerr")" = "relay "

pipe dc -- --direct-only
check "direct-only dialer: exit 0" test "$PRC" -eq 0
check "direct-only dialer: bytes intact" intact dc
check "direct-only dialer: only direct paths ($(kinds "$WORK/dc.cerr"))" \
  test "$(kinds "$WORK/dc.cerr")" = "direct "

pipe dr --relay-only -- --direct-only
check "direct-only dialer, relay-only ticket: exit 1" test "$PRC" -eq 1
check "direct-only dialer: says the ticket has no direct address" \
  grep -q 'names no direct address' "$WORK/dr.cerr"

# ticket types
for t in id relay addresses full; do
  "$KW" listen "${R[@]}" --ticket-type "$t" --ticket-file "$WORK/tt.$t" </dev/null >/dev/null 2>"$WORK/tt.$t.err" &
  PIDS+=($!)
done
for t in id relay addresses full; do wait_file "$WORK/tt.$t" 10 || bad "ticket-type $t: ticket"; done
has() { # has TYPE RELAY(0/1) ADDRS(0/1)
  local tk r a
  tk=$(cat "$WORK/tt.$1")
  r=$("$TT" relay "$tk"); a=$("$TT" addrs "$tk")
  [ "$([ -n "$r" ] && echo 1 || echo 0)$([ -n "$a" ] && echo 1 || echo 0)" = "$2$3" ]
}
check "--ticket-type id: no relay, no address" has id 0 0
check "--ticket-type relay: the relay only" has relay 1 0
check "--ticket-type addresses: addresses only" has addresses 0 1
check "--ticket-type full: both" has full 1 1
# send takes it too
echo data >"$WORK/f"
"$KW" send "${R[@]}" --ticket-type relay --ticket-file "$WORK/ts" "$WORK/f" >/dev/null 2>"$WORK/ts.err" &
PIDS+=($!)
wait_file "$WORK/ts" 10 || bad "send ticket"
cp "$WORK/ts" "$WORK/tt.send"
check "send --ticket-type relay: the relay only" has send 1 0
set +e
echo hi | timeout 20 "$KW" connect "${R[@]}" -q "$(cat "$WORK/tt.id")" >/dev/null 2>"$WORK/idc.err"
rc=$?
set -e
check "an id-only ticket is dialed by lookup (exit $rc)" test "$rc" -eq 0
set +e
"$KW" listen --ephemeral --ticket-type bogus </dev/null 2>"$WORK/e"; rc1=$?
"$KW" connect --ephemeral --relay-only "$(cat "$WORK/tt.full")" </dev/null 2>"$WORK/e2"; rc2=$?
"$KW" connect --ephemeral --relay-only --direct-only --relay "$url" x 2>"$WORK/e3"; rc3=$?
set -e
check "--ticket-type bogus: usage error" test "$rc1" -eq 2
check "--relay-only without a relay: usage error" test "$rc2" -eq 2
check "--relay-only with --direct-only: usage error" test "$rc3" -eq 2
[ "$FAILED" -eq 0 ] || tail -5 "$WORK"/*.cerr "$WORK"/*.lerr
finish
