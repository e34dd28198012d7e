#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# keyway listen-tcp / connect-tcp with a real TCP service and real TCP
# clients (tcp_forward.py) on loopback: several concurrent connections with
# data verified by SHA-256 both ways, half-close (each client half-closes,
# the service answers after its EOF), a service that speaks first,
# back-pressure (a client that reads nothing for a while: the tools'
# memory stays bounded while 48 MiB wait), a refused service, Ctrl-C.
. "$(dirname "$0")/cli_lib.sh"
PY=$(dirname "$0")/tcp_forward.py
# a sanitizer build keeps freed memory in quarantine: keep it small there
lim=64
if grep -q '^KW_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
  export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8
  lim=160
fi
rss_mb() { awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$1/status" 2>/dev/null || echo 0; }

python3 "$PY" server "$WORK/sport" &
PIDS+=($!)
wait_file "$WORK/sport" 10 || bad "the TCP service started"
sport=$(cat "$WORK/sport")
cport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

bg lt "$KW" listen-tcp --ephemeral --bind 127.0.0.1:0 --to "127.0.0.1:$sport" \
  --ticket-file "$WORK/t" -v
ltpid=$LASTPID
wait_file "$WORK/t" 10 || bad "listen-tcp ticket"
bg ct "$KW" connect-tcp --ephemeral --bind 127.0.0.1:0 --from "127.0.0.1:$cport" -v "$(cat "$WORK/t")"
ctpid=$LASTPID
for _ in $(seq 100); do grep -q 'accepting TCP' "$WORK/ct.err" && break; sleep 0.05; done
check "connect-tcp says where it accepts" grep -q "accepting TCP on 127.0.0.1:$cport" "$WORK/ct.err"

check "a service that speaks first reaches a silent client" timeout 20 python3 "$PY" banner "$cport"
check "8 concurrent connections, 2 MiB each way, half-close, hashes match" \
  timeout 120 python3 "$PY" clients "$cport" 8 2097152
check "1 byte each way" timeout 30 python3 "$PY" clients "$cport" 1 1
check "an empty request (half-close at once)" timeout 30 python3 "$PY" clients "$cport" 1 0

# back-pressure: the first client reads nothing for 4 s while 48 MiB come
python3 "$PY" clients "$cport" 2 50331648 4 >"$WORK/bp.out" 2>&1 &
bppid=$!
PIDS+=("$bppid")
sleep 3
lt_rss=$(rss_mb "$ltpid")
ct_rss=$(rss_mb "$ctpid")
set +e; timeout 120 tail --pid="$bppid" -f /dev/null; wait "$bppid"; bprc=$?; set -e
check "back-pressure: the slow reader gets every byte (hashes match)" test "$bprc" -eq 0
check "back-pressure: listen-tcp stays bounded (${lt_rss} MB)" test "$lt_rss" -lt "$lim"
check "back-pressure: connect-tcp stays bounded (${ct_rss} MB)" test "$ct_rss" -lt "$lim"

check "still serving after all that" timeout 30 python3 "$PY" clients "$cport" 3 65536
check "the listener saw the streams" grep -q 'tcp #[0-9]*: new stream' "$WORK/lt.err"

# a refused service: the client's connection ends, connect-tcp goes on
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bg lt2 "$KW" listen-tcp --ephemeral --bind 127.0.0.1:0 --to "127.0.0.1:$dead" --ticket-file "$WORK/t2" -v
wait_file "$WORK/t2" 10 || bad "listen-tcp 2 ticket"
cport2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bg ct2 "$KW" connect-tcp --ephemeral --bind 127.0.0.1:0 --from "127.0.0.1:$cport2" "$(cat "$WORK/t2")"
ct2pid=$LASTPID
for _ in $(seq 100); do grep -q 'accepting TCP' "$WORK/ct2.err" && break; sleep 0.05; done
refused() {
  python3 - "$cport2" <<'PY'
import socket, sys
try:
    # the reset may come as soon as the TCP handshake is done, even
    # before connect returns; a refusal is connect-tcp not accepting
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
    s.sendall(b"x")
    d = s.recv(10)
    sys.exit(0 if d == b"" else 1)
except ConnectionRefusedError:
    sys.exit(1)
except ConnectionError:  # reset, or a broken pipe when the reset came first
    sys.exit(0)
PY
}
check "refused service: the client's connection ends" refused
check "refused service: the listener says why" grep -q 'connecting to the service failed: Connection refused' "$WORK/lt2.err"
check "refused service: connect-tcp goes on" kill -0 "$ct2pid"

# Ctrl-C on connect-tcp: exit 130; the listener reports the peer that went
kill -INT "$ctpid"
set +e; timeout 10 tail --pid="$ctpid" -f /dev/null; wait "$ctpid"; rc=$?; set -e
check "connect-tcp: Ctrl-C exits 130 (got $rc)" test "$rc" -eq 130
sleep 0.3
check "listen-tcp reports the peer that went" grep -q 'went: the other side stopped (interrupted)' "$WORK/lt.err"
set +e
"$KW" listen-tcp --ephemeral 2>"$WORK/e1"; r1=$?
"$KW" connect-tcp --ephemeral "$(cat "$WORK/t")" 2>"$WORK/e2"; r2=$?
"$KW" listen-tcp --ephemeral --to nohostport 2>"$WORK/e3"; r3=$?
set -e
check "listen-tcp without --to: usage error" test "$r1" -eq 2
check "connect-tcp without --from: usage error" test "$r2" -eq 2
check "--to without a port: usage error" test "$r3" -eq 2
[ "$FAILED" -eq 0 ] || for f in "$WORK"/lt*.err "$WORK"/ct*.err "$WORK"/bp.out; do echo "== $f"; tail -n 20 "$f"; done
finish
