#!/usr/bin/env bash
# NAT lab: a better path appears under a live connection.
#   EIM/EIM, but B's router drops all forwarded UDP at first: the
#   connection comes up on the relay (only TCP gets out). A few seconds in,
#   the router lets UDP through again. Nothing changes on either host, so
#   no network-change event helps: the endpoint must find the direct path
#   by itself (its next STUN refresh learns the reflexive address and
#   triggers a round, or the 60 s upgrade check runs one). `keyway ping`
#   runs 80 round trips a second apart and prints the path of each.
#   Expected: the first pings on the relay, the last ones direct, no ping
#   lost to the move.
# Needs root; exits 77 (skipped) without it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lab_test_begin "$1"
lab_init
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_relay_cert "$work" 198.18.0.10
lab_public_host relay 198.18.0.10
lab_router ra 198.18.0.1 1 eim
lab_lan_host a ra 1 10
lab_router rb 198.18.0.2 2 eim
lab_lan_host b rb 2 10
lab_exec rb iptables -I FORWARD -p udp -j DROP
lab_start_relay relay 198.18.0.10 "$work/relay.log" -q || bad "relay up"
common=(--ephemeral --relay https://198.18.0.10:8443 --relay-ca "$work/cert.pem")
lab_bg a "$work/a.err" "$KW" listen "${common[@]}" --ticket-file "$work/t" >/dev/null
lab_wait_file "$work/t" 15 || bad "listener ticket"
(
  sleep 5
  lab_exec rb iptables -D FORWARD -p udp -j DROP
  echo open >"$work/opened"
) &
oppid=$!
timeout 120 ip netns exec "$(lab_ns b)" "$KW" ping "${common[@]}" -c 80 \
  "$(cat "$work/t")" >"$work/ping.out" 2>"$work/ping.err"
rc=$?
wait "$oppid"
[ -s "$work/opened" ] && ok "UDP opened during the run" || bad "UDP never opened"
[ "$rc" -eq 0 ] && ok "ping exit 0" || bad "ping exit $rc: $(tail -2 "$work/ping.err")"
paths=$(grep -o '^seq=[0-9]* path=[a-z]*' "$work/ping.out" | cut -d= -f3)
first=$(head -1 <<<"$paths")
last=$(tail -1 <<<"$paths")
[ "$first" = relay ] && ok "first ping on the relay" || bad "first ping on: $first"
[ "$last" = direct ] && ok "last ping direct" || bad "last ping on: $last"
if grep -q '^80 sent, 80 received' "$work/ping.out"; then
  ok "no ping lost to the move"
else
  bad "pings lost: $(tail -1 "$work/ping.out")"
fi
n_direct=$(grep -c '^direct$' <<<"$paths")
echo "# $(grep -c . <<<"$paths") pings, direct from ping $((80 - n_direct + 1))"
lab_test_end
