#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT lab: keyway's PCP client (RFC 6887) against a PCP server of the
# tests' own (tests/natlab/pcp_server.py, written from the RFC apart from
# keyway's codec) on a router's LAN address, port 5351:
#   router rp 198.18.0.1 (EDM NAT), LAN 198.18.1.0/24; host h 198.18.1.10
# No UPnP IGD, no NAT-PMP there (the server answers NAT-PMP with "unsupported
# version"). Checks:
#   - a mapping granted: netcheck --json --portmap reports pcp answered,
#     SUCCESS and the external address; the request carried our address
#     IPv4-mapped, UDP, our port, lifetime 7200, a 12-byte nonce
#   - renewal at half the lifetime (the server grants 60 s): the same
#     nonce, the granted port suggested; the server's epoch gone back
#     ("rebooted") is noticed; delete on close (lifetime 0, same nonce)
#     answered SUCCESS
#   - error results NO_RESOURCES, NOT_AUTHORIZED: answered, no mapping
#   - an answer with another nonce is ignored, the right one taken
#   - UNSUPP_VERSION: no PCP
#   - no answer: exactly 3 requests about 3 s and 6 s apart, then "no
#     answer"; the other methods (UPnP, NAT-PMP) ran meanwhile, not after
#   - without --portmap nothing reaches the server and "pcp" is null
# Real gateways are in test_portmap.sh (miniupnpd, which speaks PCP).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/natlab/lib.sh
. "$here/lib.sh"
lab_test_begin "$1"
command -v python3 >/dev/null || { echo "natlab: python3 missing: skipped"; rm -rf "$work"; exit 77; }
command -v jq >/dev/null || { echo "natlab: jq missing: skipped"; rm -rf "$work"; exit 77; }

lab_init
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_router rp 198.18.0.1 1 edm
lab_lan_host h rp 1 10
mode=$work/mode
slog=$work/pcp.log
echo "grant 7200" >"$mode"
: >"$slog"
lab_bg rp "$work/pcp-server.err" python3 "$here/pcp_server.py" 198.18.1.1 198.18.0.1 "$mode" "$slog" >/dev/null

lab_wait_grep "$work/pcp-server.err" '^ready' 10 || bad "the PCP test server did not start: $(cat "$work/pcp-server.err")"

# maps: the server's MAP log lines (op 1), as compact JSON
maps() { jq -c 'select(.op == 1)' "$slog"; }
nmaps() { maps | wc -l; }

# netcheck NAME [OPTS...]: keyway netcheck --json on h, into $work/nc-NAME.json
netcheck() {
  local name=$1
  shift
  lab_exec h timeout 30 "$KW" netcheck --ephemeral --json "$@" \
    >"$work/nc-$name.json" 2>"$work/nc-$name.err"
}

# ---- without --portmap: nothing asked ------------------------------------
netcheck off
if [ "$(jq -c .pcp "$work/nc-off.json")" = null ] &&
  [ "$(jq -c .probed.pcp "$work/nc-off.json")" = false ] && [ ! -s "$slog" ]; then
  ok "without --portmap: pcp null, not probed, nothing sent"
else
  bad "without --portmap: $(cat "$work/nc-off.json"); server saw: $(cat "$slog")"
fi

# ---- a mapping granted ---------------------------------------------------
netcheck grant --portmap --bind 0.0.0.0:41641
pcp=$(jq -c .pcp "$work/nc-grant.json")
if [ "$(jq -r .answered <<<"$pcp")" = true ] && [ "$(jq -r .result <<<"$pcp")" = SUCCESS ] &&
  [ "$(jq -r .external <<<"$pcp")" = 198.18.0.1:41641 ] &&
  [ "$(jq -c .portmap "$work/nc-grant.json")" = '{"upnp":false,"natpmp":false,"pcp":true}' ] &&
  [ "$(jq -c .probed.pcp "$work/nc-grant.json")" = true ]; then
  ok "granted: netcheck reports $pcp"
else
  bad "granted: $(cat "$work/nc-grant.json") $(tail -3 "$work/nc-grant.err")"
fi
first=$(maps | head -1)
if [ "$(jq -r '[.client, .proto, .internal_port, .suggested_port, .lifetime, .len, (.nonce | length), .suggested_ip] | join(" ")' <<<"$first")" = \
  "198.18.1.10 17 41641 41641 7200 60 24 0.0.0.0" ]; then
  ok "the MAP request: our address IPv4-mapped, UDP, port 41641 suggested, 7200 s, 12-byte nonce"
else
  bad "the MAP request: $first"
fi
if lab_wait_grep "$slog" '"lifetime": 0' 3; then
  del=$(maps | jq -c 'select(.lifetime == 0)' | head -1)
  if [ "$(jq -r .nonce <<<"$del")" = "$(jq -r .nonce <<<"$first")" ]; then
    ok "netcheck's mapping deleted on exit (lifetime 0, same nonce)"
  else
    bad "delete with another nonce: $del vs $first"
  fi
