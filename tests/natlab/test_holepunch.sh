#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT lab: hole punching. Hosts behind NAT routers (198.18.N.0/24 LANs),
# a relay on the public segment. Each case pipes 16 MiB through
# listen/connect (both ways, checked) and reads the final path kind from
# the dialer's --json path events:
#   no NAT (two public hosts)       -> direct
#   EIM/EIM (MASQUERADE both)      -> direct (hole punched)
#   EIM/public                      -> direct
#   EIM/EDM, EDM/EDM (--random-fully) -> connected, relay (one relay:
#                                      the NAT kind stays unknown, so no
#                                      birthday probing; test_birthday.sh)
#   UDP blocked on one side         -> connected, relay
#   two hosts behind one NAT        -> direct (their LAN addresses)
#   EIM/EIM, NAT mappings flushed (conntrack -F) in the middle of a 64 MiB
#   transfer                        -> completes, direct afterwards
#   EIM/EIM, all UDP through one router dropped mid-transfer
#                                   -> falls back to the relay, completes;
#                                      dialer and listener each count a
#                                      path migration (stats event)
# Needs root; exits 77 (skipped) without it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lab_test_begin "$1"
lab_relay_cert "$work" 198.18.0.10
head -c 16M /dev/urandom >"$work/in_a"
head -c 16M /dev/urandom >"$work/in_b"

# run_case NAME MODE_A MODE_B EXPECT [flush]
run_case() {
  local name=$1 ma=$2 mb=$3 expect=$4 flush=${5:-}
  lab_init
  trap 'lab_cleanup; rm -rf "$work"' EXIT
  lab_public_host relay 198.18.0.10
  local ha=a hb=b
  if [ "$ma" = public ]; then
    lab_public_host a 198.18.0.21
  else
    lab_router ra 198.18.0.1 1 "$ma"
    lab_lan_host a ra 1 10
  fi
  if [ "$mb" = public ]; then
    lab_public_host b 198.18.0.22
  elif [ "$mb" = samelan ]; then
    lab_lan_host b ra 1 11
  else
    lab_router rb 198.18.0.2 2 "$mb"
    lab_lan_host b rb 2 10
  fi
  lab_start_relay relay 198.18.0.10 "$work/relay-$name.log" -q || bad "$name: relay up"
  local common=(--ephemeral --json --relay https://198.18.0.10:8443 --relay-ca "$work/cert.pem")
  rm -f "$work/t"
  lab_exec "$ha" "$KW" listen "${common[@]}" --once --ticket-file "$work/t" \
    <"$work/in_a" >"$work/out_a" 2>"$work/a-$name.err" &
  local apid=$!
  LAB_PIDS+=("$apid")
  lab_wait_file "$work/t" 15 || bad "$name: listener ticket"
  local s e rc
  s=$(date +%s%N)
  if [ -n "$flush" ]; then
    head -c 64M /dev/urandom >"$work/in_b"
    (
      sleep 1.5
      if [ "$flush" = block ]; then
        lab_exec rb iptables -I FORWARD -p udp -j DROP
      else
        for r in ra rb; do lab_exec "$r" conntrack -F >/dev/null 2>&1; done
      fi
      echo flushed >"$work/flushed"
    ) &
    lab_slow_source "$work/in_b" | timeout 90 ip netns exec "$(lab_ns "$hb")" "$KW" connect \
      "${common[@]}" "$(cat "$work/t")" >"$work/out_b" 2>"$work/b-$name.err"
    rc=$?
    [ -s "$work/flushed" ] && ok "$name: mappings flushed during the transfer" ||
      bad "$name: the flush came after the transfer"
  else
    timeout 90 ip netns exec "$(lab_ns "$hb")" "$KW" connect "${common[@]}" "$(cat "$work/t")" \
      <"$work/in_b" >"$work/out_b" 2>"$work/b-$name.err"
    rc=$?
  fi
  e=$(date +%s%N)
  timeout 20 tail --pid="$apid" -f /dev/null
  if lab_pipe_intact "$rc"; then
    ok "$name: connected, data intact both ways ($(( (e - s) / 1000000 )) ms)"
  else
    bad "$name: transfer (exit $rc)"
    tail -3 "$work/b-$name.err"
  fi
  local last
  last=$(grep '"event":"path"' "$work/b-$name.err" | tail -1)
  local kinds
  kinds=$(lab_path_kinds "$work/b-$name.err")
  if grep -q "\"kind\":\"$expect\"" <<<"$last"; then
    ok "$name: final path $expect (path events: $kinds)"
  else
    bad "$name: final path, wanted $expect: $last"
  fi
  if [ "$flush" = block ]; then
    # the move to the relay is a QUIC migration on both sides (the dialer
    # begins it, the listener follows): stats event, path_migrations
    local side f m
    for side in a b; do
      f="$work/$side-$name.err"
      m=$(grep '"event":"stats"' "$f" | grep -o '"path_migrations":[0-9]*' | cut -d: -f2)
      if [ "${m:-0}" -ge 1 ]; then
        ok "$name: $side migrated the connection ($m path migrations)"
      else
        bad "$name: $side reports path_migrations=${m:-none}"
      fi
    done
  fi
  rm -f "$work/flushed"
  head -c 16M /dev/urandom >"$work/in_b"
  lab_cleanup
}

run_case no-nat public public direct
run_case eim-eim eim eim direct
run_case eim-public eim public direct
run_case eim-edm eim edm relay
run_case edm-edm edm edm relay
run_case udpblock-eim udpblock eim relay
run_case same-nat eim samelan direct
run_case eim-eim-flush eim eim direct flush
run_case eim-eim-udp-dies eim eim relay block
rm -rf "$work"
lab_test_end
