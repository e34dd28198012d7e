#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Relay benchmarks (figures printed, never pass/fail), loopback only:
#  - keyway: one pair through keyway-relay (relay-only tickets), 50 pairs
#    at once, forwarded packets/s from the relay's metrics, relay memory per
#    idle authenticated client;
#  - coturn in the same run: turnserver relaying between two
#    turnutils_uclient peers (UDP, 1400-byte messages), its own report.
set -uo pipefail
build=${1:-build}
KW=$build/keyway
RELAY=$build/keyway-relay
work=$(mktemp -d "${TMPDIR:-/tmp}/kw-bench-relay.XXXXXX")
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

rp=$(tport); sp=$(uport); mp=$(tport)
"$RELAY" --listen "127.0.0.1:$rp" --stun-listen "127.0.0.1:$sp" --rate 0 \
  --metrics-listen "127.0.0.1:$mp" --cert-out "$work/relay.pem" --state-dir "$work/state" -q 2>"$work/relay.log" &
rpid=$!
pids+=("$rpid")
for _ in $(seq 100); do [ -s "$work/relay.pem" ] && break; sleep 0.05; done
url="https://127.0.0.1:$rp/?stun=$sp"
# loopback only: the ticket and CallMeMaybe then name no other address
common=(--ephemeral -q --bind 127.0.0.1:0 --bind "[::1]:0" --relay "$url" --relay-ca "$work/relay.pem")
metric() { curl -s "http://127.0.0.1:$mp/metrics" 2>/dev/null | awk -v k="$1" '$1==k {print $2}'; }

# one pair: listen | connect with a relay-only ticket
pair() { # pair MIB -> prints seconds
  local i=$1 mib=$2 t
  "$KW" listen "${common[@]}" --once --ticket-file "$work/t$i" </dev/null >/dev/null 2>"$work/l$i.err" &
  local lp=$!
  for _ in $(seq 200); do [ -s "$work/t$i" ] && break; sleep 0.05; done
  t=$("$build/tests/ticket_tool" port "$(cat "$work/t$i")" 9)
  local s e
  s=$(now)
  head -c "${mib}M" /dev/zero | "$KW" connect "${common[@]}" "$t" >/dev/null 2>"$work/c$i.err"
  e=$(now)
  wait "$lp" 2>/dev/null
  echo "$s $e"
}
echo "== keyway-relay"
f0=$(metric keyway_relay_frames_forwarded_total)
read -r s e < <(pair 0 512)
f1=$(metric keyway_relay_frames_forwarded_total)
python3 -c "print('one pair, 512 MiB:      %7.1f MB/s' % (512*1048576/($e-$s)/1e6))"
[ -n "$f0" ] && [ -n "$f1" ] && python3 -c "print('forwarded packets/s:    %9.0f' % (($f1-$f0)/($e-$s)))"
s=$(now)
pp=()
for i in $(seq 1 50); do
  pair "$i" 16 >/dev/null &
  pp+=($!)
done
wait "${pp[@]}"
e=$(now)
python3 -c "print('50 pairs x 16 MiB:      %7.1f MB/s aggregate' % (50*16*1048576/($e-$s)/1e6))"
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$rpid/status")
"$build/tests/relay_testc" many "127.0.0.1:$rp" "$work/relay.pem" 500 >/dev/null 2>&1 &
tcp=$!
sleep 3
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$rpid/status")
wait "$tcp" 2>/dev/null
python3 -c "print('memory per idle client: %7.1f KiB (RSS %s -> %s KiB with 500 clients)' % (($rss1-$rss0)/500, $rss0, $rss1))"

echo "== coturn (turnserver + turnutils_uclient, UDP, 1400-byte messages)"
if command -v turnserver >/dev/null && command -v turnutils_uclient >/dev/null; then
  cp=$(uport)
  turnserver -n --no-cli --no-tls --no-dtls --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 \
    -p "$cp" --lt-cred-mech --user bench:bench --realm keyway.test --allow-loopback-peers \
    --log-file stdout --simple-log >"$work/turn.log" 2>&1 &
  pids+=($!)
  sleep 0.5
  s=$(now)
  # -z 0: no pacing between packets (the default is one every 20 ms)
  timeout 120 turnutils_uclient -u bench -w bench -p "$cp" -l 1400 -n 20000 -m 10 \
    -z 0 -c -y 127.0.0.1 >"$work/uclient.log" 2>&1
  e=$(now)
  grep -Ei "total (send|recv|transmit|lost)|rate" "$work/uclient.log" | tail -6 | sed 's/^/  /'
  python3 -c "print('coturn: 10 clients x 20000 x 1400 B in %.2f s (%.1f MB/s offered)' % ($e-$s, 10*20000*1400/($e-$s)/1e6))"
  echo "  (coturn's figure is per 1400-byte UDP message with its own loss"
  echo "   report above; keyway's is QUIC goodput through TLS over TCP)"
else
  echo "  turnserver/turnutils_uclient missing (make deps)"
fi
