#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT lab: birthday probing (docs/protocol/disco.md, "Birthday probing").
# Two relays with STUN on the public segment, so each endpoint learns its
# NAT's mapping behaviour without a netcheck; host a behind router ra, b
# behind rb; a fresh listener on a and a fresh `keyway ping --until-direct`
# from b each trial (tests/natlab/lib.sh, lab_bday_trial):
#   EIM/EDM, EDM/EIM (MASQUERADE / --random-fully), 2 trials each
#                         -> direct; both sides learned their NAT's kind
#   EDM/EDM               -> stays on the relay (no punching can meet)
#   EIM/EDM --no-birthday -> stays on the relay (so this test fails if the
#                            probing does nothing)
# Needs root; exits 77 (skipped) without it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lab_test_begin "$1"
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_relay_cert "$work" 198.18.0.10 198.18.0.11

# run NAME MODE_A MODE_B EXPECT [DIALER_OPTS...]
run() {
  local name=$1 ma=$2 mb=$3 expect=$4
  shift 4
  if ! lab_bday_trial "$name" "$ma" "$mb" "$@"; then
    bad "$name: lab or listener did not come up"
    lab_cleanup
    return
  fi
  local got=relay
  [ "$BDAY_DIRECT" = 1 ] && got=direct
  if [ "$got" = "$expect" ]; then
    ok "$name: $got after $BDAY_MS ms (sockets $BDAY_SOCKS, spray Pings $BDAY_PINGS)"
  else
    bad "$name: wanted $expect, got $got (sockets $BDAY_SOCKS, spray Pings $BDAY_PINGS)"
    grep -o 'holepunch[.a-z_]* [^"]*\|stun.nat_kind[^"]*\|disco.nat_hint[^"]*' \
      "$work/$name-a.err" "$work/$name-b.err" | tail -12
  fi
  if [[ " $* " == *" --no-birthday "* ]]; then
    # the dialer (b) opened no extra socket and sprayed nothing
    if [ "$mb" = edm ] && [ "$BDAY_SOCKS" = 0 ]; then
      ok "$name: the dialer with --no-birthday opened no extra socket"
    elif [ "$mb" = eim ] && [ "$BDAY_PINGS" = 0 ]; then
      ok "$name: the dialer with --no-birthday sprayed no Ping"
    else
      bad "$name: --no-birthday, yet sockets $BDAY_SOCKS, spray Pings $BDAY_PINGS"
    fi
  fi
  if [ "$BDAY_NAT_A" = "$ma" ] && [ "$BDAY_NAT_B" = "$mb" ]; then
    ok "$name: NAT kinds learned (a $BDAY_NAT_A, b $BDAY_NAT_B)"
  else
    bad "$name: NAT kinds, wanted $ma/$mb, learned $BDAY_NAT_A/$BDAY_NAT_B"
  fi
}

BDAY_TIMEOUT=12
for i in 1 2; do
  run "eim-edm-$i" eim edm direct
  run "edm-eim-$i" edm eim direct
done
BDAY_TIMEOUT=4
run edm-edm edm edm relay
run eim-edm-off eim edm relay --no-birthday
rm -rf "$work"
lab_test_end
