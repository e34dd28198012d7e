#!/usr/bin/env bash
# The punishment table on a live endpoint: a source that keeps sending
# datagrams that are neither STUN, disco nor QUIC is banned (logged as
# addr.banned), and its later packets are dropped undecoded; other sources
# still connect, and the endpoint keeps working. Loopback only.
. "$(dirname "$0")/cli_lib.sh"

"$KW" listen --ephemeral --json -v --bind 127.0.0.1:0 --bind '[::1]:0' \
  --ticket-file "$WORK/t" </dev/null >"$WORK/l.out" 2>"$WORK/l.err" &
lpid=$!
PIDS+=("$lpid")
wait_file "$WORK/t" 10 || bad "listener ticket"
port=$(grep -o 'v4=127\.0\.0\.1:[0-9]*' "$WORK/l.err" | head -1 | cut -d: -f2)
check "the listener's port is known" test -n "$port"

# 20 junk datagrams from one source port, then 5 more after the ban
python3 - "$port" >"$WORK/src" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
for i in range(25):
    s.sendto(b"\x00junk that is not quic" + bytes([i]), ("127.0.0.1", int(sys.argv[1])))
    time.sleep(0.01)
PY
src=$(cat "$WORK/src")
for _ in $(seq 50); do
  grep -q "addr.banned addr=127.0.0.1:$src" "$WORK/l.err" && break
  sleep 0.1
done
check "the junk source is banned" grep -q "addr.banned addr=127.0.0.1:$src" "$WORK/l.err"
check "it is banned once, not once per packet" \
  test "$(grep -c "addr.banned addr=127.0.0.1:$src" "$WORK/l.err")" -eq 1

# another source still connects and moves data
head -c 100000 /dev/urandom >"$WORK/in"
set +e
timeout 30 "$KW" connect --ephemeral -q --bind 127.0.0.1:0 --bind '[::1]:0' \
  "$(cat "$WORK/t")" <"$WORK/in" >"$WORK/out" 2>"$WORK/c.err"
rc=$?
set -e
check "a well-behaved peer still connects (exit $rc)" test "$rc" -eq 0
kill -INT "$lpid" 2>/dev/null || true
wait "$lpid" 2>/dev/null || true
check "the listener received its data intact" cmp -s "$WORK/in" "$WORK/l.out"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
