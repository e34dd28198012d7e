#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT-lab benchmark: throughput per 100 ms around each path switch of one
# long keyway transfer (root; figures printed, never pass/fail).
#
#   bench/natlab_switch.sh BUILD_DIR
#
# Topology (tests/natlab/lib.sh): hosts a (198.18.1.10) and b (198.18.2.10)
# behind two EIM NAT routers whose WAN links carry KW_SWITCH_DELAY_MS
# (default 20) ms each way, a keyway-relay on the public segment
# (198.18.0.10, --rate 0). `keyway listen --once` on a sends KW_SWITCH_MIB
# (default 4096) MiB of zeros to `keyway connect` on b; b's stdout goes to
# a meter that counts bytes per 100 ms (wall clock, read by the script as
# $EPOCHREALTIME), its --json stderr to a stamper. The schedule, in seconds
# after the dial (KW_SWITCH_AT="8 18 28 38"):
#   0   relay -> direct: the connection starts on the relay and goes direct;
#   8   direct -> relay: a's router drops UDP to and from b's router;
#   18  relay -> direct: the drop is lifted;
#   28  NAT rebinding: a's router maps UDP to other ports (a MASQUERADE
#       rule with --to-ports 40000-40999) and forgets its mappings
#       (conntrack -F), so a's packets arrive from a new address;
#   38  the end: the receiver is stopped.
# For each injected change and each path event, the MB/s of every 100 ms
# from 1 s before to 3 s after, the mean MB/s of the 2 s before and of
# the 2 s from 1 s after, and how long until a 500 ms window reached half
# the rate of before (the outage a switch costs). Every wait is bounded.
# KW_SWITCH_KEEP=DIR keeps the logs (KW_SWITCH_VERBOSE=1: keyway with -v).
set -uo pipefail
build=$(cd "${1:?usage: bench/natlab_switch.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/natlab/lib.sh"
KW=$build/keyway
RELAY=$build/keyway-relay
LAB_DELAYLINK=$build/tests/kw_delaylink
MIB=${KW_SWITCH_MIB:-4096}
DELAY=${KW_SWITCH_DELAY_MS:-20}
read -r -a AT <<<"${KW_SWITCH_AT:-8 18 28 38}"
if ! lab_have_root; then
  echo "bench/natlab_switch.sh: needs root and ip netns: skipped"
  exit 0
fi
command -v conntrack >/dev/null || { echo "bench/natlab_switch.sh: needs conntrack: skipped"; exit 0; }
for f in "$KW" "$RELAY" "$LAB_DELAYLINK"; do
  [ -x "$f" ] || { echo "bench/natlab_switch.sh: $f not built" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/kw-bench-switch.XXXXXX")
# shellcheck disable=SC2034 # read by lib.sh
LAB_LOGDIR=$work

lab_init
trap 'lab_cleanup; [ -n "${KW_SWITCH_KEEP:-}" ] && cp -r "$work" "$KW_SWITCH_KEEP"; rm -rf "$work"' EXIT
lab_relay_cert "$work" 198.18.0.10
lab_public_host relay 198.18.0.10
lab_router_delay ra 198.18.0.1 1 eim "$DELAY" 0 11 || exit 1
lab_lan_host a ra 1 10
lab_router_delay rb 198.18.0.2 2 eim "$DELAY" 0 22 || exit 1
lab_lan_host b rb 2 10
lab_bg relay "$work/relay.log" "$RELAY" --listen 198.18.0.10:8443 \
  --stun-listen 198.18.0.10:3478 --tls-cert "$work/cert.pem" \
  --tls-key "$work/key.pem" --rate 0 -q >/dev/null
lab_wait_tcp relay 198.18.0.10 8443 || exit 1

common=(--ephemeral --json --relay https://198.18.0.10:8443 --relay-ca "$work/cert.pem")
[ -n "${KW_SWITCH_VERBOSE:-}" ] && common+=(-v)

# the meter: bytes per 100 ms on stdin, "T BYTES" lines (T: epoch s)
cat >"$work/meter.py" <<'PY'
import sys, time, os
out = open(sys.argv[1], "w")
fd = sys.stdin.fileno()
tick = time.time()
n = 0
while True:
    b = os.read(fd, 1 << 20)
    now = time.time()
    while now - tick >= 0.1:
        tick += 0.1
        out.write("%.1f %d\n" % (tick, n))
        n = 0
    if not b:
        break
    n += len(b)
out.write("%.1f %d\n" % (tick + 0.1, n))
PY
# the stamper: each stderr line with the time it arrived
cat >"$work/stamp.py" <<'PY'
import sys, time
out = open(sys.argv[1], "w", buffering=1)
for line in sys.stdin:
    out.write("%.3f %s" % (time.time(), line))
PY
now() { echo "${EPOCHREALTIME:0:-3}"; } # bash 5: epoch seconds, no process

echo "== keyway NAT-lab path switches ($(uname -r), $(nproc) CPUs, load $(cut -d" " -f1-3 /proc/loadavg))"
echo "   EIM/EIM, ${DELAY} ms per WAN link direction, no loss; events at ${AT[*]} s"
rm -f "$work/t"
head -c "${MIB}M" /dev/zero | ip netns exec "$(lab_ns a)" timeout 120 "$KW" \
  listen "${common[@]}" --once --ticket-file "$work/t" >/dev/null 2>"$work/l.err" &
LAB_PIDS+=($!)
lab_wait_file "$work/t" 15 || { echo "   no ticket"; exit 0; }
ticket=$(cat "$work/t")
t0=$(now)
echo "$t0 dial" >"$work/events"
(lab_exec b timeout 120 "$KW" connect "${common[@]}" "$ticket" </dev/null \
  2> >(python3 -u "$work/stamp.py" "$work/c.err") |
  python3 -u "$work/meter.py" "$work/meter") &
cpid=$!
LAB_PIDS+=("$cpid")

at() { # at SECONDS: sleep until t0 + SECONDS (false when the receiver ended)
  local until
  # printf, not print: awk prints big numbers in %.6g (1.76e+09)
  until=$(awk -v a="$t0" -v s="$1" 'BEGIN { printf "%.3f\n", a + s }')
  while awk -v u="$until" -v n="$(now)" 'BEGIN { exit !(n < u) }'; do
    kill -0 "$cpid" 2>/dev/null || return 1
    sleep 0.05
  done
}
mark() { echo "$(now) $1" >>"$work/events"; }
block=(FORWARD -p udp -d 198.18.0.2 -j DROP)
block_in=(FORWARD -p udp -s 198.18.0.2 -j DROP)
if at "${AT[0]}"; then
  lab_exec ra iptables -I "${block[@]}"
  lab_exec ra iptables -I "${block_in[@]}"
  mark "block-direct"
fi
if at "${AT[1]}"; then
  lab_exec ra iptables -D "${block[@]}"
  lab_exec ra iptables -D "${block_in[@]}"
  mark "unblock-direct"
fi
if at "${AT[2]}"; then
  lab_exec ra iptables -t nat -I POSTROUTING -o eth0 -p udp -j MASQUERADE --to-ports 40000-40999
  lab_exec ra conntrack -F >/dev/null 2>&1
  mark "nat-rebind"
fi
at "${AT[3]}" && mark "end"
kill "$cpid" 2>/dev/null
ip netns pids "$(lab_ns b)" 2>/dev/null | xargs -r kill 2>/dev/null # the receiver
timeout 10 tail --pid="$cpid" -f /dev/null
sleep 0.3

# path events of the receiver, stamped
grep '"event":"path"' "$work/c.err" 2>/dev/null | while read -r t line; do
  kind=$(grep -o '"kind":"[a-z]*"' <<<"$line" | cut -d'"' -f4)
  echo "$t path-$kind"
done >>"$work/events"
sort -n -o "$work/events" "$work/events"

python3 - "$work/meter" "$work/events" "$t0" <<'PY'
import sys
meter = []
for line in open(sys.argv[1]):
    t, n = line.split()
    meter.append((float(t), int(n)))
events = [l.split(None, 1) for l in open(sys.argv[2])]
t0 = float(sys.argv[3])
def rate(a, b):  # mean MB/s of the 100 ms slots ending in (a, b]
    v = [n for t, n in meter if a < t <= b]
    return sum(v) / 1e6 / (0.1 * len(v)) if v else 0.0
total = sum(n for _, n in meter)
span = (meter[-1][0] - t0) if meter else 0
print("   %d MiB received in %.1f s (%.1f MB/s overall)" % (total >> 20, span, total / 1e6 / span if span else 0))
for t, what in events:
    t = float(t)
    what = what.strip()
    if what == "dial":
        continue
    slots = [rate(t + k / 10 - 0.1, t + k / 10) for k in range(-9, 31)]
    before = rate(t - 2, t)
    # recovery: the first 500 ms window after the event whose mean is at
    # least half the rate of the 2 s before (none within the data: "-")
    back = "-"
    if before > 0:
        k = 0
        while t + k / 10 + 0.5 <= meter[-1][0]:
            if rate(t + k / 10, t + k / 10 + 0.5) >= before / 2:
                back = "%.1f s" % (k / 10)
                break
            k += 1
    print()
    print("-- %-16s at %5.1f s: %6.1f MB/s in the 2 s before, %6.1f MB/s from 1 s to 3 s after, back to half of it after %s"
          % (what, t - t0, before, rate(t + 1, t + 3), back))
    for row in range(4):
        part = slots[row * 10:(row + 1) * 10]
        print("   %+d s  %s" % (row - 1, " ".join("%5.1f" % x for x in part)))
print()
print("(rows: MB/s per 100 ms from 1 s before the event to 3 s after; a row is one second)")
PY
exit 0
