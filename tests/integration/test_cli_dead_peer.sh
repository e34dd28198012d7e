#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Dead peer detection: the remote of an active transfer is killed with -9
# on loopback; the survivor must fail with UNREACHABLE well before the 30 s
# idle timeout (the bound is KW_DEAD_PEER_MS, 10 s; asserted: < 20 s).
#  A: the survivor is sending (connect, endless stdin), the listener dies;
#  B: the survivor is receiving (connect), the sending listener dies: its
#     keep-alive PING (5 s in the CLI) is what goes unanswered.
. "$(dirname "$0")/cli_lib.sh"

# dead_case NAME LISTEN_STDIN CONNECT_STDIN: prints the survivor's seconds
dead_case() {
  local n=$1 lin=$2 cin=$3
  "$KW" listen --ephemeral --once --bind 127.0.0.1:0 --ticket-file "$WORK/$n.t" \
    <"$lin" >/dev/null 2>"$WORK/$n.l.err" &
  local lpid=$!
  PIDS+=("$lpid")
  wait_file "$WORK/$n.t" 10 || { bad "$n: listener ticket"; return; }
  "$KW" connect --ephemeral --json "$(cat "$WORK/$n.t")" <"$cin" \
    >/dev/null 2>"$WORK/$n.c.err" &
  local cpid=$!
  PIDS+=("$cpid")
  local i
  for ((i = 0; i < 100; i++)); do
    grep -qs '"event":"connected"' "$WORK/$n.c.err" && break
    sleep 0.05
  done
  sleep 1 # the transfer is running
  kill -0 "$cpid" 2>/dev/null || { bad "$n: connect ended before the kill"; return; }
  kill -9 "$lpid"
  local t0 t1 rc
  t0=$(date +%s.%N)
  set +e
  timeout 40 tail --pid="$cpid" -f /dev/null
  wait "$cpid"
  rc=$?
  set -e
  t1=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  echo "$n: survivor ended after ${secs} s (exit $rc)"
  check "$n: the survivor exits 1" test "$rc" -eq 1
  check "$n: within 20 s of the kill (${secs} s)" \
    awk -v s="$secs" 'BEGIN { exit !(s < 20) }'
  check "$n: the error says the remote stopped answering" \
    grep -q '"event":"error","code":"UNREACHABLE"' "$WORK/$n.c.err"
}

mkfifo "$WORK/none"
exec 3<>"$WORK/none" # a stdin that never ends and never sends
dead_case A /dev/null /dev/zero
dead_case B /dev/zero "$WORK/none"
finish
