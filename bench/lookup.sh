#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Dialing by bare id against dialing by ticket: time from the start of
# `keyway connect` to the first byte on its stdout (figures printed, never
# pass/fail; docs/protocol/dht.md, docs/protocol/lan.md).
#
#   bench/lookup.sh BUILD_DIR
#
#  1. The DHT path, on loopback: three keyway-relay nodes form a private
#     Mainline DHT (relay 2 and 3 bootstrap from relay 1; --dht-cache-ttl 1,
#     so each dial by id finds relay 2's cache empty). Listener A is homed at
#     relay 1, dialer B at relay 2. Each run starts a fresh `keyway listen
#     --once` on A (same key; it sends one byte) and waits until relay 1 has
#     put its item into the DHT; then B dials once by A's ticket and, after
#     a fresh listener, once by A's bare id (relay 2 misses, asks the DHT).
#  2. The LAN (root only: two hosts behind one NAT-lab router, no relay, no
#     DHT): `keyway connect --no-relay --lan` by bare id (mDNS) against the
#     same by ticket.
# KW_LOOKUP_RUNS (default 7) runs of each; median, min and max in ms.
set -uo pipefail
BUILD=$(cd "${1:?usage: bench/lookup.sh BUILD_DIR}" && pwd)
KW=$BUILD/keyway
RELAY=$BUILD/keyway-relay
TT=$BUILD/tests/ticket_tool
RUNS=${KW_LOOKUP_RUNS:-7}
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$KW" ] && [ -x "$RELAY" ] && [ -x "$TT" ] || {
  echo "lookup bench: build keyway, keyway-relay and tests/ticket_tool first"
  exit 0
}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kwlookup.XXXXXX")
[ -n "${KW_LOOKUP_KEEP:-}" ] && echo "lookup bench: logs kept in $WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "${KW_LOOKUP_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

now_ns() { date +%s%N; }
uport() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
field() { sed -n "s/.*\"event\":\"$2\",\"addr\":\"\\([^\"]*\\)\".*/\\1/p" "$1" | head -n1; }
wait_grep() { # FILE PATTERN SECONDS
  local i
  for ((i = 0; i < $3 * 20; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
wait_file() { # FILE SECONDS: until FILE is there and not empty
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    [ -s "$1" ] && return 0
    sleep 0.05
  done
  return 1
}
# stats LABEL FILE: median, min and max of the ms figures in FILE
stats() {
  sort -n "$2" 2>/dev/null | awk -v l="$1" '{ v[NR] = $1 } END {
    if (NR == 0) { printf "  %-34s no successful run\n", l; exit }
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "  %-34s median %7.1f ms  (min %.1f, max %.1f, %d runs)\n", l, m, v[1], v[NR], NR }'
}

# first_byte OUT_MS_FILE NETNS -- CMD...: runs CMD (a keyway connect) with
# its stdout into a FIFO, and appends to OUT_MS_FILE the ms from its start
# to the first byte read; the command is then ended
first_byte() {
  local out=$1 ns=$2 fifo=$WORK/fifo.$RANDOM t0 t1 pid
  shift 3
  mkfifo "$fifo"
  t0=$(now_ns)
  if [ -n "$ns" ]; then
    timeout 20 ip netns exec "$ns" "$@" </dev/null >"$fifo" 2>>"$WORK/connect.err" &
  else
    timeout 20 "$@" </dev/null >"$fifo" 2>>"$WORK/connect.err" &
  fi
  pid=$!
  if [ "$(head -c 1 "$fifo" | wc -c)" -eq 1 ]; then
    t1=$(now_ns)
    echo "$(((t1 - t0) / 1000)) 1000" | awk '{ printf "%.3f\n", $1 / $2 }' >>"$out"
  fi
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rm -f "$fifo"
}

# ---- 1. the DHT path, loopback ------------------------------------------
start_dht_relay() { # N [flags]
  local n=$1 i a s
  shift
  local log="$WORK/r$n.log"
  "$RELAY" --listen 127.0.0.1:0 --stun-listen 127.0.0.1:0 --cert-out "$WORK/ca$n.pem" \
    --json -v "$@" 2>"$log" &
  PIDS+=($!)
  for ((i = 0; i < 100; i++)); do
    grep -q '"event":"stun.listening"' "$log" 2>/dev/null && break
    sleep 0.05
  done
  a=$(field "$log" relay.listening)
  s=$(field "$log" stun.listening)
  [ -n "$a" ] || { echo "lookup bench: relay $n did not start"; exit 0; }
  printf -v "URL$n" 'https://%s/?stun=%s' "$a" "${s##*:}"
}
echo "-- dial by bare id through the DHT (loopback, private DHT of 3 relays) vs by ticket"
D1=$(uport)
D2=$(uport)
D3=$(uport)
start_dht_relay 1 --dht-listen 127.0.0.1:"$D1" --dht-cache-ttl 1
start_dht_relay 2 --dht-listen 127.0.0.1:"$D2" --dht-bootstrap 127.0.0.1:"$D1" --dht-cache-ttl 1
start_dht_relay 3 --dht-listen 127.0.0.1:"$D3" --dht-bootstrap 127.0.0.1:"$D1" --dht-cache-ttl 1
sleep 1 # the nodes find each other
CAS=(--relay-ca "$WORK/ca1.pem" --relay-ca "$WORK/ca2.pem" --relay-ca "$WORK/ca3.pem")
"$KW" id --key "$WORK/a.key" >/dev/null 2>&1
# listener N: a fresh `listen --once` of A at relay 1, sending one byte,
# once its item is in the DHT; its ticket in $WORK/t
start_a() {
  rm -f "$WORK/t"
  : >"$WORK/a.err"
  printf x | "$KW" listen --key "$WORK/a.key" -v --once --relay "$URL1" "${CAS[@]}" \
    --bind 127.0.0.1:0 --ticket-file "$WORK/t" >/dev/null 2>"$WORK/a.err" &
  APID=$!
  PIDS+=("$APID")
  wait_grep "$WORK/a.err" lookup.dht_published 10 && wait_file "$WORK/t" 10
}
stop_a() { kill "$APID" 2>/dev/null; wait "$APID" 2>/dev/null; }
B=(--ephemeral --relay "$URL2" "${CAS[@]}" --bind 127.0.0.1:0)
for ((i = 0; i < RUNS; i++)); do
  if start_a; then
    first_byte "$WORK/dht-ticket.ms" "" -- "$KW" connect "${B[@]}" "$(cat "$WORK/t")"
  fi
  stop_a
  if start_a; then
    id=$("$TT" id "$(cat "$WORK/t")")
    sleep 1.1 # relay 2's cache of A (--dht-cache-ttl 1) runs out
    first_byte "$WORK/dht-id.ms" "" -- "$KW" connect "${B[@]}" "$id"
  fi
  stop_a
done
stats "by ticket (B at relay 2)" "$WORK/dht-ticket.ms"
stats "by bare id, via the DHT" "$WORK/dht-id.ms"
n=$(grep -c '"event":"dht.resolved"' "$WORK/r2.log" 2>/dev/null)
echo "  (relay 2 resolved A from the DHT $n times)"

# ---- 2. the LAN, NAT lab ---------------------------------------------------
echo "-- dial by bare id on the LAN (mDNS, no relay) vs by ticket"
. "$here/../tests/natlab/lib.sh"
if ! lab_have_root || ! lab_can_netns >/dev/null; then
  echo "  skipped: needs root and network namespaces"
  exit 0
fi
lab_init
trap 'lab_cleanup; cleanup' EXIT
lab_router r 198.18.0.2 1 none
lab_lan_host a r 1 10
lab_lan_host b r 1 11
L=(--key "$WORK/l.key" --no-relay --lan)
"$KW" id --key "$WORK/l.key" >/dev/null 2>&1
start_la() {
  rm -f "$WORK/lt"
  : >"$WORK/la.err"
  printf x | ip netns exec "$(lab_ns a)" "$KW" listen "${L[@]}" -v --once \
    --ticket-file "$WORK/lt" >/dev/null 2>"$WORK/la.err" &
  LPID=$!
  LAB_PIDS+=("$LPID")
  wait_grep "$WORK/la.err" lan.started 10 && wait_file "$WORK/lt" 10
}
stop_la() { kill "$LPID" 2>/dev/null; wait "$LPID" 2>/dev/null; }
for ((i = 0; i < RUNS; i++)); do
  if start_la; then
    first_byte "$WORK/lan-ticket.ms" "$(lab_ns b)" -- "$KW" connect --ephemeral --no-relay "$(cat "$WORK/lt")"
  fi
  stop_la
  if start_la; then
    id=$("$TT" id "$(cat "$WORK/lt")")
    first_byte "$WORK/lan-id.ms" "$(lab_ns b)" -- "$KW" connect --ephemeral --no-relay --lan "$id"
  fi
  stop_la
done
stats "by ticket (no relay)" "$WORK/lan-ticket.ms"
stats "by bare id, via mDNS" "$WORK/lan-id.ms"
