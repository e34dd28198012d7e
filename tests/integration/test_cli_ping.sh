#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# keyway ping: one JSON pong event per reply under --json, a summary with
# min/avg/max RTT and loss (line and event), Ctrl-C ends it with exit 0
# after the summary, -i, --until-direct (stops at the first direct reply;
# exit 1 with the reason when only the relay answers). Loopback only.
. "$(dirname "$0")/cli_lib.sh"
start_relay
url="https://$RELAY_ADDR" # no STUN: the relay alone
R=(--ephemeral --relay "$url" --relay-ca "$WORK/ca.pem" --bind 127.0.0.1:0)
bg l "$KW" listen "${R[@]}" --ticket-file "$WORK/t"
wait_file "$WORK/t" 10 || bad "listener ticket"
T=$(cat "$WORK/t")

set +e
timeout 20 "$KW" ping "${R[@]}" --json -c 3 -i 0.2 "$T" >"$WORK/p.out" 2>"$WORK/p.err"
rc=$?
set -e
check "ping --json: exit 0" test "$rc" -eq 0
check "ping --json: one pong event per reply, summary event" python3 - "$WORK/p.err" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
pongs = [e for e in ev if e["event"] == "pong"]
assert [p["seq"] for p in pongs] == [1, 2, 3], pongs
assert all(p["path"] in ("direct", "relay", "mixed") and p["rtt_ms"] > 0 for p in pongs), pongs
s = [e for e in ev if e["event"] == "summary"]
assert len(s) == 1, ev
s = s[0]
assert s["sent"] == 3 and s["received"] == 3 and s["loss_pct"] == 0, s
assert 0 < s["min_ms"] <= s["avg_ms"] <= s["max_ms"], s
PY
check "ping: summary line with min/avg/max and loss" \
  grep -Eq '^3 sent, 3 received, rtt min/avg/max [0-9.]+/[0-9.]+/[0-9.]+ ms, 0% loss$' "$WORK/p.out"

# Ctrl-C: the summary, then exit 0
"$KW" ping "${R[@]}" -c 0 -i 0.2 "$T" >"$WORK/pi.out" 2>"$WORK/pi.err" &
ppid=$!
PIDS+=("$ppid")
for _ in $(seq 100); do [ "$(grep -c '^seq=' "$WORK/pi.out")" -ge 3 ] && break; sleep 0.05; done
kill -INT "$ppid"
set +e
for _ in $(seq 60); do kill -0 "$ppid" 2>/dev/null || break; sleep 0.05; done
wait "$ppid"
rc=$?
set -e
check "ping -c 0, Ctrl-C: exit 0 (got $rc)" test "$rc" -eq 0
check "ping -c 0, Ctrl-C: the summary" grep -Eq '^[0-9]+ sent, [0-9]+ received, rtt min/avg/max .* loss$' "$WORK/pi.out"
check "ping -i 0.2: several replies within a second or so" test "$(grep -c '^seq=' "$WORK/pi.out")" -ge 3

# --until-direct: on loopback the first reply is direct
set +e
timeout 20 "$KW" ping "${R[@]}" --until-direct "$T" >"$WORK/pu.out" 2>"$WORK/pu.err"
rc=$?
set -e
check "--until-direct: exit 0" test "$rc" -eq 0
check "--until-direct: stops at the first direct reply" \
  grep -q '^1 sent, 1 received' "$WORK/pu.out"
# ... and through the relay only it never gets one
set +e
timeout 20 "$KW" ping "${R[@]}" --relay-only --until-direct -c 2 -i 0.2 "$T" >"$WORK/pr.out" 2>"$WORK/pr.err"
rc=$?
set -e
check "--until-direct over --relay-only: exit 1" test "$rc" -eq 1
check "--until-direct over --relay-only: says no direct path" grep -q 'ping: no direct path after 2 pings' "$WORK/pr.err"
check "--until-direct over --relay-only: replies came by relay" grep -q '^seq=1 path=relay' "$WORK/pr.out"
[ "$FAILED" -eq 0 ] || tail -5 "$WORK"/p*.err "$WORK"/p*.out
finish
