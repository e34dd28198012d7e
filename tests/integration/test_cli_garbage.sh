#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The punishment table on a live endpoint: a source that keeps sending
# datagrams that are neither STUN, disco nor QUIC, and has no relation to
# any remote, is banned (logged as addr.banned) and its later garbage is
# dropped undecoded; other sources still connect, and the endpoint keeps
# working. The source of garbage is spoofable, so garbage "from" a real
# peer's address must not lock the peer out: a ban never stops a handshake
# (and the handshake lifts it), and an address that is a known path of a
# remote or has authenticated is never banned. Loopback only.
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

# spoofed garbage "from" a peer's address before the peer ever connected:
# the address may be banned (it has no relation yet), but the peer's
# handshake goes through and lifts the ban
pport=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
junk_from() { # junk_from PORT COUNT: garbage to the listener from 127.0.0.1:PORT
  python3 - "$port" "$1" "$2" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[2])))
for i in range(int(sys.argv[3])):
    s.sendto(b"\x00spoofed junk" + bytes([i % 256]), ("127.0.0.1", int(sys.argv[1])))
    time.sleep(0.005)
s.close()
PY
}
junk_from "$pport" 25
for _ in $(seq 30); do
  grep -q "addr.banned addr=127.0.0.1:$pport" "$WORK/l.err" && break
  sleep 0.1
done
set +e
timeout 20 "$KW" ping --ephemeral -q -c 2 --bind "127.0.0.1:$pport" "$(cat "$WORK/t")" \
  >"$WORK/p1.out" 2>"$WORK/p1.err"
rc=$?
set -e
check "a peer whose address was spoofed before it connected still pings (exit $rc)" test "$rc" -eq 0
if grep -q "addr.banned addr=127.0.0.1:$pport" "$WORK/l.err"; then
  check "... and its handshake lifted the ban" \
    grep -q "addr.unbanned addr=127.0.0.1:$pport" "$WORK/l.err"
fi

# spoofed garbage "from" the address of a peer the listener knows (a path
# of its remote, and it completed a handshake): never banned; the peer
# dials again from it at once
kport=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
set +e
timeout 20 "$KW" ping --ephemeral -q -c 1 --bind "127.0.0.1:$kport" "$(cat "$WORK/t")" \
  >"$WORK/p2.out" 2>"$WORK/p2.err"
rc=$?
set -e
check "a second peer pings (exit $rc)" test "$rc" -eq 0
junk_from "$kport" 40
sleep 0.3
check "garbage spoofed from a known peer's address bans nothing" \
  bash -c "! grep -q 'addr.banned addr=127.0.0.1:$kport' '$WORK/l.err'"
set +e
timeout 20 "$KW" ping --ephemeral -q -c 2 --bind "127.0.0.1:$kport" "$(cat "$WORK/t")" \
  >"$WORK/p3.out" 2>"$WORK/p3.err"
rc=$?
set -e
check "that peer pings again from its address at once (exit $rc)" test "$rc" -eq 0

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
