#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# keyway listen / connect: 64 MiB each way at once, equal SHA-256 both
# ways, the --json events, exit 0 when both directions ended; with stdin
# kept open, written bytes arrive without waiting for more.
. "$(dirname "$0")/cli_lib.sh"

head -c 64M /dev/urandom >"$WORK/a"
head -c 64M /dev/urandom >"$WORK/b"
"$KW" listen --ephemeral --once --json --bind 127.0.0.1:0 \
  --ticket-file "$WORK/t" <"$WORK/a" >"$WORK/l.out" 2>"$WORK/l.err" &
lpid=$!
PIDS+=("$lpid")
wait_file "$WORK/t" 10 || bad "listener ticket"
set +e
timeout 120 "$KW" connect --ephemeral --json "$(cat "$WORK/t")" \
  <"$WORK/b" >"$WORK/c.out" 2>"$WORK/c.err"
crc=$?
timeout 30 tail --pid="$lpid" -f /dev/null
wait "$lpid"
lrc=$?
set -e
check "connect exits 0" test "$crc" -eq 0
check "listen --once exits 0" test "$lrc" -eq 0
check "listener -> connector bytes equal (sha256)" \
  test "$(sha256sum <"$WORK/a")" = "$(sha256sum <"$WORK/c.out")"
check "connector -> listener bytes equal (sha256)" \
  test "$(sha256sum <"$WORK/b")" = "$(sha256sum <"$WORK/l.out")"
check "listener printed a ticket event" grep -q '^{"event":"ticket","ticket":"kw1' "$WORK/l.err"
check "connected event" grep -q '"event":"connected","remote":"[a-z2-7]\{52\}","alpn":"keyway/pipe/1"' "$WORK/c.err"
check "path event says direct" grep -q '"event":"path".*"kind":"direct"' "$WORK/c.err"
check "stats event at exit" grep -q '"event":"stats".*"bytes_sent":67108864.*"bytes_received":67108864' "$WORK/c.err"
check "stderr is only JSON objects" bash -c "! grep -v '^{' '$WORK/c.err'"

# stdin kept open: what was written arrives without waiting for more input
# or the end of it (a line alone, then a burst followed by a line: the
# reader must not hold a short chunk back to fill it)
mkfifo "$WORK/pin"
"$KW" listen --ephemeral --once --bind 127.0.0.1:0 --ticket-file "$WORK/tp" \
  </dev/null >"$WORK/lp.out" 2>"$WORK/lp.err" &
lpid=$!
PIDS+=("$lpid")
wait_file "$WORK/tp" 10 || bad "open-stdin listener ticket"
timeout 120 "$KW" connect --ephemeral -q "$(cat "$WORK/tp")" <"$WORK/pin" \
  >/dev/null 2>"$WORK/cp.err" &
cpid=$!
PIDS+=("$cpid")
exec 7>"$WORK/pin"
echo first-line >&7
for _ in $(seq 200); do grep -qx first-line "$WORK/lp.out" && break; sleep 0.05; done
check "open stdin: a line arrives before more input" grep -qx first-line "$WORK/lp.out"
head -c 16M /dev/zero >&7
echo last-line >&7
want=$((11 + (16 << 20) + 10))
for _ in $(seq 400); do [ "$(stat -c %s "$WORK/lp.out")" -ge "$want" ] && break; sleep 0.05; done
check "open stdin: a burst and the line after it arrive before more input" \
  test "$(stat -c %s "$WORK/lp.out")" -eq "$want"
check "open stdin: the last line is the last one" test "$(tail -c 10 "$WORK/lp.out")" = last-line
exec 7>&-
set +e
timeout 30 tail --pid="$cpid" -f /dev/null
wait "$cpid"
crc=$?
timeout 30 tail --pid="$lpid" -f /dev/null
wait "$lpid"
lrc=$?
set -e
check "open stdin: connect exits 0 once stdin ends (got $crc)" test "$crc" -eq 0
check "open stdin: listen --once exits 0 (got $lrc)" test "$lrc" -eq 0

# empty input, custom ALPN, IPv6 loopback
"$KW" listen --ephemeral --once --alpn demo/1 --bind '[::1]:0' \
  --ticket-file "$WORK/t6" </dev/null >"$WORK/l6.out" 2>"$WORK/l6.err" &
PIDS+=($!)
wait_file "$WORK/t6" 10 || bad "ipv6 listener ticket"
set +e
echo hello | timeout 30 "$KW" connect --ephemeral -q --alpn demo/1 "$(cat "$WORK/t6")" >"$WORK/c6.out" 2>"$WORK/c6.err"
rc=$?
set -e
check "IPv6 + custom ALPN: exit 0" test "$rc" -eq 0
sleep 0.5
check "IPv6 + custom ALPN: bytes arrived" grep -qx hello "$WORK/l6.out"
"$KW" listen --ephemeral --once --bind 127.0.0.1:0 --ticket-file "$WORK/t7" </dev/null >/dev/null 2>&1 &
PIDS+=($!)
wait_file "$WORK/t7" 10 || true
set +e
echo x | timeout 30 "$KW" connect --ephemeral --alpn other/1 "$(cat "$WORK/t7")" >/dev/null 2>"$WORK/c7.err"
rc=$?
set -e
check "ALPN the listener does not accept: exit 1" test "$rc" -eq 1
finish