else
  bad "no delete after netcheck exited: $(maps)"
fi

# the text report says the same
lab_exec h timeout 30 "$KW" netcheck --ephemeral --portmap --bind 0.0.0.0:41644 \
  >"$work/nc-text.out" 2>"$work/nc-text.err"
if grep -qx 'port mapping:        UPnP no, NAT-PMP no, PCP yes (mapped 198.18.0.1:41644)' "$work/nc-text.out"; then
  ok "text report: $(grep 'port mapping' "$work/nc-text.out")"
else
  bad "text report: $(cat "$work/nc-text.out")"
fi

# ---- renewal at half the lifetime, delete on close -----------------------
echo "grant 60" >"$mode"
: >"$slog"
ip netns exec "$(lab_ns h)" "$KW" listen --ephemeral --json --portmap -vv \
  --bind 0.0.0.0:41642 </dev/null >/dev/null 2>"$work/renew.err" &
lpid=$!
LAB_PIDS+=("$lpid")
if lab_wait_grep "$work/renew.err" 'portmap.mapped proto=pcp external=198.18.0.1:41642 lease_s=60' 10; then
  ok "listener mapped by PCP: $(grep -o 'portmap.mapped[^"]*' "$work/renew.err")"
else
  bad "listener got no PCP mapping: $(grep -o '\(portmap\|pcp\)[.a-z-]* [^"]*' "$work/renew.err" | tail -3)"
fi
t0=$(jq -r .t <<<"$(maps | head -1)")
echo "grant 60 reboot" >"$mode"
for ((i = 0; i < 450; i++)); do
  [ "$(nmaps)" -ge 2 ] && break
  sleep 0.1
done
second=$(maps | sed -n 2p)
if [ -n "$second" ]; then
  dt=$(jq -r "(.t - $t0) * 1000 | round / 1000" <<<"$second")
  if [ "$(jq -r .nonce <<<"$second")" = "$(jq -r .nonce <<<"$(maps | head -1)")" ] &&
    [ "$(jq -r .suggested_port <<<"$second")" = 41642 ] &&
    [ "$(jq -r .suggested_ip <<<"$second")" = 198.18.0.1 ] &&
    awk -v d="$dt" 'BEGIN { exit !(d >= 28 && d <= 34) }'; then
    ok "renewed after ${dt} s (60 s lease), same nonce, granted port and address suggested"
  else
    bad "renewal: after ${dt} s: $second"
  fi
else
  bad "no renewal within 45 s: $(maps)"
fi
lab_wait_grep "$work/renew.err" 'portmap.renewed proto=pcp' 3 ||
  bad "no portmap.renewed event: $(grep -o 'pcp[.a-z-]* [^"]*' "$work/renew.err" | tail -3)"
if grep -q 'pcp.epoch-reset' "$work/renew.err"; then
  ok "the renewal's answer with the epoch gone back: pcp.epoch-reset logged"
else
  bad "epoch reset not noticed: $(grep -o 'pcp.answer[^"]*' "$work/renew.err")"
fi
kill -TERM "$lpid"
timeout 10 tail --pid="$lpid" -f /dev/null
if grep -q 'portmap.released proto=pcp port=41642 result=SUCCESS' "$work/renew.err" &&
  [ "$(maps | tail -1 | jq -r '[.lifetime, .nonce] | join(" ")')" = "0 $(maps | head -1 | jq -r .nonce)" ]; then
  ok "delete on close (lifetime 0, same nonce): $(grep -o 'portmap.released[^"]*' "$work/renew.err")"
else
  bad "delete on close: $(grep -o 'portmap.released[^"]*' "$work/renew.err"); $(maps | tail -1)"
fi

# ---- error results -------------------------------------------------------
for e in "8 NO_RESOURCES" "2 NOT_AUTHORIZED"; do
  code=${e% *}
  name=${e#* }
  echo "error $code" >"$mode"
  : >"$slog"
  netcheck "err$code" --portmap -v
  pcp=$(jq -c .pcp "$work/nc-err$code.json")
  if [ "$(jq -r .answered <<<"$pcp")" = true ] && [ "$(jq -r .result <<<"$pcp")" = "$name" ] &&
    [ "$(jq -r .external <<<"$pcp")" = null ] &&
    grep -q "pcp.failed reason=$name answered=1 result=$code" "$work/nc-err$code.err" &&
    ! grep -q 'portmap.mapped' "$work/nc-err$code.err"; then
    ok "$name: answered, no mapping ($pcp)"
    if [ "$code" = 8 ]; then
      lab_exec h timeout 30 "$KW" netcheck --ephemeral --portmap >"$work/nc-text8.out" 2>/dev/null
      if grep -qx 'port mapping:        UPnP no, NAT-PMP no, PCP yes (NO_RESOURCES, no mapping)' "$work/nc-text8.out"; then
        ok "text report: $(grep 'port mapping' "$work/nc-text8.out")"
      else
        bad "text report: $(cat "$work/nc-text8.out")"
      fi
    fi
  else
    bad "$name: $(cat "$work/nc-err$code.json") $(grep -o 'pcp[.a-z-]* [^"]*' "$work/nc-err$code.err")"
  fi
