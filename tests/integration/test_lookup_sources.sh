#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Lookup sources of a dial by bare id (docs/ARCHITECTURE.md section 4),
# through the public API (tests/integration/lookup_sources.c). Loopback only.
#   1. an application's resolvers: one says "not found", one answers under
#      another id (ignored), one answers the right address later from
#      another thread: the dial connects;
#   2. a resolver answering inside its call: the dial connects, its callback
#      running after kw_endpoint_connect returned; a resolver that only
#      says "not found": the dial fails NOT_FOUND (also after it returned);
#   3. two relays, the record only at the one that is not the dialer's
#      home, the home relay frozen (SIGSTOP: it accepts TCP and never
#      answers): both are asked at once, so the dial still connects.
. "$(dirname "$0")/cli_lib.sh"
LS=$BUILD/tests/lookup_sources
RELAY=$BUILD/keyway-relay
TT=$BUILD/tests/ticket_tool
STOPPED=""
trap 'if [ -n "$STOPPED" ]; then kill -CONT "$STOPPED" 2>/dev/null; fi; cleanup' EXIT

# a target: keyway listen on loopback, no relay
bg l1 "$KW" listen --ephemeral -q --no-relay --bind 127.0.0.1:0 \
  --ticket-file "$WORK/t1" </dev/null >/dev/null
wait_file "$WORK/t1" 10 || bad "listener ticket"
set +e
timeout 20 "$LS" resolvers "$(cat "$WORK/t1")" >"$WORK/r.out" 2>"$WORK/r.err"
rc=$?
set -e
check "resolvers: the dial by bare id connects (exit $rc)" grep -qx connected "$WORK/r.out"
check "... the not-found answer was counted" grep -q "lookup.answer .*source=resolver0 err=NOT_FOUND" "$WORK/r.err"
check "... the answer under another id was refused" grep -q "lookup.answer .*source=resolver1 err=KEY_MISMATCH" "$WORK/r.err"
check "... the later answer from another thread won" grep -q "lookup.answer .*source=resolver2 err=OK" "$WORK/r.err"

set +e
timeout 20 "$LS" inline "$(cat "$WORK/t1")" >"$WORK/i.out" 2>"$WORK/i.err"
rc=$?
set -e
check "a resolver answering inside its call: connects, callback after connect returned (exit $rc)" \
  grep -qx connected "$WORK/i.out"

id1=$("$TT" id "$(cat "$WORK/t1")")
set +e
timeout 20 "$LS" notfound "$id1" >"$WORK/n.out" 2>"$WORK/n.err"
rc=$?
set -e
check "a resolver that does not know the id: the dial fails NOT_FOUND (exit $rc)" \
  grep -qx "failed NOT_FOUND" "$WORK/n.out"

# two relays
start_one() { # start_one N: relay N, sets URLn and PIDn
  local n=$1 i a s
  "$RELAY" --listen 127.0.0.1:0 --stun-listen 127.0.0.1:0 \
    --cert-out "$WORK/ca$n.pem" --json 2>"$WORK/relay$n.log" &
  PIDS+=($!)
  eval "PID$n=$!"
  for ((i = 0; i < 100; i++)); do
    grep -q '"event":"stun.listening"' "$WORK/relay$n.log" 2>/dev/null && break
    sleep 0.05
  done
  a=$(sed -n 's/.*"event":"relay.listening","addr":"\([^"]*\)".*/\1/p' "$WORK/relay$n.log" | head -n1)
  s=$(sed -n 's/.*"event":"stun.listening","addr":"\([^"]*\)".*/\1/p' "$WORK/relay$n.log" | head -n1)
  [ -n "$a" ] && [ -n "$s" ] || { echo "relay $n did not start"; cat "$WORK/relay$n.log"; exit 1; }
  eval "URL$n='https://$a/?stun=${s##*:}'"
}
start_one 1
start_one 2
cat "$WORK/ca1.pem" "$WORK/ca2.pem" >"$WORK/ca.pem"
mkfifo "$WORK/in"
"$LS" relays "$URL1" "$URL2" "$WORK/ca.pem" <"$WORK/in" >"$WORK/d.out" 2>"$WORK/d.err" &
DPID=$!
PIDS+=("$DPID")
exec 7>"$WORK/in"
for ((i = 0; i < 200; i++)); do
  grep -q '^home=' "$WORK/d.out" 2>/dev/null && break
  sleep 0.05
done
home=$(sed -n 's/^home=//p' "$WORK/d.out")
check "the dialer chose a home relay ($home)" test -n "$home"
if [ "$home" = "$URL1" ]; then
  other=$URL2 frozen=$PID1 oidx=1
else
  other=$URL1 frozen=$PID2 oidx=0
fi
# the target publishes only at the dialer's other relay
bg l2 "$KW" listen --ephemeral -v --bind 127.0.0.1:0 --relay "$other" \
  --relay-ca "$WORK/ca.pem" --ticket-file "$WORK/t2" </dev/null >/dev/null
wait_file "$WORK/t2" 10 || bad "second listener ticket"
for ((i = 0; i < 200; i++)); do
  grep -q "lookup.published" "$WORK/l2.err" 2>/dev/null && break
  sleep 0.05
done
check "the target published its record at the other relay" grep -q "lookup.published" "$WORK/l2.err"
id2=$("$TT" id "$(cat "$WORK/t2")")
kill -STOP "$frozen"
STOPPED=$frozen
echo "dial $id2" >&7
for ((i = 0; i < 300; i++)); do
  grep -q '^connected\|^failed' "$WORK/d.out" 2>/dev/null && break
  sleep 0.05
done
exec 7>&-
check "home relay frozen: the dial by bare id still connects" grep -qx connected "$WORK/d.out"
grep -qx connected "$WORK/d.out" || tail -5 "$WORK/d.err"
check "... the other relay's answer was the one taken" \
  grep -q "lookup.answer .*source=relay$oidx err=OK" "$WORK/d.err"
kill -CONT "$frozen"
STOPPED=""
finish
