#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Records on the Mainline DHT through relays (docs/protocol/dht.md), on
# loopback: a private DHT of three keyway-relay nodes (the second and third
# bootstrap from the first). Endpoint A is homed at relay 1, B at relay 2:
# B dials A's bare id, which relay 2 does not know and resolves from the
# DHT; A moves to relay 3 and B still finds it. The DHT item names direct
# addresses only with --dht-publish-addrs, and --no-dht-publish sends none. Forged and stale items are
# refused over HTTP (PUT /pkarr) and over KRPC; a stale record found on the
# DHT is not served. A relay without --dht-listen has no DHT at all.
. "$(dirname "$0")/cli_lib.sh"
RELAY=$BUILD/keyway-relay
PT=$BUILD/tests/pkarr_tool
[ -x "$RELAY" ] && [ -x "$PT" ] || { echo "no keyway-relay / pkarr_tool in $BUILD"; exit 1; }
uport() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
field() { sed -n "s/.*\"event\":\"$2\",\"addr\":\"\\([^\"]*\\)\".*/\\1/p" "$1" | head -n1; }
# start_dht_relay N [flags]: relay N with its DHT socket on port DPORT_N
start_dht_relay() {
  local n=$1 i; shift
  local log="$WORK/r$n.log"
  "$RELAY" --listen 127.0.0.1:0 --stun-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --cert-out "$WORK/ca$n.pem" --json -v "$@" 2>"$log" &
  PIDS+=($!)
  for ((i = 0; i < 100; i++)); do
    grep -q '"event":"metrics.listening"' "$log" 2>/dev/null && break
    sleep 0.05
  done
  local a s m
  a=$(field "$log" relay.listening)
  s=$(field "$log" stun.listening)
  m=$(field "$log" metrics.listening)
  [ -n "$a" ] && [ -n "$m" ] || { echo "relay $n did not start"; cat "$log"; exit 1; }
  printf -v "URL$n" 'https://%s/?stun=%s' "$a" "${s##*:}"
  printf -v "ADDR$n" '%s' "$a"
  printf -v "MET$n" '%s' "$m"
}
metric() { curl -s --max-time 5 "http://$1/metrics" | awk -v s="$2" '$1 == s { print $2; f = 1 } END { if (!f) print "missing" }'; }
wait_metric_ge() { # ADDR SERIES MIN SECONDS
  local i v
  for ((i = 0; i < $4 * 10; i++)); do
    v=$(metric "$1" "$2")
    [ "$v" != missing ] && [ "${v%.*}" -ge "$3" ] && return 0
    sleep 0.1
  done
  echo "$2 = $v, want >= $3"; return 1
}
wait_grep() { # FILE PATTERN MIN_COUNT SECONDS
  local i
  for ((i = 0; i < $4 * 10; i++)); do
    [ "$(grep -c -- "$2" "$1" 2>/dev/null || true)" -ge "$3" ] && return 0
    sleep 0.1
  done
  return 1
}
now_us() { date +%s%6N; }
resolved_to() { grep '"event":"dht.resolved"' "$WORK/r2.log" | grep -qF -- "$1"; }
put_pkarr() { # N ID BODYFILE: prints the HTTP status of PUT /pkarr/ID at relay N
  local a="ADDR$1"
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$WORK/ca$1.pem" \
    -X PUT --data-binary @"$3" -H 'Content-Type: application/octet-stream' \
    "https://${!a}/pkarr/$2"
}

# a relay without --dht-listen: no DHT node, no DHT metrics
start_dht_relay 0
check "no DHT without --dht-listen" bash -c "! grep -q dht.listening '$WORK/r0.log' && ! curl -s 'http://$MET0/metrics' | grep -q keyway_relay_dht"

D1=$(uport); D2=$(uport); D3=$(uport)
start_dht_relay 1 --dht-listen 127.0.0.1:$D1 --dht-cache-ttl 1
start_dht_relay 2 --dht-listen 127.0.0.1:$D2 --dht-bootstrap 127.0.0.1:$D1 --dht-cache-ttl 1
start_dht_relay 3 --dht-listen 127.0.0.1:$D3 --dht-bootstrap 127.0.0.1:$D1 --dht-cache-ttl 1
check "relay 1 learned both other DHT nodes" wait_metric_ge "$MET1" keyway_relay_dht_nodes 2 5
CAS=(--relay-ca "$WORK/ca1.pem" --relay-ca "$WORK/ca2.pem" --relay-ca "$WORK/ca3.pem")

"$KW" id --key "$WORK/a.key" >/dev/null 2>&1
ida=$("$PT" id "$WORK/a.key")
bg a1 "$KW" listen --key "$WORK/a.key" -v --relay "$URL1" "${CAS[@]}" --bind 127.0.0.1:0 </dev/null
apid=$LASTPID
check "A published its item through relay 1" wait_grep "$WORK/a1.err" lookup.dht_published 1 10
check "relay 1 put it into the DHT" wait_grep "$WORK/r1.log" '"event":"dht.publish"' 1 5
check "relay 2 stores A's item as a DHT node" wait_metric_ge "$MET2" keyway_relay_dht_items 1 5

