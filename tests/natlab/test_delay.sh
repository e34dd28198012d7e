#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT lab: WAN links with delay and loss (kw_delaylink, user space: this
# kernel has no netem).
#   1. a LAN host pings the public relay host over its router's 20 ms/direction
#      WAN link: every RTT is >= 40 ms (a lower bound only: nothing here
#      judges how fast the machine is);
#   2. the same over a 0 ms link: traffic passes;
#   3. a 100 % loss link: nothing passes;
#   4. EIM/EIM, 20 ms per WAN link direction on both routers: keyway
#      connect -> keyway listen (relay on the public segment) moves 16 MiB
#      both ways intact and the dialer's last path event is "direct".
# Needs root; exits 77 (skipped) without it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lab_test_begin "$1"
LAB_DELAYLINK=$build/tests/kw_delaylink
[ -x "$LAB_DELAYLINK" ] || { echo "FAIL - $LAB_DELAYLINK not built"; exit 1; }
# shellcheck disable=SC2034 # read by lib.sh: kw_delaylink logs kept in $work
LAB_LOGDIR=$work

# ---- the link itself --------------------------------------------------------
lab_init
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_public_host relay 198.18.0.10
lab_router_delay ra 198.18.0.1 1 eim 20
lab_lan_host a ra 1 10
lab_router_delay rb 198.18.0.2 2 eim 0
lab_lan_host b rb 2 10
lab_router_delay rc 198.18.0.3 3 eim 0 100
lab_lan_host c rc 3 10

out=$(lab_exec a ping -n -c 5 -i 0.2 -W 2 198.18.0.10 2>&1)
rtts=$(grep -o 'time=[0-9.]*' <<<"$out" | cut -d= -f2 | tr '\n' ' ')
n=$(wc -w <<<"$rtts")
low=$(awk -v l="$rtts" 'BEGIN { n = split(l, a, " "); for (i = 1; i <= n; i++) if (a[i] < 40) c++; print c + 0 }')
if [ "$n" -eq 5 ] && [ "$low" -eq 0 ]; then
  ok "20 ms/direction link: 5 replies, every RTT >= 40 ms ($rtts ms)"
else
  bad "20 ms/direction link: $n replies, $low under 40 ms ($rtts)"
  echo "$out"
fi
out=$(lab_exec b ping -n -c 5 -i 0.2 -W 2 198.18.0.10 2>&1)
n=$(grep -c 'time=' <<<"$out")
if [ "$n" -eq 5 ]; then
  ok "0 ms link: 5 replies ($(grep -o 'rtt.*' <<<"$out"))"
else
  bad "0 ms link: $n of 5 replies"
  echo "$out"
fi
out=$(lab_exec c ping -n -c 3 -i 0.2 -W 1 198.18.0.10 2>&1)
n=$(grep -c 'time=' <<<"$out")
[ "$n" -eq 0 ] && ok "100 % loss link: no replies" || bad "100 % loss link: $n replies"
lab_cleanup
lost=$(grep -o 'lost [0-9]*' "$work/${LAB_PREFIX}-delaylink-rc.log" 2>/dev/null | awk '{ s += $2 } END { print s + 0 }')
[ "$lost" -gt 0 ] && ok "100 % loss link: kw_delaylink counted $lost lost frames" ||
  bad "100 % loss link: no frames counted lost"

# ---- keyway over delayed EIM/EIM --------------------------------------------
lab_relay_cert "$work" 198.18.0.10
head -c 16M /dev/urandom >"$work/in_a"
head -c 16M /dev/urandom >"$work/in_b"
lab_init
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_public_host relay 198.18.0.10
lab_router_delay ra 198.18.0.1 1 eim 20
lab_lan_host a ra 1 10
lab_router_delay rb 198.18.0.2 2 eim 20
lab_lan_host b rb 2 10
lab_start_relay relay 198.18.0.10 "$work/relay.log" -q || bad "relay up"
common=(--ephemeral --json -v --relay https://198.18.0.10:8443 --relay-ca "$work/cert.pem")
lab_exec a "$KW" listen "${common[@]}" --once --ticket-file "$work/t" \
  <"$work/in_a" >"$work/out_a" 2>"$work/a.err" &
apid=$!
LAB_PIDS+=("$apid")
lab_wait_file "$work/t" 15 || bad "listener ticket"
s=$(date +%s%N)
timeout 120 ip netns exec "$(lab_ns b)" "$KW" connect "${common[@]}" "$(cat "$work/t")" \
  <"$work/in_b" >"$work/out_b" 2>"$work/b.err"
rc=$?
e=$(date +%s%N)
timeout 20 tail --pid="$apid" -f /dev/null
if lab_pipe_intact "$rc"; then
  ok "EIM/EIM 20 ms: 16 MiB both ways intact ($(((e - s) / 1000000)) ms)"
else
  bad "EIM/EIM 20 ms: transfer (exit $rc)"
  tail -5 "$work/b.err"
fi
kinds=$(lab_path_kinds "$work/b.err")
last=$(grep '"event":"path"' "$work/b.err" | tail -1)
if grep -q '"kind":"direct"' <<<"$last"; then
  ok "EIM/EIM 20 ms: final path direct (path events: $kinds)"
else
  bad "EIM/EIM 20 ms: final path not direct (path events: $kinds)"
  grep -v '"event":"stats"' "$work/b.err" | tail -40
  if [ -n "${KW_NATLAB_KEEP:-}" ]; then
    cp "$work/a.err" "$work/b.err" "$KW_NATLAB_KEEP/" 2>/dev/null
  fi
fi
lab_cleanup
rm -rf "$work"
lab_test_end
