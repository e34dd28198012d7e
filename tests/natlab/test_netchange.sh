#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT lab: the network changes under a live connection.
#   A host behind an EIM NAT (198.18.1.10) talks direct to a public host
#   while a 64 MiB transfer runs; in the middle of it the host's address
#   changes to 198.18.1.20 (the old one is removed). The NAT maps the new
#   address to a new public port. Expected:
#   - the moving host's network monitor sees the change (netmon.change);
#   - the transfer completes intact both ways;
#   - the other side follows to the new public address (a second direct
#     address in its path events) and the final path is direct.
# Needs root; exits 77 (skipped) without it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lab_test_begin "$1"
lab_init
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_relay_cert "$work" 198.18.0.10
head -c 64M /dev/urandom >"$work/in_a"
head -c 64M /dev/urandom >"$work/in_b"


lab_public_host relay 198.18.0.10
lab_public_host pubhost 198.18.0.22
lab_router ra 198.18.0.1 1 eim
lab_lan_host mover ra 1 10
# removing the primary address must keep the secondary (the new one)
lab_exec mover sysctl -qw net.ipv4.conf.eth0.promote_secondaries=1
lab_start_relay relay 198.18.0.10 "$work/relay.log" -q || bad "relay up"
common=(--ephemeral --json -v --relay https://198.18.0.10:8443 --relay-ca "$work/cert.pem")
lab_slow_source "$work/in_a" | lab_exec pubhost "$KW" listen "${common[@]}" --once \
  --ticket-file "$work/t" >"$work/out_a" 2>"$work/pub.err" &
lpid=$!
LAB_PIDS+=("$lpid")
lab_wait_file "$work/t" 15 || bad "listener ticket"
(
  # once the path is direct, move the host to a new address
  for _ in $(seq 100); do
    grep -q '"event":"path".*"kind":"direct"' "$work/mover.err" 2>/dev/null && break
    sleep 0.1
  done
  sleep 0.5
  lab_exec mover ip addr add 198.18.1.20/24 dev eth0
  lab_exec mover ip addr del 198.18.1.10/24 dev eth0
  lab_exec mover ip route replace default via 198.18.1.1 src 198.18.1.20
  echo moved >"$work/moved"
) &
mvpid=$!
lab_slow_source "$work/in_b" | timeout 120 ip netns exec "$(lab_ns mover)" "$KW" connect \
  "${common[@]}" "$(cat "$work/t")" >"$work/out_b" 2>"$work/mover.err"
rc=$?
wait "$mvpid"
timeout 20 tail --pid="$lpid" -f /dev/null
[ -s "$work/moved" ] && ok "the address changed during the transfer" ||
  bad "the address change did not happen"
if lab_exec mover ip -4 addr show dev eth0 | grep -q 198.18.1.10; then
  bad "the old address is still there"
fi
if lab_pipe_intact "$rc"; then
  ok "transfer completed, data intact both ways"
else
  bad "transfer (exit $rc)"
  tail -3 "$work/mover.err"
fi
if grep -q 'netmon.change' "$work/mover.err"; then
  ok "the moving host's monitor saw the change"
else
  bad "no netmon.change in the moving host's log"
fi
# the public host's view: direct paths to the NAT's public address, a
# second one after the move, and direct at the end
addrs=$(grep '"event":"path"' "$work/pub.err" | grep '"kind":"direct"' |
  grep -o '"addr":"[^"]*"' | cut -d'"' -f4 | sort -u)
n=$(grep -c . <<<"$addrs")
if [ "$n" -ge 2 ]; then
  ok "the public host followed to a new address ($(tr '\n' ' ' <<<"$addrs"))"
else
  bad "the public host saw direct addresses: $(tr '\n' ' ' <<<"$addrs")"
fi
last=$(grep '"event":"path"' "$work/pub.err" | tail -1)
if grep -q '"kind":"direct"' <<<"$last"; then
  ok "final path direct on the public host"
else
  bad "final path on the public host: $last"
fi
last=$(grep '"event":"path"' "$work/mover.err" | tail -1)
if grep -q '"kind":"direct"' <<<"$last"; then
  ok "final path direct on the moving host"
else
  bad "final path on the moving host: $last"
fi
lab_test_end
