#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT lab: `keyway netcheck` classifies the NAT a host sits behind, and
# agrees with coturn's RFC 5780 client (turnutils_natdiscovery -m against a
# turnserver with two public addresses) run from the same namespace.
# One topology holds every case:
#   198.18.0.10, .11       keyway-relay (TLS :8443, STUN :3478), one each
#   198.18.0.12 + .13      coturn turnserver (STUN :3478, alternate :3479)
#   EIM router .1          (MASQUERADE)               host 198.18.1.10
#   EDM router .2          (MASQUERADE --random-fully) host 198.18.2.10
#   UDP-blocked router .3  (forwarded UDP dropped)    host 198.18.3.10
#   public host 198.18.0.21 (no NAT)
# Expected: EIM -> udp, mapping does not vary, ipv4 = the router's WAN
# address; EDM -> udp, mapping varies; UDP blocked -> no udp, mapping
# unknown, relays reached over TCP; public -> ipv4 = its own address, no
# variation. natdiscovery's mapping verdict must agree for EIM, EDM and
# the public host.
# Needs root, turnserver and turnutils_natdiscovery; exits 77 without them.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lab_test_begin "$1"
for t in turnserver turnutils_natdiscovery; do
  command -v "$t" >/dev/null || { echo "natlab: $t missing (coturn): skipped"; rm -rf "$work"; exit 77; }
done

# jget FILE FIELD: one field of netcheck's JSON as text (null -> "null")
jget() { jq -r "$2 | if . == null then \"null\" else tostring end" "$1" 2>/dev/null; }

# natd_verdict FILE: nonat | eim | adm | apdm from natdiscovery -m, or
# unknown when it printed no verdict or contradicting ones (for no NAT it
# prints both "No NAT! (Endpoint Independent Mapping)" and the EIM line)
natd_verdict() {
  local f=$1 v=() noNat=0
  grep -q 'No NAT! (Endpoint Independent Mapping)' "$f" && noNat=1
  grep -q 'NAT with Endpoint Independent Mapping' "$f" && v+=(eim)
  grep -q 'NAT with Address Dependent Mapping' "$f" && v+=(adm)
  grep -q 'NAT with Address and Port Dependent Mapping' "$f" && v+=(apdm)
  if [ "${#v[@]}" -gt 1 ] || { [ "$noNat" = 1 ] && [ "${v[0]:-eim}" != eim ]; }; then
    echo unknown
  elif [ "$noNat" = 1 ]; then
    echo nonat
  else
    echo "${v[0]:-unknown}"
  fi
}

lab_init
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_public_host relay1 198.18.0.10
lab_public_host relay2 198.18.0.11
lab_public_host turn 198.18.0.12
lab_exec turn ip addr add 198.18.0.13/24 dev eth0
lab_router reim 198.18.0.1 1 eim
lab_lan_host heim reim 1 10
lab_router redm 198.18.0.2 2 edm
lab_lan_host hedm redm 2 10
lab_router rblk 198.18.0.3 3 udpblock
lab_lan_host hblk rblk 3 10
lab_public_host hpub 198.18.0.21

mkdir -p "$work/r1" "$work/r2"
lab_relay_cert "$work/r1" 198.18.0.10
lab_relay_cert "$work/r2" 198.18.0.11
cat "$work/r1/cert.pem" "$work/r2/cert.pem" >"$work/ca.pem"
for i in 1 2; do
  lab_bg "relay$i" "$work/relay$i.log" "$RELAY" --listen "198.18.0.1$((i - 1)):8443" \
    --stun-listen "198.18.0.1$((i - 1)):3478" --tls-cert "$work/r$i/cert.pem" \
    --tls-key "$work/r$i/key.pem" -q >/dev/null
done
lab_bg turn "$work/turn.log" turnserver -n --no-cli --no-tls --no-dtls --no-auth \
  --stun-only --listening-ip 198.18.0.12 --listening-ip 198.18.0.13 -p 3478 \
  --userdb "$work/turndb" --pidfile "$work/turn.pid" --log-file stdout \
  --simple-log >/dev/null
lab_wait_tcp relay1 198.18.0.10 8443 || bad "relay 1 listening"
lab_wait_tcp relay2 198.18.0.11 8443 || bad "relay 2 listening"
lab_wait_tcp turn 198.18.0.13 3479 || bad "turnserver listening on its alternate address"