set +e
timeout 20 "$KW" ping --ephemeral -q -c 1 --relay "$URL2" "${CAS[@]}" --bind 127.0.0.1:0 "$ida" >"$WORK/p1.out" 2>"$WORK/p1.err"
rc=$?
set -e
check "B (relay 2) reaches A (relay 1) by bare id: exit $rc" test "$rc" -eq 0
check "relay 2 resolved A from the DHT" resolved_to "\"relay\":\"$URL1\""
check "... and the DHT record names no direct address" resolved_to '"addrs":0'

# A moves to relay 3
kill "$apid"; wait "$apid" 2>/dev/null || true
bg a2 "$KW" listen --key "$WORK/a.key" -v --relay "$URL3" "${CAS[@]}" --bind 127.0.0.1:0 </dev/null
check "A published again through relay 3" wait_grep "$WORK/a2.err" lookup.dht_published 1 10
sleep 1.2 # relay 2's cache (--dht-cache-ttl 1) runs out
set +e
timeout 20 "$KW" ping --ephemeral -q -c 1 --relay "$URL2" "${CAS[@]}" --bind 127.0.0.1:0 "$ida" >"$WORK/p2.out" 2>"$WORK/p2.err"
rc=$?
set -e
check "B still reaches A, now at relay 3: exit $rc" test "$rc" -eq 0
check "relay 2 resolved A's new home from the DHT" resolved_to "\"relay\":\"$URL3\""

# what goes into the DHT: the addresses only when allowed, nothing on request
"$KW" id --key "$WORK/d.key" >/dev/null 2>&1
idd=$("$PT" id "$WORK/d.key")
bg d "$KW" listen --key "$WORK/d.key" -v --dht-publish-addrs --relay "$URL1" "${CAS[@]}" --bind 127.0.0.1:0 </dev/null
bg e "$KW" listen --ephemeral -v --no-dht-publish --relay "$URL1" "${CAS[@]}" --bind 127.0.0.1:0 </dev/null
check "D (--dht-publish-addrs) published its item" wait_grep "$WORK/d.err" lookup.dht_published 1 10
set +e
timeout 20 "$KW" ping --ephemeral -q -c 1 --relay "$URL2" "${CAS[@]}" --bind 127.0.0.1:0 "$idd" >/dev/null 2>"$WORK/p4.err"
rc=$?
set -e
check "B reaches D by bare id: exit $rc" test "$rc" -eq 0
check "D's DHT record names its direct addresses" bash -c "grep '\"event\":\"dht.resolved\"' '$WORK/r2.log' | grep -v '\"addrs\":0' | grep -q '\"addrs\":[1-9]'"
check "E (--no-dht-publish) published its record" wait_grep "$WORK/e.err" lookup.published 1 10
check "... but no item for the DHT" bash -c "! grep -q lookup.dht_ '$WORK/e.err'"

# forged and stale items over HTTP (A is connected to relay 3)
t=$(now_us)
"$PT" body "$WORK/a.key" "$t" 600 "$URL3" forge >"$WORK/forged.bin"
check "PUT /pkarr with a bad signature: 400" test "$(put_pkarr 3 "$ida" "$WORK/forged.bin")" = 400
"$PT" body "$WORK/a.key" $((t - 120000000)) 600 "$URL3" >"$WORK/older.bin"
check "PUT /pkarr older than the published item: 409" test "$(put_pkarr 3 "$ida" "$WORK/older.bin")" = 409
"$PT" body "$WORK/a.key" $((t - 7200000000)) 60 "$URL3" >"$WORK/expired.bin"
check "PUT /pkarr of an expired record: 400" test "$(put_pkarr 3 "$ida" "$WORK/expired.bin")" = 400
"$PT" body "$WORK/a.key" "$t" 600 "$URL3" >"$WORK/fresh.bin"
check "PUT /pkarr for an id not connected here: 403" test "$(put_pkarr 2 "$ida" "$WORK/fresh.bin")" = 403

# forged and stale items over KRPC, straight to relay 2's DHT node
check "KRPC put with a bad signature: error 206" test "$("$PT" dhtput 127.0.0.1:$D2 "$WORK/a.key" "$t" 600 "$URL1" forge)" = "error 206"
check "KRPC put with a lower seq: error 302" test "$("$PT" dhtput 127.0.0.1:$D2 "$WORK/a.key" $((t - 120000000)) 600 "$URL1")" = "error 302"

# a validly signed but expired record on the DHT is not served
"$KW" id --key "$WORK/c.key" >/dev/null 2>&1
idc=$("$PT" id "$WORK/c.key")
check "KRPC put of C's expired record is stored (nodes do not read records)" test "$("$PT" dhtput 127.0.0.1:$D2 "$WORK/c.key" $((t - 120000000)) 60 "$URL1")" = ok
set +e
timeout 20 "$KW" ping --ephemeral -q -c 1 --timeout 5 --relay "$URL2" "${CAS[@]}" --bind 127.0.0.1:0 "$idc" >/dev/null 2>"$WORK/p3.err"
rc=$?
set -e
check "dialing C's id fails: exit $rc" test "$rc" -ne 0
check "relay 2 refused C's stale item" grep -q '"event":"dht.stale_item"' "$WORK/r2.log"
check "relay 2 counted a forged-free DHT (no bad items)" test "$(metric "$MET2" 'keyway_relay_dht_lookups_total{result="bad_item"}')" = 0
finish
