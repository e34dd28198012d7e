# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared helpers of the keyway-relay integration scripts: a work dir
# ($TMP), background processes killed on exit, pass/fail counting, relays
# started on port 0 of 127.0.0.1 and their /metrics read back. The caller
# sets RELAY (the binary) first.
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }
# check NAME command...: on success the first lines the command said
# (other than its own "ok" lines), on failure its last 20
check() {
  local name=$1; shift
  if "$@" >"$TMP/last.out" 2>&1; then ok "$name"; sed 's/^/    /' "$TMP/last.out" | grep -v '^    ok ' | head -n 3  || true
  else bad "$name"; sed 's/^/    /' "$TMP/last.out" | tail -n 20; fi
}

# start_relay NAME [flags...]: starts a relay on port 0 of 127.0.0.1 (STUN
# on $RELAY_STUN, default 127.0.0.1:0; "off" for none), waits for its
# listening lines and sets ADDR_<NAME>, STUN_<NAME>, METRICS_<NAME>,
# PID_<NAME>, LOG_<NAME>, CA_<NAME>.
start_relay() {
  local name=$1; shift
  local log="$TMP/$name.log" ca="$TMP/$name.pem"
  "$RELAY" --listen 127.0.0.1:0 --stun-listen "${RELAY_STUN:-127.0.0.1:0}" \
    --metrics-listen 127.0.0.1:0 --cert-out "$ca" --json -v "$@" 2>"$log" &
  local pid=$!
  PIDS+=("$pid")
  local i
  for i in $(seq 1 100); do
    grep -q '"event":"metrics.listening"' "$log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  grep -q '"event":"metrics.listening"' "$log" || { echo "relay $name did not start"; cat "$log"; return 1; }
  local a s m
  a=$(sed -n 's/.*"event":"relay.listening","addr":"\([^"]*\)".*/\1/p' "$log" | head -n1)
  s=$(sed -n 's/.*"event":"stun.listening","addr":"\([^"]*\)".*/\1/p' "$log" | head -n1)
  m=$(sed -n 's/.*"event":"metrics.listening","addr":"\([^"]*\)".*/\1/p' "$log" | head -n1)
  printf -v "ADDR_$name" '%s' "$a"
  printf -v "STUN_$name" '%s' "$s"
  printf -v "METRICS_$name" '%s' "$m"
  printf -v "PID_$name" '%s' "$pid"
  printf -v "LOG_$name" '%s' "$log"
  printf -v "CA_$name" '%s' "$ca"
}

# metric NAME SERIES: the value of one exact series, or "missing"
metric() {
  local m="METRICS_$1"
  curl -s --max-time 5 "http://${!m}/metrics" |
    awk -v s="$2" '$1 == s { print $2; found = 1 } END { if (!found) print "missing" }'
}
# metric_is NAME SERIES VALUE, waiting up to 10 s for the value to settle
# (a loaded machine can take seconds to see a client go)
metric_is() {
  local v i
  for i in $(seq 1 100); do
    v=$(metric "$1" "$2")
    [ "$v" = "$3" ] && return 0
    sleep 0.1
  done
  echo "$2 = $v, want $3"; return 1
}
# metric_ge NAME SERIES MIN, waiting up to 3 s
metric_ge() {
  local v i
  for i in $(seq 1 30); do
    v=$(metric "$1" "$2")
    [ "$v" != missing ] && awk -v a="$v" -v b="$3" 'BEGIN { exit !(a + 0 >= b + 0) }' && return 0
    sleep 0.1
  done
  echo "$2 = $v, want >= $3"; return 1
}
