#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# keyway-relay on loopback: authentication and forwarding both ways (with a
# throughput figure), every rejection path with its metric read back from
# /metrics, STUN interop with Debian's standard clients, the lookup store,
# rate limit, connection limit, allowlist, 1,000 concurrent clients,
# keep-alive, the auth deadline, and a graceful stop on SIGTERM/SIGINT.
# Only 127.0.0.1 and ::1 are used.
set -euo pipefail
BUILD=${1:?usage: test_relay_server.sh BUILD_DIR}
RELAY="$BUILD/keyway-relay"
TC="$BUILD/tests/relay_testc"
[ -x "$TC" ] || TC=$(find "$BUILD" -name relay_testc -type f -perm -u+x | head -n1)
[ -x "$RELAY" ] || { echo "no keyway-relay in $BUILD"; exit 1; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 2200 ]; then
  echo "ulimit -n is $(ulimit -n): 1,000 clients need more"; exit 1
fi

. "$(dirname "$0")/relay_lib.sh"

tc() { timeout 90 "$TC" "$@"; }
alive() { local p="PID_$1"; kill -0 "${!p}"; }

# ---- flags ------------------------------------------------------------
check "help exits 0 and states the defaults" \
  bash -c "'$RELAY' --help | grep -q -- '--max-clients N' && '$RELAY' --help | grep -q 'default 10000'"
check "unknown flag is a usage error (2)" \
  bash -c "'$RELAY' --bogus >/dev/null 2>&1; [ \$? -eq 2 ]"
check "--tls-cert without --tls-key is a usage error (2)" \
  bash -c "'$RELAY' --tls-cert x.pem >/dev/null 2>&1; [ \$? -eq 2 ]"
check "bad --listen address is a usage error (2)" \
  bash -c "'$RELAY' --listen nonsense >/dev/null 2>&1; [ \$? -eq 2 ]"

# the forwarding figure below is the relay's own capacity: no rate limit
start_relay main --rate 0
check "self-signed certificate written to --cert-out" \
  bash -c "openssl x509 -in '$CA_main' -noout -text | grep -q 'IP Address:127.0.0.1'"

# slow scenarios run in the background meanwhile
tc keepalive "$ADDR_main" "$CA_main" 50 >"$TMP/ka.out" 2>&1 &
KA=$!
tc authtimeout "$ADDR_main" "$CA_main" >"$TMP/at.out" 2>&1 &
AT=$!

# ---- forwarding -------------------------------------------------------
if tc pair "$ADDR_main" "$CA_main" >"$TMP/pair.out" 2>&1; then
  ok "two clients authenticate and exchange 1000 packets each way"
  sed 's/^/    /' "$TMP/pair.out"
else
  bad "two clients authenticate and exchange packets"; cat "$TMP/pair.out"
fi
check "metrics: frames forwarded counted" metric_ge main keyway_relay_frames_forwarded_total 2000
check "metrics: bytes forwarded counted" metric_ge main keyway_relay_bytes_forwarded_total 100000000
check "metrics: no queue_full drops with a windowed sender" \
  metric_is main 'keyway_relay_drops_total{reason="queue_full"}' 0
check "peer gone: unknown id, then a departed one" tc peergone "$ADDR_main" "$CA_main"
check "metrics: unknown destination counted" \
  metric_ge main 'keyway_relay_drops_total{reason="unknown_dest"}' 1
check "metrics: PEER_GONE frames counted" metric_ge main keyway_relay_peer_gone_total 2
check "same id again replaces the old connection" tc replace "$ADDR_main" "$CA_main"
check "metrics: replacement counted" metric_is main keyway_relay_replaced_total 1
check "HTTPS GET /ping answers 200" tc ping "$ADDR_main" "$CA_main"
check "metrics: ping counted" metric_ge main 'keyway_relay_http_requests_total{result="ping"}' 1

