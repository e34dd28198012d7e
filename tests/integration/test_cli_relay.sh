#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The keyway CLI with a keyway-relay on loopback: netcheck's JSON report
# (the fields of docs/man/keyway.1), a ticket that names the home relay, receive
# by id + capability and connect by bare endpoint id (resolved at the
# relay's lookup store; receive by bare id alone is refused),
# an unknown id, and --no-relay. Only 127.0.0.1 is used.
. "$(dirname "$0")/cli_lib.sh"

start_relay
url=$RELAY_URL
R=(--relay "$url" --relay-ca "$WORK/ca.pem" --bind 127.0.0.1:0)

# netcheck
set +e
timeout 30 "$KW" netcheck --json "${R[@]}" >"$WORK/nc.json" 2>"$WORK/nc.err"
rc=$?
set -e
check "netcheck: exit 0" test "$rc" -eq 0
check "netcheck: one JSON object with the contract's fields" python3 - "$WORK/nc.json" "$url" <<'EOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
r = json.loads(lines[0])
assert r["udp"] is True, r
assert r["ipv4"].startswith("127.0.0.1:"), r
assert r["ipv6"] is None, r
assert r["mapping_varies_by_dest"] in (None, False, True), r
assert set(r["portmap"]) >= {"upnp", "natpmp", "pcp"}, r
assert all(isinstance(v, bool) for v in r["portmap"].values()), r
assert len(r["relays"]) == 1 and r["relays"][0]["url"] == sys.argv[2], r
assert r["relays"][0]["latency_ms"] is not None and r["relays"][0]["latency_ms"] >= 0, r
assert r["home_relay"] == sys.argv[2], r
EOF
set +e
timeout 30 "$KW" netcheck "${R[@]}" >"$WORK/nc.txt" 2>&1
rc=$?
set -e
check "netcheck (text): exit 0, UDP yes, home relay named" \
  bash -c "[ $rc -eq 0 ] && grep -q '^UDP: *yes' '$WORK/nc.txt' && grep -qF 'home relay:          $url' '$WORK/nc.txt'"

# a sender with a relay: its ticket names the relay; a receiver dials a
# ticket of nothing but the id and the share's capability, resolved at the
# relay; the bare id alone gets nothing (a share needs its ticket)
head -c 5M /dev/urandom >"$WORK/f.bin"
"$KW" send --ephemeral --json "${R[@]}" --ticket-file "$WORK/t" "$WORK/f.bin" 2>"$WORK/s.err" &
spid=$!
PIDS+=("$spid")
wait_file "$WORK/t" 15 || bad "sender ticket"
id=$("$BUILD/tests/ticket_tool" id "$(cat "$WORK/t")")
check "the ticket decodes to a 52-character id" grep -Eq '^[a-z2-7]{52}$' <<<"$id"
check "the ticket names the relay" bash -c "python3 - '$(cat "$WORK/t")' '$url' <<'EOF'
import base64, sys
t, url = sys.argv[1], sys.argv[2]
s = t[3:].upper()
p = base64.b32decode(s + '=' * (-len(s) % 8))
assert url.encode() in p, p
EOF"
idonly=$("$BUILD/tests/ticket_tool" idonly "$(cat "$WORK/t")")
set +e
timeout 60 "$KW" receive --ephemeral --json "${R[@]}" -o "$WORK/o1" "$idonly" 2>"$WORK/r1.err"
rc=$?
set -e
check "receive by id + capability through the lookup store: exit 0" test "$rc" -eq 0
check "receive by id + capability: file equal" cmp -s "$WORK/f.bin" "$WORK/o1/f.bin"
check "receive by id + capability: connected to that id" grep -q "\"event\":\"connected\",\"remote\":\"$id\"" "$WORK/r1.err"
set +e
timeout 60 "$KW" receive --ephemeral "${R[@]}" -o "$WORK/o1b" "$id" 2>"$WORK/r1b.err"
rc=$?
set -e
check "receive by bare id: exit 1, not valid for the share" \
  bash -c "[ $rc -eq 1 ] && grep -q 'this ticket is not valid for the share' '$WORK/r1b.err'"
check "receive by bare id: nothing received" test ! -e "$WORK/o1b/f.bin"
set +e
timeout 30 "$KW" ping --ephemeral -q -c 1 "${R[@]}" "$id" >"$WORK/p.out" 2>"$WORK/p.err"
rc=$?
set -e
check "ping by bare id: exit 0 with one answer" bash -c "[ $rc -eq 0 ] && grep -q '^seq=1 path=' '$WORK/p.out'"

# an id nobody published
other=$("$KW" id --ephemeral)
set +e
timeout 30 "$KW" receive --ephemeral "${R[@]}" --timeout 5 -o "$WORK/o2" "$other" 2>"$WORK/r2.err"
rc=$?
set -e
check "unknown id: exit 1" test "$rc" -eq 1
check "unknown id: says it is unknown at the relay" grep -q "^keyway: receive: ${other:0:10} is unknown at the relay" "$WORK/r2.err"

# --no-relay: the relay is ignored, so a bare id cannot be resolved
set +e
timeout 30 "$KW" receive --ephemeral "${R[@]}" --no-relay -o "$WORK/o3" "$id" 2>"$WORK/r3.err"
rc=$?
set -e
check "--no-relay with a bare id: exit 1, says a relay is needed" \
  bash -c "[ $rc -eq 1 ] && grep -q 'pass --relay' '$WORK/r3.err'"
finish
