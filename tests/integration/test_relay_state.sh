#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# keyway-relay without --tls-cert keeps its self-signed certificate and key
# in a state directory (created 0700, key 0600) and reuses them across
# restarts, so a client holding the first run's certificate keeps working;
# $STATE_DIRECTORY (systemd) is the default; a stored certificate that does
# not name the listen address is replaced.
. "$(dirname "$0")/cli_lib.sh"
RELAY=$BUILD/keyway-relay
TT=$BUILD/tests/ticket_tool
run_relay() { # run_relay LOG ARGS...: start, wait for the URL, in $URL / $RPID
  local log=$1; shift
  "$RELAY" --listen 127.0.0.1:0 --stun-listen 127.0.0.1:0 "$@" 2>"$log" &
  RPID=$!
  PIDS+=("$RPID")
  URL=
  for _ in $(seq 100); do
    URL=$(sed -n 's/.* relay.url url=\([^ ]*\).*/\1/p' "$log" | head -n1)
    [ -n "$URL" ] && break
    sleep 0.05
  done
}
stop_relay() { kill "$RPID"; wait "$RPID" 2>/dev/null || true; }
st=$WORK/st/keyway-relay
run_relay "$WORK/r1.log" --state-dir "$st" --cert-out "$WORK/ca1.pem"
check "the relay started" test -n "$URL"
check "state directory created with mode 0700" test "$(stat -c %a "$st")" = 700
check "key kept with mode 0600" test "$(stat -c %a "$st/relay-key.pem")" = 600
check "--cert-out is the kept certificate" cmp -s "$st/relay-cert.pem" "$WORK/ca1.pem"
stop_relay
run_relay "$WORK/r2.log" --state-dir "$st"
check "restart: the same certificate" cmp -s "$st/relay-cert.pem" "$WORK/ca1.pem"
check "restart: the log says it was reused" grep -q 'tls.self_signed cert=.* reused=1' "$WORK/r2.log"
"$KW" listen --ephemeral --bind 127.0.0.1:0 --relay "$URL" --relay-ca "$WORK/ca1.pem" \
  --ticket-type relay --ticket-file "$WORK/t" </dev/null >/dev/null 2>"$WORK/l.err" &
lpid=$!
PIDS+=("$lpid")
wait_file "$WORK/t" 10 || bad "listener ticket"
check "a client holding the first run's certificate trusts the restarted relay" \
  test "$("$TT" relay "$(cat "$WORK/t")")" = "$URL"
check "... without a certificate warning" bash -c "! grep -q 'not trusted' '$WORK/l.err'"
kill "$lpid"
stop_relay

# $STATE_DIRECTORY is the default (as systemd's StateDirectory= sets it)
STATE_DIRECTORY=$WORK/sd run_relay "$WORK/r3.log"
check "\$STATE_DIRECTORY holds the identity" test -s "$WORK/sd/relay-key.pem"
stop_relay
# a stored certificate that does not name the listen address is replaced
"$RELAY" --listen 127.0.0.2:0 --stun-listen off --state-dir "$WORK/other" 2>"$WORK/r4.log" &
p=$!; PIDS+=("$p")
for _ in $(seq 100); do grep -q relay.url "$WORK/r4.log" && break; sleep 0.05; done
kill "$p"; wait "$p" 2>/dev/null || true
cp "$WORK/other/relay-cert.pem" "$WORK/c127-2.pem"
"$RELAY" --listen 127.0.0.3:0 --stun-listen off --state-dir "$WORK/other" 2>"$WORK/r5.log" &
p=$!; PIDS+=("$p")
for _ in $(seq 100); do grep -q relay.url "$WORK/r5.log" && break; sleep 0.05; done
kill "$p"; wait "$p" 2>/dev/null || true
if ip -4 addr show lo | grep -q '127.0.0.3'; then
  check "a certificate naming a listen address (on lo) is reused" grep -q 'reused=1' "$WORK/r5.log"
else
  check "a certificate not naming the new listen address is replaced" \
    bash -c "! cmp -s '$WORK/c127-2.pem' '$WORK/other/relay-cert.pem' && grep -q 'reused=0' '$WORK/r5.log'"
fi
finish
