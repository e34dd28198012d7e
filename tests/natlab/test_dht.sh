#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT lab: records on the Mainline DHT across relays on the public segment
# (198.18.0.0/24). Two relays form a private DHT (relay 2 bootstraps from
# relay 1, UDP port 6881); endpoint a is homed at relay 1, b at relay 2,
# and UDP between a and b is dropped. b pings a's bare id: relay 2 does not
# know it, resolves it from the DHT, and b reaches a through relay 1.
# Needs root (network namespaces); exits 77 (skipped) without it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lab_test_begin "$1"
lab_init
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_public_host r1 198.18.0.10
lab_public_host r2 198.18.0.20
lab_public_host a 198.18.0.11
lab_public_host b 198.18.0.12
for pair in "a 198.18.0.12" "b 198.18.0.11"; do
  set -- $pair
  lab_exec "$1" iptables -A OUTPUT -p udp -d "$2" -j DROP
  lab_exec "$1" iptables -A INPUT -p udp -s "$2" -j DROP
done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 -subj /CN=relay \
  -addext "subjectAltName=IP:198.18.0.10,IP:198.18.0.20" 2>/dev/null
tls=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --json -v)
lab_bg r1 "$work/r1.log" "$RELAY" --listen 198.18.0.10:8443 --stun-listen 198.18.0.10:3478 \
  --dht-listen 198.18.0.10:6881 "${tls[@]}" >/dev/null
lab_bg r2 "$work/r2.log" "$RELAY" --listen 198.18.0.20:8443 --stun-listen 198.18.0.20:3478 \
  --dht-listen 198.18.0.20:6881 --dht-bootstrap 198.18.0.10:6881 "${tls[@]}" >/dev/null
for h in 10 20; do
  for _ in $(seq 50); do
    lab_exec a bash -c "exec 3<>/dev/tcp/198.18.0.$h/8443" 2>/dev/null && break
    sleep 0.1
  done
done
common=(--json -v --relay-ca "$work/cert.pem")
lab_exec a "$KW" listen --ephemeral "${common[@]}" --relay https://198.18.0.10:8443 \
  --ticket-file "$work/t" </dev/null >/dev/null 2>"$work/a.err" &
LAB_PIDS+=($!)
lab_wait_file "$work/t" 15 || bad "listener ticket"
lab_wait_grep "$work/a.err" '"lookup.dht_published' 15 && ok "a published its item through relay 1" ||
  bad "a published its item"
id=$("$build/tests/ticket_tool" id "$(cat "$work/t")")
set +e
timeout 30 ip netns exec "$(lab_ns b)" "$KW" ping --ephemeral -c 1 "${common[@]}" \
  --relay https://198.18.0.20:8443 "$id" >/dev/null 2>"$work/b.err"
rc=$?
set -e
[ "$rc" -eq 0 ] && ok "b (relay 2) reaches a (relay 1) by bare id" ||
  { bad "b reaches a: exit $rc"; tail -5 "$work/b.err"; }
grep '"event":"dht.resolved"' "$work/r2.log" | grep -qF '"relay":"https://198.18.0.10:8443"' &&
  ok "relay 2 resolved a from the DHT" || bad "relay 2 resolved a from the DHT"
grep -q '"kind":"direct"' "$work/b.err" && bad "a direct path appeared" || ok "no direct path"
lab_test_end
