#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make demo: a local keyway-relay and two endpoints on loopback; a file goes
# from `keyway send` to `keyway receive` by ticket; prints the path and the
# throughput. Everything stays on 127.0.0.1 and is cleaned up on exit.
set -euo pipefail
build=${1:-build}
KW=$build/keyway
RELAY=$build/keyway-relay
work=$(mktemp -d "${TMPDIR:-/tmp}/keyway-demo.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tport=$(port)
sport=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="https://127.0.0.1:$tport/?stun=$sport"

echo "== keyway demo"
echo "-- starting a relay at $url"
"$RELAY" --listen "127.0.0.1:$tport" --stun-listen "127.0.0.1:$sport" \
  --cert-out "$work/relay.pem" --state-dir "$work/relay-state" -q 2>"$work/relay.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/relay.pem" ] && break; sleep 0.05; done

echo "-- making a 64 MiB file"
head -c 64M /dev/urandom >"$work/demo.bin"
want=$(sha256sum <"$work/demo.bin" | cut -d' ' -f1)

# loopback only: both sockets bound to loopback, so tickets hold nothing else
common=(--ephemeral --bind 127.0.0.1:0 --bind '[::1]:0' --relay "$url"
  --relay-ca "$work/relay.pem")
echo "-- keyway send (one endpoint)"
"$KW" send "${common[@]}" --once --ticket-file "$work/ticket" \
  "$work/demo.bin" 2>"$work/send.log" &
pids+=($!)
for _ in $(seq 200); do [ -s "$work/ticket" ] && break; sleep 0.05; done
[ -s "$work/ticket" ] || { echo "demo: the sender printed no ticket"; cat "$work/send.log"; exit 1; }
echo "   ticket: $(cut -c1-60 <"$work/ticket")..."

echo "-- keyway receive (another endpoint), by ticket"
"$KW" receive "${common[@]}" -o "$work/out" "$(cat "$work/ticket")" 2>"$work/recv.log" || {
  echo "demo: receive failed"; cat "$work/recv.log"; exit 1; }
got=$(sha256sum <"$work/out/demo.bin" | cut -d' ' -f1)
grep -E '^(path|received)' "$work/recv.log" | sed 's/^/   /'
if [ "$got" = "$want" ]; then
  echo "-- sha256 matches: $want"
else
  echo "demo: hash mismatch"; exit 1
fi

echo "-- the same file through the relay only (--relay-only: no direct path)"
"$KW" send "${common[@]}" --relay-only --once --ticket-file "$work/ticket2" \
  "$work/demo.bin" 2>"$work/send2.log" &
pids+=($!)
for _ in $(seq 200); do [ -s "$work/ticket2" ] && break; sleep 0.05; done
[ -s "$work/ticket2" ] || { echo "demo: the relay-only sender printed no ticket"; cat "$work/send2.log"; exit 1; }
"$KW" receive "${common[@]}" --relay-only -o "$work/out2" "$(cat "$work/ticket2")" 2>"$work/recv2.log" || {
  echo "demo: relay receive failed"; cat "$work/recv2.log"; exit 1; }
grep -E '^(path|received)' "$work/recv2.log" | sed 's/^/   /'
echo "== done"
