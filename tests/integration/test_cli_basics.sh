#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The keyway CLI's contract (docs/man/keyway.1): help, usage errors (exit
# 2), key files, malformed tickets, a wrong key, nothing listening.
. "$(dirname "$0")/cli_lib.sh"

help=$("$KW" --help)
for w in id listen connect send receive ping netcheck --json --ticket-file \
  --relay --relay-ca --ephemeral --no-relay --bind --key; do
  grep -q -- "$w" <<<"$help" || bad "--help mentions $w"
done
ok "--help lists every subcommand and option"

set +e
"$KW" frobnicate 2>"$WORK/e"; rc=$?
set -e
check "unknown command exits 2" test "$rc" -eq 2
set +e; "$KW" connect --ephemeral --bogus x 2>"$WORK/e"; rc=$?; set -e
check "unknown option exits 2" test "$rc" -eq 2
set +e; "$KW" connect --ephemeral kw1notaticket 2>"$WORK/e"; rc=$?; set -e
check "malformed ticket exits 2" test "$rc" -eq 2
check "malformed ticket names the reason" grep -q "malformed ticket: " "$WORK/e"
set +e; "$KW" receive --ephemeral --json kw1aaaa 2>"$WORK/e"; rc=$?; set -e
check "malformed ticket with --json: error event" grep -q '"event":"error"' "$WORK/e"
check "malformed ticket with --json exits 2" test "$rc" -eq 2

# key files: created 0600, the id stays the same, bad permissions refused
key=$WORK/k/secret.key
id1=$("$KW" id --key "$key")
id2=$("$KW" id --key "$key")
check "id is stable across runs" test "$id1" = "$id2"
check "id is 52 base32 characters" grep -Eq '^[a-z2-7]{52}$' <<<"$id1"
check "key file mode is 0600" test "$(stat -c %a "$key")" = 600
chmod 644 "$key"
set +e; "$KW" id --key "$key" 2>"$WORK/e"; rc=$?; set -e
check "key file readable by others: exit 1" test "$rc" -eq 1
check "key file permission message" grep -q "chmod 600" "$WORK/e"
echo garbage >"$WORK/badkey"; chmod 600 "$WORK/badkey"
set +e; "$KW" id --key "$WORK/badkey" 2>"$WORK/e"; rc=$?; set -e
check "malformed key file: exit 1" test "$rc" -eq 1
XDG_CONFIG_HOME=$WORK/xdg "$KW" id >/dev/null
check "default key under XDG_CONFIG_HOME" test -f "$WORK/xdg/keyway/secret.key"

# a listener, and a ticket carrying its addresses with another id
bg l "$KW" listen --ephemeral --bind 127.0.0.1:0 --ticket-file "$WORK/t"
lpid=$LASTPID
wait_file "$WORK/t" 10 || bad "listener wrote its ticket"
check "ticket file holds the printed ticket" grep -q "ticket: $(cat "$WORK/t")" "$WORK/l.err"
other=$("$KW" id --key "$WORK/other.key")
# forge: same addresses, other id (re-encode through a helper binary)
forged=$("$BUILD/tests/ticket_tool" reid "$(cat "$WORK/t")" "$other")
set +e; "$KW" connect --ephemeral --timeout 5 "$forged" </dev/null 2>"$WORK/e"; rc=$?; set -e
check "wrong key: exit 1" test "$rc" -eq 1
check "wrong key: message names both keys" grep -q "remote presented key [a-z2-7]\{52\}, expected $other" "$WORK/e"
kill "$lpid"

# nothing listening: exit 1 within the timeout
dead=$("$BUILD/tests/ticket_tool" port "$(cat "$WORK/t")" 9)
start=$(date +%s)
set +e; "$KW" connect --ephemeral --timeout 2 "$dead" </dev/null 2>"$WORK/e"; rc=$?; set -e
took=$(( $(date +%s) - start ))
check "nothing listening: exit 1" test "$rc" -eq 1
check "nothing listening: gives up (took ${took}s with --timeout 2)" test "$took" -le 8
check "nothing listening: says so" grep -q "no answer" "$WORK/e"
finish