done

# ---- another nonce first: ignored ----------------------------------------
echo "badnonce 7200" >"$mode"
: >"$slog"
netcheck nonce --portmap -v --bind 0.0.0.0:41643
if [ "$(jq -r .pcp.external "$work/nc-nonce.json")" = 198.18.0.1:41643 ] &&
  grep -q 'pcp.ignored reason=nonce' "$work/nc-nonce.err"; then
  ok "an answer with another nonce ignored, the right one taken"
else
  bad "nonce: $(cat "$work/nc-nonce.json") $(grep -o 'pcp[.a-z-]* [^"]*' "$work/nc-nonce.err")"
fi

# ---- UNSUPP_VERSION ------------------------------------------------------
echo "unsupp" >"$mode"
: >"$slog"
netcheck unsupp --portmap -v
if [ "$(jq -r .pcp.answered "$work/nc-unsupp.json")" = true ] &&
  [ "$(jq -r .pcp.result "$work/nc-unsupp.json")" = UNSUPP_VERSION ] &&
  [ "$(jq -r .pcp.external "$work/nc-unsupp.json")" = null ]; then
  ok "UNSUPP_VERSION: no mapping ($(jq -c .pcp "$work/nc-unsupp.json"))"
else
  bad "UNSUPP_VERSION: $(cat "$work/nc-unsupp.json")"
fi

# ---- no answer: bounded retries, the other methods still run -------------
echo "silent" >"$mode"
: >"$slog"
s0=$(date +%s%N)
netcheck silent --portmap -v
s1=$(date +%s%N)
if [ "$(jq -r .pcp.answered "$work/nc-silent.json")" = false ] &&
  [ "$(jq -r .pcp.result "$work/nc-silent.json")" = null ]; then
  ok "no answer: netcheck reports pcp not answered after $(( (s1 - s0) / 1000000 )) ms"
  lab_exec h timeout 30 "$KW" netcheck --ephemeral --portmap >"$work/nc-text0.out" 2>/dev/null
  grep -qx 'port mapping:        UPnP no, NAT-PMP no, PCP no (no answer)' "$work/nc-text0.out" ||
    bad "text report, no answer: $(cat "$work/nc-text0.out")"
else
  bad "no answer: $(cat "$work/nc-silent.json")"
fi
: >"$slog"
ip netns exec "$(lab_ns h)" "$KW" listen --ephemeral --json --portmap -v \
  </dev/null >/dev/null 2>"$work/silent.err" &
lpid=$!
LAB_PIDS+=("$lpid")
if lab_wait_grep "$work/silent.err" 'pcp.failed reason=no-answer' 30; then
  times=$(maps | jq -r .t | tr '\n' ' ')
  read -r a b c extra <<<"$times"
  if [ "$(nmaps)" = 3 ] && [ -z "${extra:-}" ] &&
    awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN { d1 = b - a; d2 = c - b;
      exit !(d1 >= 2.6 && d1 <= 3.5 && d2 >= 1.75 * d1 && d2 <= 2.25 * d1) }'; then
    ok "no answer: 3 requests at $times s (RFC 6887 8.1.1: 3 s, then twice that, each +-10%), then given up"
  else
    bad "no answer: requests at $times"
  fi
  # the worker's UPnP/NAT-PMP round ended long before PCP gave up
  wl=$(grep -n 'portmap.failed reason=no-upnp-igd-no-natpmp' "$work/silent.err" | head -1 | cut -d: -f1)
  pl=$(grep -n 'pcp.failed reason=no-answer' "$work/silent.err" | head -1 | cut -d: -f1)
  if [ -n "$wl" ] && [ "$wl" -lt "$pl" ]; then
    ok "no answer: UPnP and NAT-PMP were tried meanwhile (line $wl), PCP gave up at line $pl"
  else
    bad "no answer: the other methods: worker line '${wl:-}', pcp line $pl"
  fi
else
  bad "no answer: PCP never gave up: $(grep -o 'pcp[.a-z-]* [^"]*' "$work/silent.err" | tail -3)"
fi
kill -TERM "$lpid"
timeout 10 tail --pid="$lpid" -f /dev/null

lab_test_end
