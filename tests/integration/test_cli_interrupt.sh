#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Ctrl-C and a vanished peer on listen/connect: an interrupted side exits
# 130 after closing with the "interrupted" code; the other side says at
# once that the other side stopped (never "connection lost: success" nor
# "an application code" without its meaning); a serving listener reports
# the peer that went and goes on serving. Loopback only.
. "$(dirname "$0")/cli_lib.sh"
wait_pid() { # wait_pid PID SECONDS: its exit status, 124 if it had to be killed
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    kill -0 "$1" 2>/dev/null || { wait "$1"; return $?; }
    sleep 0.05
  done
  kill -9 "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  return 124
}
no_bad_words() { ! grep -Eq 'connection lost: success|an application code|success$' "$@"; }
mkfifo "$WORK/in1" "$WORK/in2" "$WORK/in3"
sleep 60 >"$WORK/in1" & PIDS+=($!)
sleep 60 >"$WORK/in2" & PIDS+=($!)
sleep 60 >"$WORK/in3" & PIDS+=($!)

# 1. the dialer is interrupted: it exits 130, the --once listener says why
"$KW" listen --ephemeral --once --bind 127.0.0.1:0 --ticket-file "$WORK/t1" \
  <"$WORK/in1" >/dev/null 2>"$WORK/l1.err" &
lpid=$!; PIDS+=("$lpid")
wait_file "$WORK/t1" 10 || bad "listener 1 ticket"
"$KW" connect --ephemeral "$(cat "$WORK/t1")" <"$WORK/in2" >/dev/null 2>"$WORK/c1.err" &
cpid=$!; PIDS+=("$cpid")
for _ in $(seq 100); do grep -q '^connected' "$WORK/c1.err" && break; sleep 0.05; done
sleep 0.3
kill -INT "$cpid"
set +e
start=$(date +%s%N)
wait_pid "$cpid" 5; crc=$?
wait_pid "$lpid" 5; lrc=$?
took=$(( ($(date +%s%N) - start) / 1000000 ))
set -e
check "interrupted connect exits 130 (got $crc)" test "$crc" -eq 130
check "interrupted connect says so" grep -q "keyway: connect: interrupted" "$WORK/c1.err"
check "the listener exits 1 (got $lrc)" test "$lrc" -eq 1
check "the listener learns within 2 s (${took} ms)" test "$took" -lt 2000
check "the listener says the other side stopped" grep -q "keyway: listen: the other side stopped (interrupted)" "$WORK/l1.err"
check "no meaningless close message" no_bad_words "$WORK/l1.err" "$WORK/c1.err"

# 2. the listener is interrupted: the dialer says the other side stopped
"$KW" listen --ephemeral --bind 127.0.0.1:0 --ticket-file "$WORK/t2" --json \
  <"$WORK/in1" >/dev/null 2>"$WORK/l2.err" &
lpid=$!; PIDS+=("$lpid")
wait_file "$WORK/t2" 10 || bad "listener 2 ticket"
"$KW" connect --ephemeral "$(cat "$WORK/t2")" <"$WORK/in2" >/dev/null 2>"$WORK/c2.err" &
cpid=$!; PIDS+=("$cpid")
for _ in $(seq 100); do grep -q '"event":"connected"' "$WORK/l2.err" && break; sleep 0.05; done
sleep 0.3
kill -INT "$lpid"
set +e
wait_pid "$lpid" 5; lrc=$?
wait_pid "$cpid" 5; crc=$?
set -e
check "interrupted listener exits 130 (got $lrc)" test "$lrc" -eq 130
check "the dialer exits 1 (got $crc)" test "$crc" -eq 1
check "the dialer says the other side stopped" grep -q "keyway: connect: the other side stopped (interrupted)" "$WORK/c2.err"
check "interrupted listener: JSON error event" grep -q '"event":"error".*interrupted' "$WORK/l2.err"
check "no meaningless close message" no_bad_words "$WORK/c2.err"

# 3. a serving listener reports a dialer that went, and serves the next one
"$KW" listen --ephemeral --bind 127.0.0.1:0 --ticket-file "$WORK/t3" \
  </dev/null >"$WORK/l3.out" 2>"$WORK/l3.err" &
lpid=$!; PIDS+=("$lpid")
wait_file "$WORK/t3" 10 || bad "listener 3 ticket"
"$KW" connect --ephemeral "$(cat "$WORK/t3")" <"$WORK/in3" >/dev/null 2>"$WORK/c3.err" &
cpid=$!; PIDS+=("$cpid")
for _ in $(seq 100); do grep -q '^connected' "$WORK/l3.err" && break; sleep 0.05; done
sleep 0.3
kill -INT "$cpid"
set +e; wait_pid "$cpid" 5; crc=$?; set -e
for _ in $(seq 40); do grep -q '^peer ' "$WORK/l3.err" && break; sleep 0.05; done
check "dialer 3 exits 130" test "$crc" -eq 130
check "the listener reports the peer that went" grep -q "^peer [a-z2-7]\{10\} went: the other side stopped (interrupted)" "$WORK/l3.err"
check "the listener is still serving" kill -0 "$lpid"
set +e
echo again | timeout 10 "$KW" connect --ephemeral -q "$(cat "$WORK/t3")" >/dev/null 2>"$WORK/c4.err"
rc=$?
set -e
check "a next dialer is served (exit $rc)" test "$rc" -eq 0
sleep 0.3
check "its bytes arrived" grep -qx again "$WORK/l3.out"
kill "$lpid" 2>/dev/null || true
[ "$FAILED" -eq 0 ] || head -20 "$WORK"/*.err
finish