# check_case NAME HOST LOCAL MODE WAN: netcheck and natdiscovery from HOST,
# whose own address is LOCAL
check_case() {
  local name=$1 host=$2 local=$3 mode=$4 wan=$5
  local j=$work/$name.json nd=$work/$name.natd rc
  timeout 20 ip netns exec "$(lab_ns "$host")" "$KW" netcheck --json --ephemeral \
    --relay https://198.18.0.10:8443 --relay https://198.18.0.11:8443 \
    --relay-ca "$work/ca.pem" >"$j" 2>"$work/$name.err"
  rc=$?
  echo "# $name: keyway netcheck: $(cat "$j")"
  if [ "$rc" -ne 0 ] || ! jq -e . "$j" >/dev/null 2>&1; then
    bad "$name: netcheck exit $rc, JSON unreadable"
    tail -5 "$work/$name.err"
  fi
  local udp varies ipv4 home lat
  udp=$(jget "$j" .udp)
  varies=$(jget "$j" .mapping_varies_by_dest)
  ipv4=$(jget "$j" .ipv4)
  home=$(jget "$j" .home_relay)
  lat=$(jq -r '[.relays[] | select(.latency_ms != null)] | length' "$j" 2>/dev/null)
  case $mode in
    eim)
      [ "$udp" = true ] && ok "$name: udp true" || bad "$name: udp $udp, wanted true"
      [ "$varies" = false ] && ok "$name: mapping does not vary" ||
        bad "$name: mapping_varies_by_dest $varies, wanted false"
      [[ $ipv4 == "$wan":* ]] && ok "$name: ipv4 $ipv4 is the router's WAN address" ||
        bad "$name: ipv4 $ipv4, wanted $wan:PORT"
      ;;
    edm)
      [ "$udp" = true ] && ok "$name: udp true" || bad "$name: udp $udp, wanted true"
      [ "$varies" = true ] && ok "$name: mapping varies by destination" ||
        bad "$name: mapping_varies_by_dest $varies, wanted true"
      [[ $ipv4 == "$wan":* ]] && ok "$name: ipv4 $ipv4 is the router's WAN address" ||
        bad "$name: ipv4 $ipv4, wanted $wan:PORT"
      ;;
    udpblock)
      [ "$udp" = false ] && ok "$name: udp false" || bad "$name: udp $udp, wanted false"
      [ "$varies" = null ] && ok "$name: mapping unknown" ||
        bad "$name: mapping_varies_by_dest $varies, wanted null"
      [ "$ipv4" = null ] && ok "$name: no reflexive address" || bad "$name: ipv4 $ipv4, wanted null"
      ;;
    public)
      [ "$udp" = true ] && ok "$name: udp true" || bad "$name: udp $udp, wanted true"
      [ "$varies" = false ] && ok "$name: mapping does not vary" ||
        bad "$name: mapping_varies_by_dest $varies, wanted false"
      [[ $ipv4 == "$wan":* ]] && ok "$name: ipv4 $ipv4 is the host's own address" ||
        bad "$name: ipv4 $ipv4, wanted $wan:PORT"
      ;;
  esac
  [ "$lat" = 2 ] && ok "$name: both relays answered over TCP (latency present)" ||
    bad "$name: relays with a latency: $lat of 2"
  [[ $home == https://198.18.0.1[01]:8443* ]] && ok "$name: home relay $home" ||
    bad "$name: home_relay $home"

  # coturn's RFC 5780 mapping test from the same namespace, bound to the
  # host's address (so it can tell "no NAT" from an endpoint-independent one)
  timeout 15 ip netns exec "$(lab_ns "$host")" turnutils_natdiscovery -m -L "$local" \
    198.18.0.12 >"$nd" 2>&1
  rc=$?
  local v
  v=$(natd_verdict "$nd")
  echo "# $name: natdiscovery -m (exit $rc): $(grep -E 'Mapping|NAT' "$nd" | tr '\n' ' ')"
  if [ "$mode" = udpblock ]; then
    # no UDP: nothing to compare; natdiscovery must not claim a verdict
    [ "$v" = unknown ] && ok "$name: natdiscovery got no mapping verdict either" ||
      bad "$name: natdiscovery said $v with UDP blocked"
    return
  fi
  if [ "$v" = unknown ]; then
    bad "$name: natdiscovery's output could not be classified:"
    sed 's/^/#   /' "$nd"
    return
  fi
  if [ "$mode" = public ]; then
    [ "$v" = nonat ] && ok "$name: natdiscovery sees no NAT" ||
      bad "$name: natdiscovery says $v, wanted no NAT"
  fi
  # both saw the same public IP (ports differ: different sockets)
  local nip
  nip=$(grep -o 'UDP reflexive addr: [0-9.]*' "$nd" | head -1 | awk '{print $4}')
  [ "$nip" = "${ipv4%:*}" ] && ok "$name: natdiscovery's reflexive IP $nip matches" ||
    bad "$name: natdiscovery's reflexive IP '$nip', keyway's $ipv4"
  local nvaries=false
  case $v in adm | apdm) nvaries=true ;; esac
  if [ "$nvaries" = "$varies" ]; then
    ok "$name: natdiscovery ($v) agrees: mapping varies $varies"
  else
    bad "$name: natdiscovery says $v, keyway says mapping varies $varies"
    sed 's/^/#   /' "$nd"
  fi
}

check_case eim heim 198.18.1.10 eim 198.18.0.1
check_case edm hedm 198.18.2.10 edm 198.18.0.2
check_case udpblock hblk 198.18.3.10 udpblock 198.18.0.3
check_case public hpub 198.18.0.21 public 198.18.0.21
lab_test_end
