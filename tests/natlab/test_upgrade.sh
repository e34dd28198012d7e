#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT lab: a better path appears under a live connection. EIM/EIM; B's
# router drops forwarded UDP for a while; `keyway ping` from B to A prints
# the path of each round trip (one a second).
#   appears: UDP is dropped from the start, so the connection comes up on
#     the relay (only TCP gets out); 5 s in, UDP is let through. Nothing
#     changes on either host, so no network-change event helps: the
#     endpoint finds the direct path by itself (its next STUN refresh, or
#     the 60 s upgrade check). 80 pings: the first on the relay, the last
#     direct, none lost.
#   returns: direct from the start; UDP is dropped 4 s in and let through
#     again at 12 s. The direct path goes silent, the connection falls back
#     to the relay, and the recovery rounds after a lost path (5, 15, 35 s
#     after the loss) take it back to direct without waiting a minute for
#     the upgrade check. 40 pings: direct, then some on the relay, then
#     direct to the end.
# Needs root; exits 77 (skipped) without it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lab_test_begin "$1"
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_relay_cert "$work" 198.18.0.10

# run_case NAME COUNT BLOCK_AT UNBLOCK_AT: BLOCK_AT 0 = blocked from start
run_case() {
  local name=$1 count=$2 block_at=$3 unblock_at=$4 rc
  lab_init
  trap lab_cleanup EXIT # in the case's subshell: $work is the parent's
  lab_public_host relay 198.18.0.10
  lab_router ra 198.18.0.1 1 eim
  lab_lan_host a ra 1 10
  lab_router rb 198.18.0.2 2 eim
  lab_lan_host b rb 2 10
  [ "$block_at" -eq 0 ] && lab_exec rb iptables -I FORWARD -p udp -j DROP
  lab_start_relay relay 198.18.0.10 "$work/relay-$name.log" -q || bad "$name: relay up"
  local common=(--ephemeral --relay https://198.18.0.10:8443 --relay-ca "$work/cert.pem")
  rm -f "$work/t-$name" "$work/opened-$name"
  lab_bg a "$work/a-$name.err" "$KW" listen "${common[@]}" --ticket-file "$work/t-$name" >/dev/null
  lab_wait_file "$work/t-$name" 15 || bad "$name: listener ticket"
  (
    if [ "$block_at" -gt 0 ]; then
      sleep "$block_at"
      lab_exec rb iptables -I FORWARD -p udp -j DROP
      sleep $((unblock_at - block_at))
    else
      sleep "$unblock_at"
    fi
    lab_exec rb iptables -D FORWARD -p udp -j DROP
    echo open >"$work/opened-$name"
  ) &
  local oppid=$!
  timeout 120 ip netns exec "$(lab_ns b)" "$KW" ping "${common[@]}" -c "$count" \
    "$(cat "$work/t-$name")" >"$work/ping-$name.out" 2>"$work/ping-$name.err"
  rc=$?
  wait "$oppid"
  [ -s "$work/opened-$name" ] && ok "$name: UDP let through during the run" ||
    bad "$name: UDP never let through"
  [ "$rc" -eq 0 ] && ok "$name: ping exit 0" ||
    bad "$name: ping exit $rc: $(tail -2 "$work/ping-$name.err")"
  paths=$(grep -o '^seq=[0-9]* path=[a-z]*' "$work/ping-$name.out" | cut -d= -f3)
  first=$(head -1 <<<"$paths")
  last=$(tail -1 <<<"$paths")
  summary=$(tail -1 "$work/ping-$name.out")
  echo "# $name: paths $(uniq -c <<<"$paths" | awk '{printf "%s x%s, ", $2, $1}')$summary"
  lab_cleanup
}

check_appears() {
  [ "$first" = relay ] && ok "appears: first ping on the relay" || bad "appears: first ping on: $first"
  [ "$last" = direct ] && ok "appears: last ping direct" || bad "appears: last ping on: $last"
  grep -q '^80 sent, 80 received' <<<"$summary" && ok "appears: no ping lost to the move" ||
    bad "appears: pings lost: $summary"
}

check_returns() {
  # the runs of equal paths, e.g. "direct relay direct" (the very first ping
  # may still go by the relay while the first round runs: "relay direct ...")
  runs=$(uniq <<<"$paths" | tr '\n' ' ')
  case "$runs" in
    *"direct relay direct ") ok "returns: direct, the relay while UDP was dropped, direct again ($runs)" ;;
    *) bad "returns: path runs $runs" ;;
  esac
}

# The two cases run at once, each in a lab of its own (a subshell: its
# own namespace prefix), which halves the test's time; each leaves its
# output and its counts in $work, printed and added up here.
(
  run_case appears 80 0 5
  check_appears
  echo "$passed $failed" >"$work/appears.res"
) >"$work/appears.log" 2>&1 &
p1=$!
(
  run_case returns 40 4 12
  check_returns
  echo "$passed $failed" >"$work/returns.res"
) >"$work/returns.log" 2>&1 &
p2=$!
wait "$p1" "$p2"
for c in appears returns; do
  cat "$work/$c.log"
  if read -r p f <"$work/$c.res"; then
    passed=$((passed + p))
    failed=$((failed + f))
  else
    bad "$c: the case did not finish"
  fi
done
lab_test_end
