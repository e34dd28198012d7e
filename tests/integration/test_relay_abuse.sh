#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# keyway-relay under attack, on loopback: each check performs an attack and
# checks the relay's defence (docs/protocol/relay.md, "Abuse bounds").
#  - lookup store take-over: a stranger floods PUTs of fresh ids, dated
#    ahead, long-lived; the connected endpoint's record stays, rates apply;
#  - Slowloris: trickling TLS connections hold no client slot and are closed
#    at the absolute deadline; unauthenticated connections have their own cap;
#  - fairness: a flooder and a legitimate sender toward one slow reader; a
#    flood toward unknown ids gets few PEER_GONE answers;
#  - auth replay: an answer made on another TLS session (v2 or v1 style) is
#    refused; version 1 logins are refused unless --allow-v1-auth.
# Only 127.0.0.1 is used.
set -euo pipefail
BUILD=${1:?usage: test_relay_abuse.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
RELAY="$BUILD/keyway-relay"
TC="$BUILD/tests/relay_testc"
[ -x "$TC" ] || TC=$(find "$BUILD" -name relay_testc -type f -perm -u+x | head -n1)
[ -x "$RELAY" ] || { echo "no keyway-relay in $BUILD"; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed"; exit 1; }

RELAY_STUN=off
. "$HERE/relay_lib.sh"

tc() { timeout 60 "$TC" "$@"; }
loris() { timeout 60 python3 "$HERE/slowloris.py" "$@"; }

check "help states the new bounds" bash -c "
  h=\$('$RELAY' --help)
  for w in '--max-pending N' 'default 1000' '--lookup-rate N' '--allow-v1-auth' '30 s ahead' '100 MiB/s'; do
    grep -q -- \"\$w\" <<<\"\$h\" || { echo \"missing: \$w\"; exit 1; }
  done"

# ---- Slowloris (runs in the background while the rest goes on) ----------
# 30 TLS connections trickling one byte every 2 s against --max-clients 20:
# they hold no client slot, and the absolute 10 s deadline closes them.
start_relay slow --max-clients 20
loris "$ADDR_slow" "$CA_slow" 30 2 16 >"$TMP/loris.out" 2>&1 &
LORIS=$!
# one connection completing a GET /ping every 3 s never authenticates:
# closed 30 s after accept all the same
loris pings "$ADDR_slow" "$CA_slow" 3 40 >"$TMP/pings.out" 2>&1 &
PINGS=$!
for i in $(seq 1 100); do grep -q '^opened' "$TMP/loris.out" 2>/dev/null && break; sleep 0.05; done
check "slowloris: all 30 trickling connections were accepted ($(head -n1 "$TMP/loris.out"))" \
  grep -qx 'opened 30' "$TMP/loris.out"
check "slowloris: a legitimate client authenticates while they trickle" tc auth "$ADDR_slow" "$CA_slow" 7

# ---- auth replay (protocol version 2) ---------------------------------
start_relay main
check "replay: a v2 answer made on another TLS session is refused" tc replay-v2 "$ADDR_main" "$CA_main"
check "replay: a v1-style answer replayed on a v2 session is refused" tc replay-v1 "$ADDR_main" "$CA_main"
check "metrics: bad_signature >= 2" metric_ge main 'keyway_relay_auth_failures_total{reason="bad_signature"}' 2
check "a version 1 upgrade is refused by default (426)" tc v1refused "$ADDR_main" "$CA_main"
check "metrics: v1_refused >= 1" metric_ge main 'keyway_relay_auth_failures_total{reason="v1_refused"}' 1
start_relay v1 --allow-v1-auth
check "--allow-v1-auth: a version 1 client still logs in" tc auth-v1 "$ADDR_v1" "$CA_v1" 3
check "--allow-v1-auth: version 2 clients too" tc auth "$ADDR_v1" "$CA_v1" 4

# ---- fairness ---------------------------------------------------------
check "fairness: a flooder toward a slow reader does not crowd out a legitimate sender" \
  tc fair "$ADDR_main" "$CA_main"
check "metrics: the flooder's packets were dropped first (fair_share)" \
  metric_ge main 'keyway_relay_drops_total{reason="fair_share"}' 1
check "a flood toward 2000 unknown ids gets at most ~10 PEER_GONE per second" \
  tc unknownflood "$ADDR_main" "$CA_main"
check "metrics: unknown destinations counted" metric_ge main 'keyway_relay_drops_total{reason="unknown_dest"}' 2000
check "metrics: suppressed PEER_GONE counted" metric_ge main keyway_relay_peer_gone_suppressed_total 1900

# ---- lookup store take-over -----------------------------------------------
start_relay lk --max-records 5
check "lookup: a connected endpoint's record survives a stranger's flood; future-dated refused; 429 past the burst" \
  tc lookup-attack "$ADDR_lk" "$CA_lk"
check "metrics: rate-limited PUT counted" metric_ge lk 'keyway_relay_lookup_puts_total{result="rate_limited"}' 1
if out=$(tc lookup-flood "$ADDR_main" "$CA_main" 15 2>&1) &&
   stored=$(sed -n 's/.*stored=\([0-9]*\).*/\1/p' <<<"$out") &&
   limited=$(sed -n 's/.*limited=\([0-9]*\).*/\1/p' <<<"$out") &&
   [ "$stored" -le 110 ] && [ "$limited" -ge 40 ]; then
  ok "lookup: 150 PUTs of fresh ids from one address: $stored stored, $limited refused (429)"
else
  bad "lookup: per-address PUT limit"; echo "$out" | tail -n 5
fi

# ---- the Slowloris outcome ----------------------------------------------
wait "$LORIS" || true
sum=$(grep '^summary' "$TMP/loris.out" || echo none)
if [[ $sum =~ opened=30\ closed=30\ first=([0-9.]+)\ last=([0-9.]+) ]] &&
   awk -v a="${BASH_REMATCH[1]}" -v b="${BASH_REMATCH[2]}" 'BEGIN { exit !(a >= 9 && b <= 13) }'; then
  ok "slowloris: every trickling connection closed at the 10 s deadline ($sum)"
else
  bad "slowloris: deadline"; cat "$TMP/loris.out" | tail -n 5
fi
check "metrics: deadline closes counted" metric_ge slow 'keyway_relay_protocol_errors_total{reason="deadline"}' 30

wait "$PINGS" || true
if [[ $(cat "$TMP/pings.out") =~ closed\ after\ ([0-9.]+) ]] &&
   awk -v a="${BASH_REMATCH[1]}" 'BEGIN { exit !(a >= 29 && a <= 34) }'; then
  ok "an unauthenticated keep-alive connection is closed 30 s after accept ($(cat "$TMP/pings.out"))"
else
  bad "unauthenticated connection lifetime"; cat "$TMP/pings.out"
fi

# --max-pending caps connections that are not authenticated yet
start_relay pend --max-pending 10
loris "$ADDR_pend" "$CA_pend" 15 1 2 >"$TMP/pend.out" 2>&1 || true
check "--max-pending 10: only 10 of 15 trickling connections are kept ($(head -n1 "$TMP/pend.out"))" \
  grep -qx 'opened 10' "$TMP/pend.out"
check "metrics: max_pending rejections counted" \
  metric_ge pend 'keyway_relay_protocol_errors_total{reason="max_pending"}' 5

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
