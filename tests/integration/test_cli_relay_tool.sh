#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# keyway-relay as an operator meets it: no --listen prints the usage (exit
# 2) instead of serving on every interface; --version; the start-up log
# names the URL clients should use (?stun= when STUN is not on 3478), and
# that URL works as printed; keyway's --relay-ca may be repeated.
. "$(dirname "$0")/cli_lib.sh"
RELAY=$BUILD/keyway-relay
TT=$BUILD/tests/ticket_tool
set +e
timeout 5 "$RELAY" >"$WORK/nl.out" 2>"$WORK/nl.err"; rc=$?
set -e
check "keyway-relay without --listen: exit 2" test "$rc" -eq 2
check "keyway-relay without --listen: says so and prints the usage" \
  bash -c "grep -q -- '--listen ADDR:PORT is required' '$WORK/nl.err' && grep -q '^usage: keyway-relay' '$WORK/nl.err'"
check "keyway-relay --version" bash -c "'$RELAY' --version | grep -Eq '^keyway-relay [0-9]+\.[0-9]+\.[0-9]+$'"
cat >"$WORK/v.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <keyway.h>
int main(void) {
  printf("%s\n", kw_version_string());
  return strcmp(kw_version_string(), KW_VERSION) != 0;
}
C
SRC=$(cd "$(dirname "$0")/../.." && pwd)
san=()
grep -q '^KW_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null && san=(-fsanitize=address,undefined)
check "kw_version_string() is the header's KW_VERSION" bash -c \
  "cc ${san[*]} -I'$SRC/include' '$WORK/v.c' -L'$BUILD' -lkeyway -Wl,-rpath,'$BUILD' -o '$WORK/v' && '$WORK/v' >/dev/null"
check "keyway --version" bash -c "'$KW' --version | grep -Eq '^keyway [0-9]+\.[0-9]+\.[0-9]+$'"

start_relay() { # start_relay NAME: its client URL in $URL
  "$RELAY" --listen 127.0.0.1:0 --stun-listen 127.0.0.1:0 \
    --cert-out "$WORK/$1.pem" 2>"$WORK/$1.log" &
  PIDS+=($!)
  URL=
  for _ in $(seq 100); do
    URL=$(sed -n 's/.* relay.url url=\([^ ]*\).*/\1/p' "$WORK/$1.log" | head -n1)
    [ -n "$URL" ] && break
    sleep 0.05
  done
}
start_relay r1
url1=$URL
start_relay r2
check "the start-up log names the client URL with ?stun=" grep -Eq '^https://127\.0\.0\.1:[0-9]+/\?stun=[0-9]+$' <<<"$url1"

set +e
timeout 20 "$KW" netcheck --relay "$url1" --relay-ca "$WORK/r1.pem" --bind 127.0.0.1:0 --json \
  >"$WORK/nc.json" 2>"$WORK/nc.err"
set -e
check "the printed URL works as --relay (STUN and relay answer)" python3 - "$WORK/nc.json" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert r["udp"] is True and r["relays"][0]["latency_ms"] is not None, r
PY

# --relay-ca twice: the second relay's certificate, then the first's
"$KW" listen --ephemeral --bind 127.0.0.1:0 --relay "$url1" \
  --relay-ca "$WORK/r2.pem" --relay-ca "$WORK/r1.pem" --ticket-type relay \
  --ticket-file "$WORK/t" </dev/null >/dev/null 2>"$WORK/l.err" &
PIDS+=($!)
wait_file "$WORK/t" 10 || bad "listener ticket"
check "--relay-ca repeated: the relay is trusted (the ticket names it)" \
  test "$("$TT" relay "$(cat "$WORK/t")")" = "$url1"
finish