# ---- rejections, each counted -----------------------------------------
check "frame before auth is refused" tc noauth "$ADDR_main" "$CA_main"
check "metrics: no_auth = 1" metric_is main 'keyway_relay_auth_failures_total{reason="no_auth"}' 1
check "wrong signature is refused" tc badsig "$ADDR_main" "$CA_main"
check "metrics: bad_signature = 1" metric_is main 'keyway_relay_auth_failures_total{reason="bad_signature"}' 1
check "malformed CLIENT_AUTH is refused" tc badauth "$ADDR_main" "$CA_main"
check "metrics: malformed = 1" metric_is main 'keyway_relay_auth_failures_total{reason="malformed"}' 1
check "oversized frame closes the client" tc oversize "$ADDR_main" "$CA_main"
check "metrics: oversize_frame = 1" metric_is main 'keyway_relay_protocol_errors_total{reason="oversize_frame"}' 1
check "garbage after the upgrade closes the client" tc badframe "$ADDR_main" "$CA_main"
check "metrics: bad_frame = 1" metric_is main 'keyway_relay_protocol_errors_total{reason="bad_frame"}' 1
check "garbage before the upgrade gets 400" tc badhttp "$ADDR_main" "$CA_main"
check "metrics: bad_http = 1" metric_is main 'keyway_relay_protocol_errors_total{reason="bad_http"}' 1
RPORT=${ADDR_main##*:}
# plaintext HTTP on the TLS port: the handshake fails, counted as "tls"
bash -c "exec 3<>/dev/tcp/127.0.0.1/$RPORT; printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&3; timeout 5 cat <&3" >/dev/null 2>&1 || true
check "plaintext on the TLS port: handshake failure counted (tls = 1)" \
  metric_is main 'keyway_relay_protocol_errors_total{reason="tls"}' 1
check "relay survived every rejection" alive main
# only the keep-alive client (running in the background) is still there
check "metrics: clients gauge back to 1" metric_is main keyway_relay_clients 1

# ---- STUN -------------------------------------------------------------
SPORT=${STUN_main##*:}
if out=$(timeout 10 turnutils_stunclient -p "$SPORT" 127.0.0.1 2>&1) &&
   mapped=$(echo "$out" | sed -n 's/.*UDP reflexive addr: \([0-9.]*:[0-9]*\).*/\1/p' | head -n1) &&
   [ -n "$mapped" ] && [ "${mapped%:*}" = 127.0.0.1 ] &&
   grep -q "\"event\":\"stun.request\",\"from\":\"$mapped\"" "$LOG_main"; then
  ok "turnutils_stunclient reads XOR-MAPPED-ADDRESS $mapped (the relay saw the same source)"
else
  bad "turnutils_stunclient"; echo "$out" | head -n 5
fi
SRC=$((40000 + RANDOM % 20000))
if out=$(timeout 10 stun "127.0.0.1:$SPORT" 1 -v -p "$SRC" 2>&1) &&
   echo "$out" | grep -q "mappedAddr=127.0.0.1:$SRC"; then
  ok "classic stun client (RFC 3489) reads MAPPED-ADDRESS 127.0.0.1:$SRC"
else
  bad "classic stun client"; echo "$out" | tail -n 8
fi
check "metrics: STUN requests counted" metric_ge main keyway_relay_stun_requests_total 2
check "non-STUN datagram dropped and counted" \
  bash -c "printf 'hello there, this is not stun' >/dev/udp/127.0.0.1/$SPORT"
check "metrics: STUN drop counted" metric_ge main keyway_relay_stun_dropped_total 1

# ---- lookup store -----------------------------------------------------
check "lookup: put/get, older refused, forged refused, expiry" tc lookup "$ADDR_main" "$CA_main"
check "metrics: lookup stale puts = 2" metric_is main 'keyway_relay_lookup_puts_total{result="stale"}' 2
check "metrics: lookup bad_signature puts = 1" metric_is main 'keyway_relay_lookup_puts_total{result="bad_signature"}' 1
check "metrics: lookup gets not_found = 2" metric_is main 'keyway_relay_lookup_gets_total{result="not_found"}' 2

# ---- the slow background scenarios --------------------------------------
if wait "$KA"; then ok "keep-alive PING within 15 s ($(cat "$TMP/ka.out"))"; else bad "keep-alive"; cat "$TMP/ka.out"; fi
if wait "$AT"; then ok "no auth within 10 s: closed"; else bad "auth deadline"; cat "$TMP/at.out"; fi
check "metrics: auth timeout = 1" metric_is main 'keyway_relay_auth_failures_total{reason="timeout"}' 1
check "metrics: keep-alives counted" metric_ge main keyway_relay_keepalives_total 1

# ---- 1,000 concurrent clients -----------------------------------------
if tc many "$ADDR_main" "$CA_main" 1000 >"$TMP/many.out" 2>&1; then
  ok "1000 concurrent clients authenticate and pass a packet around a ring"
  sed 's/^/    /' "$TMP/many.out"
else
  bad "1000 clients"; tail -n 5 "$TMP/many.out"
fi
check "relay alive after 1000 clients" alive main
check "metrics: 1000 clients left again" metric_is main keyway_relay_clients 0

# ---- JSON logs ----------------------------------------------------------
check "every log line is one JSON object" \
  python3 -c "import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]" "$LOG_main"

# ---- allowlist, rate limit, connection limit, store bound -------------
{ "$TC" id 1; echo "# a comment"; echo; "$TC" id 2; } >"$TMP/allow.txt"
start_relay allow --allow "$TMP/allow.txt"
check "allowlisted id connects" tc auth "$ADDR_allow" "$CA_allow" 2
check "id not on the allowlist is refused" tc notallowed "$ADDR_allow" "$CA_allow" 3
check "metrics: not_allowed = 1" metric_is allow 'keyway_relay_auth_failures_total{reason="not_allowed"}' 1
tc wait-close "$ADDR_allow" "$CA_allow" 2 3 >"$TMP/hup.out" 2>&1 &
HUP=$!
for i in $(seq 1 100); do grep -q ready "$TMP/hup.out" 2>/dev/null && break; sleep 0.05; done
"$TC" id 1 >"$TMP/allow.txt"
kill -HUP "$PID_allow"
if wait "$HUP"; then ok "SIGHUP re-reads the allowlist and drops an id taken off it"; else bad "SIGHUP allowlist"; cat "$TMP/hup.out"; fi
check "allowlist after SIGHUP: seed 1 still connects" tc auth "$ADDR_allow" "$CA_allow" 1
check "metrics: not_allowed still 1 (a removal is not an auth failure)" \
  metric_is allow 'keyway_relay_auth_failures_total{reason="not_allowed"}' 1
check "bad allowlist file: exit 1" \
  bash -c "echo nonsense >'$TMP/badallow.txt'; '$RELAY' --listen 127.0.0.1:0 --stun-listen off --allow '$TMP/badallow.txt' 2>/dev/null; [ \$? -eq 1 ]"

start_relay rate --rate 1048576
check "rate limit: 3 MiB at 1 MiB/s takes 2-6 s" tc rate "$ADDR_rate" "$CA_rate"
check "metrics: rate limiting counted" metric_ge rate keyway_relay_rate_limited_total 1

start_relay few --max-clients 5
if tc many "$ADDR_few" "$CA_few" 20 >"$TMP/few.out" 2>&1; then
  bad "20 clients through --max-clients 5 should fail"
else
  ok "connection limit refuses clients beyond --max-clients"
fi
check "metrics: max_clients rejections counted" \
  metric_ge few 'keyway_relay_protocol_errors_total{reason="max_clients"}' 1

start_relay small --max-records 2
check "lookup store bound: the record stored longest ago is evicted" \
  tc lookup-evict "$ADDR_small" "$CA_small"
check "metrics: lookup full = 0 (nothing pinned)" metric_is small 'keyway_relay_lookup_puts_total{result="full"}' 0

# ---- a certificate of our own (--tls-cert/--tls-key) ---------------------
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
     -keyout "$TMP/own.key" -out "$TMP/own.pem" -days 2 -subj /CN=keyway-test \
     -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1; then
  "$RELAY" --listen 127.0.0.1:0 --stun-listen off --metrics-listen 127.0.0.1:0 \
    --tls-cert "$TMP/own.pem" --tls-key "$TMP/own.key" --json 2>"$TMP/own.log" &
  PIDS+=("$!")
  for i in $(seq 1 100); do grep -q relay.listening "$TMP/own.log" 2>/dev/null && break; sleep 0.05; done
  OWN=$(sed -n 's/.*"event":"relay.listening","addr":"\([^"]*\)".*/\1/p' "$TMP/own.log" | head -n1)
  check "--tls-cert/--tls-key: a client trusting that certificate connects" tc auth "$OWN" "$TMP/own.pem" 5
  if tc auth "$OWN" "$CA_main" 5 >/dev/null 2>&1; then
    bad "a client trusting another certificate must fail"
  else
    ok "a client trusting another certificate fails verification"
  fi
else
  bad "openssl could not make a test certificate"
fi
check "unreadable --tls-cert: exit 1" \
  bash -c "'$RELAY' --listen 127.0.0.1:0 --stun-listen off --tls-cert '$TMP/none.pem' --tls-key '$TMP/none.key' 2>/dev/null; [ \$? -eq 1 ]"
check "port in use: exit 1" \
  bash -c "'$RELAY' --listen '$ADDR_allow' --stun-listen off 2>/dev/null; [ \$? -eq 1 ]"

# ---- IPv6 loopback ------------------------------------------------------
start_relay v6 --listen '[::1]:0' --stun-listen '[::1]:0'
check "IPv6: two clients exchange packets through [::1]" tc peergone "$ADDR_v6" "$CA_v6"
S6=${STUN_v6##*:}
if out=$(timeout 10 turnutils_stunclient -p "$S6" ::1 2>&1) &&
   mapped=$(echo "$out" | sed -n 's/.*UDP reflexive addr: ::1:\([0-9]*\).*/\1/p' | head -n1) &&
   [ -n "$mapped" ] && grep -q "\"event\":\"stun.request\",\"from\":\"\[::1\]:$mapped\"" "$LOG_v6"; then
  ok "IPv6 STUN: turnutils_stunclient reads [::1]:$mapped"
else
  bad "IPv6 STUN"; echo "$out" | head -n 3
fi

# ---- graceful stop ------------------------------------------------------
stop_test() { # stop_test NAME SIGNAL
  local name=$1 sig=$2 pidv="PID_$1" addrv="ADDR_$1" cav="CA_$1"
  local pid=${!pidv}
  tc wait-shutdown "${!addrv}" "${!cav}" >"$TMP/ws-$name.out" 2>&1 &
  local wpid=$!
  local i
  for i in $(seq 1 100); do grep -q ready "$TMP/ws-$name.out" 2>/dev/null && break; sleep 0.05; done
  local t0 t1 rc=0
  t0=$(date +%s%N)
  kill "-$sig" "$pid"
  for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then echo "still running 2 s after $sig"; return 1; fi
  wait "$pid" || rc=$?
  t1=$(date +%s%N)
  echo "exit $rc after $(((t1 - t0) / 1000000)) ms"
  [ "$rc" -eq 0 ] || return 1
  [ $(((t1 - t0) / 1000000)) -lt 1500 ] || return 1
  wait "$wpid" || { cat "$TMP/ws-$name.out"; return 1; }
  grep -q '"event":"relay.stopped"' "${LOG_main%/*}/$name.log"
}
check "SIGTERM: clients get CLOSE(shutdown), exit 0 within 1.5 s" stop_test main TERM
sed 's/^/    /' "$TMP/last.out"
check "SIGINT: exit 0 within 1.5 s" stop_test allow INT

if [ "$fail" -gt 0 ]; then
  echo "relay log lines that may explain it:"
  grep -h -E '"level":"(warn|error)"|relay.stopping' "$TMP"/*.log | tail -n 20 | sed 's/^/    /'
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
