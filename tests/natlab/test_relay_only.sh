#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT lab: two hosts whose UDP to each other is dropped by iptables, a relay
# host both reach over TCP. A 64 MiB pipe through listen/connect must
# arrive intact both ways with the --json path events saying "relay"; then
# a dial by bare endpoint id (resolved at the relay's lookup store).
# Needs root (network namespaces); exits 77 (skipped) without it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lab_test_begin "$1"
lab_init
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_public_host relay 198.18.0.10
lab_public_host a 198.18.0.11
lab_public_host b 198.18.0.12
for pair in "a 198.18.0.12" "b 198.18.0.11"; do
  set -- $pair
  lab_exec "$1" iptables -A OUTPUT -p udp -d "$2" -j DROP
  lab_exec "$1" iptables -A INPUT -p udp -s "$2" -j DROP
done
if lab_exec a ping -c1 -W1 198.18.0.12 >/dev/null; then ok "a reaches b (ICMP)"; else bad "a reaches b"; fi

lab_relay_cert "$work" 198.18.0.10
lab_bg relay "$work/relay.log" "$RELAY" --listen 198.18.0.10:8443 \
  --stun-listen 198.18.0.10:3478 --tls-cert "$work/cert.pem" \
  --tls-key "$work/key.pem" >/dev/null
url="https://198.18.0.10:8443"
for _ in $(seq 50); do
  lab_exec a bash -c "exec 3<>/dev/tcp/198.18.0.10/8443" 2>/dev/null && break
  sleep 0.1
done

head -c 64M /dev/urandom >"$work/in_a"
head -c 64M /dev/urandom >"$work/in_b"
common=(--ephemeral --json -v --relay "$url" --relay-ca "$work/cert.pem")
lab_exec a "$KW" listen "${common[@]}" --once --ticket-file "$work/t" \
  <"$work/in_a" >"$work/out_a" 2>"$work/a.err" &
apid=$!
LAB_PIDS+=("$apid")
lab_wait_file "$work/t" 15 || bad "listener ticket"
set +e
timeout 120 ip netns exec "$(lab_ns b)" "$KW" connect "${common[@]}" "$(cat "$work/t")" \
  <"$work/in_b" >"$work/out_b" 2>"$work/b.err"
rc=$?
timeout 30 tail --pid="$apid" -f /dev/null
set -e
[ "$rc" -eq 0 ] && ok "connect exits 0" || { bad "connect exit $rc"; tail -5 "$work/b.err"; }
[ "$(sha256sum <"$work/in_a")" = "$(sha256sum <"$work/out_b")" ] && ok "a -> b intact" || bad "a -> b"
[ "$(sha256sum <"$work/in_b")" = "$(sha256sum <"$work/out_a")" ] && ok "b -> a intact" || bad "b -> a"
last=$(grep '"event":"path"' "$work/b.err" | tail -1)
grep -q '"kind":"relay"' <<<"$last" && ok "path events say relay: $last" || bad "path: $last"
grep -q '"kind":"direct"' "$work/b.err" && bad "a direct path appeared" || ok "no direct path"

# dial by bare id: the listener publishes its record at its home relay
lab_exec a "$KW" listen "${common[@]}" -v --once --ticket-file "$work/t2" \
  </dev/null >"$work/out2" 2>"$work/a2.err" &
LAB_PIDS+=($!)
lab_wait_file "$work/t2" 15 || bad "listener ticket"
for _ in $(seq 50); do grep -q '"lookup.published' "$work/a2.err" 2>/dev/null && break; sleep 0.1; done
id=$(lab_exec a "$build/tests/ticket_tool" id "$(cat "$work/t2")" 2>/dev/null || true)
set +e
echo "by id" | timeout 60 ip netns exec "$(lab_ns b)" "$KW" connect "${common[@]}" "$id" \
  >"$work/out_id" 2>"$work/b2.err"
rc=$?
set -e
sleep 0.5
[ "$rc" -eq 0 ] && grep -qx "by id" "$work/out2" && ok "dial by bare id through the lookup store" || { bad "dial by id (exit $rc)"; tail -3 "$work/b2.err"; }
# the relay is killed and restarted in the middle of a relay-only transfer:
# the clients reconnect and the transfer completes intact
head -c 48M /dev/urandom >"$work/in_r"
lab_exec a "$KW" listen "${common[@]}" --once --ticket-file "$work/t3" \
  </dev/null >"$work/out_r" 2>"$work/a3.err" &
a3=$!
LAB_PIDS+=("$a3")
lab_wait_file "$work/t3" 15 || bad "listener ticket"
slow() { local i; for ((i = 0; i < 48; i++)); do dd if="$work/in_r" bs=1M skip="$i" count=1 status=none; sleep 0.06; done; }
( slow | timeout 120 ip netns exec "$(lab_ns b)" "$KW" connect "${common[@]}" "$(cat "$work/t3")" \
  >/dev/null 2>"$work/b3.err"; echo $? >"$work/b3.rc" ) &
sleep 1.2
rp=$(ip netns pids "$(lab_ns relay)" | head -1)
kill "$rp"
sleep 1
lab_bg relay "$work/relay2.log" "$RELAY" --listen 198.18.0.10:8443 \
  --stun-listen 198.18.0.10:3478 --tls-cert "$work/cert.pem" \
  --tls-key "$work/key.pem" >/dev/null
for _ in $(seq 1200); do [ -s "$work/b3.rc" ] && break; sleep 0.1; done
timeout 20 tail --pid="$a3" -f /dev/null
if [ "$(cat "$work/b3.rc" 2>/dev/null)" = 0 ] &&
  [ "$(sha256sum <"$work/in_r")" = "$(sha256sum <"$work/out_r")" ]; then
  ok "relay killed and restarted mid-transfer: 48 MiB intact"
else
  bad "relay restart (exit $(cat "$work/b3.rc" 2>/dev/null))"; tail -3 "$work/b3.err"
fi
n=$(grep -c 'relay.connected' "$work/b3.err")
[ "$n" -ge 2 ] && ok "the dialer reconnected to the relay ($n connections)" ||
  bad "the dialer reconnected to the relay ($n connections)"
grep -q '"kind":"direct"' "$work/b3.err" && bad "a direct path appeared" || ok "still relay-only"
lab_test_end
