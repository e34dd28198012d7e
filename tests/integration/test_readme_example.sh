#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# README.md's library example, extracted from the README text itself:
# compiles as printed (-Wall -Werror) against the build, and run against the
# peer the README names (`keyway listen --alpn my-app/1 --once`) on loopback
# its line arrives there, and the listener's reply arrives back.
. "$(dirname "$0")/cli_lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)

# the first ```c block after the "## The library" heading
awk '/^## The library/ {lib = 1} lib && /^```c$/ {on = 1; next}
     on && /^```$/ {exit} on {print}' "$SRC/README.md" >"$WORK/hello.c"
check "README has a C example" test -s "$WORK/hello.c"
check "the example has a main" grep -q '^int main(' "$WORK/hello.c"
CC=${CC:-cc}
san=()
grep -q '^KW_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null &&
  san=(-fsanitize=address,undefined) # the library was built with them
if "$CC" -std=c11 -Wall -Werror "${san[@]}" -I"$SRC/include" "$WORK/hello.c" \
  -L"$BUILD" -lkeyway -Wl,-rpath,"$BUILD" -o "$WORK/hello" 2>"$WORK/cc.err"; then
  ok "the example compiles as printed"
else
  bad "the example compiles as printed: $(head -5 "$WORK/cc.err")"
fi

echo "reply from keyway listen" >"$WORK/reply"
"$KW" listen --ephemeral --once --alpn my-app/1 --bind 127.0.0.1:0 \
  --ticket-file "$WORK/t" <"$WORK/reply" >"$WORK/l.out" 2>"$WORK/l.err" &
lpid=$!
PIDS+=("$lpid")
wait_file "$WORK/t" 10 || bad "listener ticket"
set +e
timeout 30 "$WORK/hello" "$(cat "$WORK/t")" >"$WORK/h.out" 2>"$WORK/h.err"
hrc=$?
timeout 10 tail --pid="$lpid" -f /dev/null
kill "$lpid" 2>/dev/null # still there: the example never came
wait "$lpid"
lrc=$?
set -e
check "the example exits 0" test "$hrc" -eq 0
check "keyway listen --once exits 0" test "$lrc" -eq 0
check "the example's line arrived at the listener" \
  grep -qx "hello from the library" "$WORK/l.out"
check "the listener's reply arrived at the example" \
  grep -qx "reply from keyway listen" "$WORK/h.out"
check "no 'connection lost' on the listener" \
  bash -c "! grep -q 'connection lost' '$WORK/l.err'"
[ "$FAILED" -eq 0 ] || { cat "$WORK/l.err" "$WORK/h.err" "$WORK/cc.err" 2>/dev/null; }
finish
