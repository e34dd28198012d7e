#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# QUIC through keyway-relay on loopback: relay-only dial, dial by bare id
# through the lookup store, an unknown id, and the relay killed and
# restarted in the middle of a transfer.
set -euo pipefail
build=$1
relay=$build/keyway-relay
prog=$build/tests/relay_quic
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }

# a certificate and key that survive a relay restart
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 -subj /CN=localhost \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>/dev/null

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
tport=$(port)
sport=$(port)
url="https://127.0.0.1:$tport/?stun=$sport"
start_relay() {
  "$relay" --listen "127.0.0.1:$tport" --stun-listen "127.0.0.1:$sport" \
    --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" -q >>"$work/relay.log" 2>&1 &
  rpid=$!
  pids+=("$rpid")
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$tport") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
start_relay

for mode in relay byid unknown; do
  if timeout 120 "$prog" "$url" "$work/cert.pem" "$mode" 32 >"$work/$mode.out" 2>&1; then
    ok "$mode: $(grep -E 'path=' "$work/$mode.out" || true)"
  else
    bad "$mode"; cat "$work/$mode.out"
  fi
done

# address validation through the relay: the listener answers every Initial
# with a Retry, which reaches the dialer through the relay
if KW_TEST_RETRY=always timeout 120 "$prog" "$url" "$work/cert.pem" relay 8 >"$work/retry.out" 2>&1; then
  ok "relay with Retry: $(grep -E 'path=' "$work/retry.out" || true)"
else
  bad "relay with Retry"; cat "$work/retry.out"
fi

# relay killed mid-transfer, restarted 1 s later: the transfer completes
# (on loopback hole punching may already have moved it to a direct path;
# tests/natlab/test_relay_only.sh restarts the relay under a relay-only
# transfer)
timeout 120 "$prog" "$url" "$work/cert.pem" relay 96 >"$work/restart.out" 2>&1 &
tp=$!
pids+=("$tp")
for _ in $(seq 200); do grep -q transferring "$work/restart.out" && break; sleep 0.05; done
sleep 0.3
kill "$rpid"
wait "$rpid" 2>/dev/null || true
sleep 1
start_relay
if wait "$tp"; then
  ok "relay killed and restarted mid-transfer: completed with equal hashes"
else
  bad "relay restart mid-transfer"; cat "$work/restart.out"
fi
# fairness: a pair flooding through the relay at full speed does not stop
# another pair's 1 MiB pipe; the relay's memory stays bounded
timeout 120 "$prog" "$url" "$work/cert.pem" relay 512 >"$work/flood.out" 2>&1 &
fp=$!
pids+=("$fp")
for _ in $(seq 200); do grep -q transferring "$work/flood.out" && break; sleep 0.05; done
sleep 0.5
t0=$(date +%s%N)
if timeout 60 "$prog" "$url" "$work/cert.pem" relay 1 >"$work/small.out" 2>&1; then
  t1=$(date +%s%N)
  ok "1 MiB pipe completes beside a flood ($(( (t1 - t0) / 1000000 )) ms)"
else
  bad "1 MiB pipe beside a flood"; cat "$work/small.out"
fi
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$rpid/status")
bound=262144
[ -n "${KW_SANITIZED:-}" ] && bound=1048576 # ASan's quarantine holds freed memory
if [ "${hwm:-99999999}" -lt "$bound" ]; then
  ok "relay peak memory ${hwm} KiB (bound $((bound / 1024)) MiB)"
else
  bad "relay peak memory ${hwm} KiB"
fi
kill "$fp" 2>/dev/null || true
wait "$fp" 2>/dev/null || true
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
