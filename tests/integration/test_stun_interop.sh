#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# keyway's own STUN client against a real STUN server (coturn's turnserver,
# started here on loopback), through `keyway netcheck`: the endpoint must
# read its mapped address; with keyway-relay's STUN as a second server the
# mapping must not vary by destination (loopback has no NAT).
. "$(dirname "$0")/cli_lib.sh"
RELAY=$BUILD/keyway-relay
command -v turnserver >/dev/null || { echo "turnserver missing (make deps)"; exit 1; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
uport() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tport=$(uport)
turnserver -n --no-cli --no-tls --no-dtls --stun-only --listening-ip 127.0.0.1 \
  -p "$tport" --log-file stdout --simple-log >"$WORK/turn.log" 2>&1 &
PIDS+=($!)
rport=$(port)
sport=$(uport)
"$RELAY" --listen "127.0.0.1:$rport" --stun-listen "127.0.0.1:$sport" \
  --cert-out "$WORK/relay.pem" -q 2>"$WORK/relay.log" &
PIDS+=($!)
wait_file "$WORK/relay.pem" 10 || bad "relay certificate"
sleep 0.3

# one relay whose STUN port is the turnserver: keyway's client reads it
set +e
"$KW" netcheck --json --relay "https://127.0.0.1:$rport/?stun=$tport" \
  --relay-ca "$WORK/relay.pem" --bind 127.0.0.1:0 >"$WORK/n1.json" 2>"$WORK/n1.err"
rc=$?
set -e
check "netcheck exits 0" test "$rc" -eq 0
check "turnserver answered: udp true" grep -q '"udp":true' "$WORK/n1.json"
check "mapped IPv4 read from turnserver" grep -Eq '"ipv4":"127\.0\.0\.1:[0-9]+"' "$WORK/n1.json"
check "one server: mapping unknown" grep -q '"mapping_varies_by_dest":null' "$WORK/n1.json"
check "relay latency and home relay reported" grep -Eq '"latency_ms":[0-9.]+.*"home_relay":"https://127' "$WORK/n1.json"
check "portmap object present" grep -q '"portmap":{"upnp":false,"natpmp":false,"pcp":false}' "$WORK/n1.json"

# two STUN servers (turnserver and keyway-relay's own): same mapping
set +e
"$KW" netcheck --json --relay "https://127.0.0.1:$rport/?stun=$tport" \
  --relay "https://localhost:$rport/?stun=$sport" --relay-ca "$WORK/relay.pem" \
  --bind 127.0.0.1:0 >"$WORK/n2.json" 2>"$WORK/n2.err"
set -e
check "two servers: mapping does not vary (no NAT)" grep -q '"mapping_varies_by_dest":false' "$WORK/n2.json"
check "two relays listed" test "$(grep -o '"url"' "$WORK/n2.json" | wc -l)" -eq 2
cat "$WORK/n2.json"
finish
