#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT lab: our address as a remote saw it (a Pong's observed source) is a
# candidate. The relay answers no STUN here, so no endpoint can learn its
# reflexive address that way.
#   A (`keyway listen`) behind an EIM NAT is pinged by B on the public
#   segment: direct, and B's Pongs tell A its NAT-mapped address.
#   C behind another EIM NAT is one endpoint (tests/natlab_dial2) that
#   first dials B (direct; B's Pongs tell C its mapped address) and then A.
#   The CallMeMaybes of A and C now carry the mapped addresses B observed,
#   so they punch through both NATs: direct. Without those candidates
#   (interface addresses only) they could only meet on the relay.
# Needs root; exits 77 (skipped) without it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lab_test_begin "$1"
lab_init
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_relay_cert "$work" 198.18.0.10
lab_public_host relay 198.18.0.10
lab_public_host b 198.18.0.22
lab_router ra 198.18.0.1 1 eim
lab_lan_host a ra 1 10
lab_router rc 198.18.0.3 3 eim
lab_lan_host c rc 3 10
lab_start_relay relay 198.18.0.10 "$work/relay.log" -q --stun-listen off ||
  bad "relay up"
common=(--ephemeral --json -v --relay https://198.18.0.10:8443 --relay-ca "$work/cert.pem")
lab_bg a "$work/a.err" "$KW" listen "${common[@]}" --ticket-file "$work/ta" >/dev/null
lab_bg b "$work/b.err" "$KW" listen "${common[@]}" --ticket-file "$work/tb" >/dev/null
lab_wait_file "$work/ta" 15 || bad "A's ticket"
lab_wait_file "$work/tb" 15 || bad "B's ticket"

timeout 30 ip netns exec "$(lab_ns b)" "$KW" ping "${common[@]}" -c 3 \
  "$(cat "$work/ta")" >"$work/ping.out" 2>"$work/ping.err"
grep -q '^seq=3 path=direct addr=198\.18\.0\.1:' "$work/ping.out" &&
  ok "B pings A: direct to A's NAT" || bad "B -> A: $(tail -2 "$work/ping.out")"

timeout 40 ip netns exec "$(lab_ns c)" "$build/tests/natlab_dial2" \
  https://198.18.0.10:8443 "$work/cert.pem" "$(cat "$work/tb")" "$(cat "$work/ta")" \
  >"$work/c.out" 2>"$work/c.err"
rc=$?
grep -q '^first direct 198\.18\.0\.22:' "$work/c.out" &&
  ok "C -> B (public): direct" || bad "C -> B: $(head -1 "$work/c.out")"
if [ "$rc" -eq 0 ] && grep -q '^second direct 198\.18\.0\.1:' "$work/c.out"; then
  ok "C -> A: direct, to A's NAT-mapped address ($(tail -1 "$work/c.out"))"
else
  bad "C -> A: exit $rc, $(tail -1 "$work/c.out") $(tail -1 "$work/c.err")"
fi
if grep -q 'stun.reflexive' "$work"/*.err; then
  bad "an endpoint learned a reflexive address by STUN: the case proves nothing"
else
  ok "no endpoint learned its address by STUN"
fi
lab_test_end
