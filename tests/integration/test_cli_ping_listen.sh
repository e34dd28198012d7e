#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# keyway ping against `keyway listen` and `keyway send` (ALPN keyway/ping/1,
# datagram echo); ping to nothing listening; a listener without --once
# serves connections one after another, each getting its own end of
# stream; a second connection while one is open is refused; a closed
# stdout stops both ends; SIGINT stops the listener with exit 130 and a
# stats event. Loopback only.
. "$(dirname "$0")/cli_lib.sh"
wait_pid() { # wait_pid PID SECONDS: its exit status, 124 if it had to be killed
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    kill -0 "$1" 2>/dev/null || { wait "$1"; return $?; }
    sleep 0.05
  done
  kill "$1" 2>/dev/null || true
  return 124
}

"$KW" listen --ephemeral --json --bind 127.0.0.1:0 --ticket-file "$WORK/t" \
  </dev/null >"$WORK/l.out" 2>"$WORK/l.err" &
lpid=$!
PIDS+=("$lpid")
wait_file "$WORK/t" 10 || bad "listener ticket"
ticket=$(cat "$WORK/t")

set +e
timeout 30 "$KW" ping --ephemeral -q -c 3 "$ticket" >"$WORK/p.out" 2>"$WORK/p.err"
rc=$?
set -e
check "ping: exit 0" test "$rc" -eq 0
check "ping: three answers, each with path, address and RTT" \
  test "$(grep -Ec '^seq=[123] path=direct addr=(127\.0\.0\.1|\[::1\]):[0-9]+ rtt=[0-9.]+ ms$' "$WORK/p.out")" -eq 3
check "ping: summary line" grep -q '^3 sent, 3 received, rtt min/avg/max ' "$WORK/p.out"
check "ping: the listener emits no events for ping connections" \
  bash -c "! grep -q '\"event\":\"connected\"' '$WORK/l.err'"

# ping a sender
head -c 1000 /dev/urandom >"$WORK/f"
"$KW" send --ephemeral --bind 127.0.0.1:0 --ticket-file "$WORK/ts" "$WORK/f" 2>"$WORK/s.err" &
spid=$!
PIDS+=("$spid")
wait_file "$WORK/ts" 10 || bad "sender ticket"
set +e
timeout 30 "$KW" ping --ephemeral -q -c 1 --json "$(cat "$WORK/ts")" >"$WORK/ps.out" 2>"$WORK/ps.err"
rc=$?
set -e
check "ping a sender: exit 0" test "$rc" -eq 0
check "ping a sender: one answer" grep -q '^seq=1 path=direct' "$WORK/ps.out"
check "ping --json: stats event" grep -q '"event":"stats","bytes_sent":16,"bytes_received":16' "$WORK/ps.err"
kill -INT "$spid"

# nothing listening there any more: exit 1 within the timeout
dead=$("$BUILD/tests/ticket_tool" port "$(cat "$WORK/ts")" 9)
start=$(date +%s)
set +e
timeout 30 "$KW" ping --ephemeral --timeout 1 -c 1 "$dead" >/dev/null 2>"$WORK/pd.err"
rc=$?
set -e
took=$(( $(date +%s) - start ))
check "ping nothing: exit 1" test "$rc" -eq 1
check "ping nothing: within ${took}s (<= 6)" test "$took" -le 6
check "ping nothing: one-line reason" grep -q '^keyway: ping: no answer from [a-z2-7]\{10\} within 1 s$' "$WORK/pd.err"

# the listener (stdin: empty) serves connections one after another
for i in 1 2 3; do
  set +e
  echo "hello $i" | timeout 30 "$KW" connect --ephemeral -q "$ticket" >"$WORK/c$i.out" 2>"$WORK/c$i.err"
  rc=$?
  set -e
  check "connection $i to a listener without --once: exit 0" test "$rc" -eq 0
done
sleep 0.3
check "the listener got every connection's bytes in order" \
  test "$(cat "$WORK/l.out")" = "$(printf 'hello 1\nhello 2\nhello 3')"
check "one connected event per connection" test "$(grep -c '"event":"connected"' "$WORK/l.err")" -eq 3

# a second connection while the first is open: refused, the first unharmed
mkfifo "$WORK/fifo"
timeout 30 "$KW" connect --ephemeral -q "$ticket" <"$WORK/fifo" >"$WORK/c4.out" 2>"$WORK/c4.err" &
c4=$!
PIDS+=("$c4")
exec 7>"$WORK/fifo"
echo first >&7
for _ in $(seq 100); do grep -q first "$WORK/l.out" && break; sleep 0.05; done
set +e
echo second | timeout 30 "$KW" connect --ephemeral -q "$ticket" >/dev/null 2>"$WORK/c5.err"
rc=$?
set -e
check "a second connection meanwhile: exit 1" test "$rc" -eq 1
check "a second connection meanwhile: told why" grep -q 'keyway: ' "$WORK/c5.err"
exec 7>&-
set +e
wait "$c4"
rc=$?
set -e
check "the first connection still ends cleanly" test "$rc" -eq 0
sleep 0.3
check "the first connection's bytes arrived" grep -qx first "$WORK/l.out"
check "the refused connection's bytes did not" bash -c "! grep -q second '$WORK/l.out'"

# nobody reads the dialer's output any more: both ends stop (no endless
# discarding of an endless stream)
"$KW" listen --ephemeral -q --once --bind 127.0.0.1:0 --ticket-file "$WORK/tz" \
  </dev/zero >/dev/null 2>"$WORK/lz.err" &
zpid=$!
PIDS+=("$zpid")
wait_file "$WORK/tz" 10 || bad "zero listener ticket"
set +e
timeout 30 "$KW" connect --ephemeral -q "$(cat "$WORK/tz")" </dev/null 2>"$WORK/cz.err" | head -c 1000 >/dev/null
rc=${PIPESTATUS[0]}
wait_pid "$zpid" 10
zrc=$?
set -e
check "stdout closed: connect exits 1" test "$rc" -eq 1
check "stdout closed: says so" grep -q "keyway: connect: standard output closed" "$WORK/cz.err"
check "stdout closed: the listener stops too (exit $zrc)" test "$zrc" -eq 1

kill -INT "$lpid"
set +e
wait_pid "$lpid" 10
rc=$?
set -e
check "listener stops on SIGINT with exit 130" test "$rc" -eq 130
check "listener: stats event at exit" grep -q '"event":"stats"' "$WORK/l.err"
finish
