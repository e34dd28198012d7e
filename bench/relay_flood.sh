#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One relayed keyway pair's throughput alone, then while another client
# floods (a) a peer that never reads and (b) ids nobody has (figures
# printed, never pass/fail). Loopback only.
#   bench/relay_flood.sh [BUILD] [keyway-relay flags...]
# KW_TESTC_V1=1 makes the flooders speak relay protocol version 1 (to
# measure a relay from before version 2).
set -uo pipefail
build=${1:-build}
shift || true
KW=$build/keyway
RELAY=$build/keyway-relay
TC=${TESTC:-$build/tests/relay_testc}
MIB=${MIB:-512}
work=$(mktemp -d "${TMPDIR:-/tmp}/kw-bench-flood.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
tport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
uport() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

rp=$(tport); sp=$(uport)
"$RELAY" --listen "127.0.0.1:$rp" --stun-listen "127.0.0.1:$sp" \
  --cert-out "$work/relay.pem" --state-dir "$work/state" -q "$@" 2>"$work/relay.log" &
pids+=("$!")
for _ in $(seq 100); do [ -s "$work/relay.pem" ] && break; sleep 0.05; done
url="https://127.0.0.1:$rp/?stun=$sp"
common=(--ephemeral -q --bind 127.0.0.1:0 --bind "[::1]:0" --relay "$url" --relay-ca "$work/relay.pem")

pair() { # pair NAME: prints MB/s of MIB MiB through the relay
  "$KW" listen "${common[@]}" --once --ticket-file "$work/t$1" </dev/null >/dev/null 2>"$work/l$1.err" &
  local lp=$!
  for _ in $(seq 200); do [ -s "$work/t$1" ] && break; sleep 0.05; done
  local t s e
  t=$("$build/tests/ticket_tool" port "$(cat "$work/t$1")" 9)
  s=$(now)
  head -c "${MIB}M" /dev/zero | "$KW" connect "${common[@]}" "$t" >/dev/null 2>"$work/c$1.err"
  e=$(now)
  wait "$lp" 2>/dev/null
  python3 -c "print('%7.1f' % ($MIB*1048576/($e-$s)/1e6))"
}
echo "relay flags: ${*:-(defaults)}"
echo "pair alone:                  $(pair a) MB/s"
for kind in stuck unknown; do
  "$TC" "flood-$kind" "127.0.0.1:$rp" "$work/relay.pem" 30 >"$work/flood-$kind.out" 2>&1 &
  fp=$!
  pids+=("$fp")
  sleep 1
  echo "pair + flood toward $kind: $(pair "$kind") MB/s"
  kill "$fp" 2>/dev/null
  wait "$fp" 2>/dev/null
done
