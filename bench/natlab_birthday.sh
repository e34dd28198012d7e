#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT-lab birthday-probing benchmark (root; figures printed, never
# pass/fail).
#
#   bench/natlab_birthday.sh BUILD_DIR [TRIALS]
#
# The lab of tests/natlab/test_birthday.sh (lib.sh, lab_bday_trial): two
# relays with STUN on the public segment, host a behind router ra, b
# behind rb; EIM = MASQUERADE, EDM = MASQUERADE --random-fully. For each
# case TRIALS (default 10) trials, each a fresh lab with a fresh
# `keyway listen` on a and a fresh `keyway ping --until-direct` from b
# (the dialer's process start to its exit at the first direct reply:
# relay connections, the NAT-kind check, the handshake over the relay
# and the birthday attempt all count). Cases: eim/edm, edm/eim (expected
# direct), edm/edm (expected relay; given 6 s). Prints per case: direct
# trials, median and worst ms from dial to direct (direct trials only),
# the EDM side's extra sockets and the EIM side's spray Pings per attempt
# (median over trials; the first attempt's). Skips (exit 0) without root.
set -uo pipefail
build=$(cd "${1:?usage: bench/natlab_birthday.sh BUILD_DIR [TRIALS]}" && pwd)
trials=${2:-10}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/natlab/lib.sh"
KW=$build/keyway
RELAY=$build/keyway-relay
if ! lab_have_root || ! lab_can_netns >/dev/null; then
  echo "bench/natlab_birthday.sh: needs root and ip netns: skipped"
  exit 0
fi
for f in "$KW" "$RELAY"; do
  [ -x "$f" ] || { echo "bench/natlab_birthday.sh: $f not built" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/kw-bench-bday.XXXXXX")
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_relay_cert "$work" 198.18.0.10 198.18.0.11

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else print a[int((NR + 1) / 2)] }'; }
worst() { sort -n | tail -1 | grep . || echo -; }

printf '%-8s %7s %10s %9s %8s %12s\n' case direct median_ms worst_ms sockets spray_pings
for c in eim/edm edm/eim edm/edm; do
  ma=${c%/*} mb=${c#*/}
  BDAY_TIMEOUT=15
  [ "$c" = edm/edm ] && BDAY_TIMEOUT=6
  : >"$work/ms" ; : >"$work/socks" ; : >"$work/pings"
  direct=0
  for ((i = 1; i <= trials; i++)); do
    if ! lab_bday_trial "$ma-$mb-$i" "$ma" "$mb"; then
      echo "  $c trial $i: the lab did not come up" >&2
      lab_cleanup
      continue
    fi
    if [ "$BDAY_DIRECT" = 1 ]; then
      direct=$((direct + 1))
      echo "$BDAY_MS" >>"$work/ms"
    fi
    echo "$BDAY_SOCKS" >>"$work/socks"
    echo "$BDAY_PINGS" >>"$work/pings"
  done
  printf '%-8s %7s %10s %9s %8s %12s\n' "$c" "$direct/$trials" \
    "$(median <"$work/ms")" "$(worst <"$work/ms")" \
    "$(median <"$work/socks")" "$(median <"$work/pings")"
done
