#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# An endpoint's record survives a restart of its home relay: the relay's
# lookup store starts empty, and the endpoint publishes its record again as
# soon as its connection to the relay is back (not up to 10 minutes later),
# so a dial by bare id right after the reconnection succeeds. Loopback only.
. "$(dirname "$0")/cli_lib.sh"
RELAY=$BUILD/keyway-relay
[ -x "$RELAY" ] || { echo "no keyway-relay in $BUILD"; exit 1; }

# a certificate and key that survive the restart
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 2 -subj /CN=localhost \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>/dev/null
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
tport=$(port)
sport=$(port)
url="https://127.0.0.1:$tport/?stun=$sport"
R=(--relay "$url" --relay-ca "$WORK/cert.pem" --bind 127.0.0.1:0)
start_relay() {
  "$RELAY" --listen "127.0.0.1:$tport" --stun-listen "127.0.0.1:$sport" \
    --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" -q >>"$WORK/relay.log" 2>&1 &
  rpid=$!
  PIDS+=("$rpid")
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$tport") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
count() { grep -c "$1" "$WORK/l.err" 2>/dev/null || true; }
wait_count() { # wait_count PATTERN N SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    [ "$(count "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

start_relay || { echo "the relay did not start"; cat "$WORK/relay.log"; exit 1; }
"$KW" listen --ephemeral -v "${R[@]}" --ticket-file "$WORK/t" \
  </dev/null >/dev/null 2>"$WORK/l.err" &
PIDS+=($!)
wait_file "$WORK/t" 15 || bad "listener ticket"
id=$("$BUILD/tests/ticket_tool" id "$(cat "$WORK/t")")
check "the listener published its record" wait_count "lookup.published" 1 15
set +e
timeout 30 "$KW" ping --ephemeral -q -c 1 "${R[@]}" "$id" >"$WORK/p1.out" 2>"$WORK/p1.err"
rc=$?
set -e
check "ping by bare id before the restart: exit $rc" test "$rc" -eq 0

# restart the relay: its store is empty again
npub=$(count "lookup.published")
nconn=$(count "relay.connected")
kill "$rpid"
wait "$rpid" 2>/dev/null || true
check "the listener saw its home relay go" wait_count "relay.disconnected" 1 10
sleep 1
start_relay || bad "the relay restarted"
t0=$(date +%s%N)
check "the listener reconnected to its home relay" wait_count "relay.connected" $((nconn + 1)) 20
check "... and published its record again at once" wait_count "lookup.published" $((npub + 1)) 5
t1=$(date +%s%N)
echo "# record republished $(( (t1 - t0) / 1000000 )) ms after the relay came back"
set +e
timeout 30 "$KW" ping --ephemeral -q -c 1 "${R[@]}" "$id" >"$WORK/p2.out" 2>"$WORK/p2.err"
rc=$?
set -e
check "ping by bare id right after the restart: exit $rc" test "$rc" -eq 0
[ "$rc" -eq 0 ] || cat "$WORK/p2.err"
finish
