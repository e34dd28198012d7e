#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT lab: port mapping (PCP / UPnP IGD / NAT-PMP) as a hole-punching
# candidate.
#   198.18.0.10            keyway-relay (TLS :8443, STUN :3478)
#   EDM router ra .1       (MASQUERADE --random-fully) running miniupnpd
#                          (UPnP + NAT-PMP + PCP: Debian's is built with
#                          PCP, which shares NAT-PMP's port and switch) on
#                          its LAN bridge; host a 198.18.1.10
#   EDM router rb .2       (MASQUERADE --random-fully), no miniupnpd; host b
#                          198.18.2.10
# EDM/EDM without port mapping stays on the relay (test_holepunch.sh). With
# --portmap on a, a's mapped address (ra's WAN address : mapped port) is a
# candidate b can reach, so the connection goes direct. Checks:
#   - netcheck --json --portmap: upnp, natpmp and pcp true on a (PCP
#     granted the mapping), all false on b
#   - 16 MiB each way intact, final path direct, b's direct address is the
#     mapping's external address (from a's portmap.mapped log event)
#   - miniupnpd's mapping (its iptables MINIUPNPD chain) is gone after a
#     exits
#   - control: the same pipe without --portmap ends on the relay, and
#     without --portmap nothing is sent to the gateway (miniupnpd's log)
#   - a's mapping is made by PCP (it answers first; UPnP is then not
#     asked to map), and deleted by PCP when a exits
#   - EDM router rc .3 runs miniupnpd with NAT-PMP (and PCP) only, PCP
#     requests dropped (an iptables u32 match on the version byte): host c
#     198.18.3.10 gets a NAT-PMP mapping while PCP goes unanswered,
#     released when it stops (SIGTERM)
#   - miniupnpd frozen (SIGSTOP) while a holds a PCP mapping: a exits, its
#     PCP delete unanswered, after the bound (time printed, not judged)
#   - miniupnpd frozen (SIGSTOP) while a holds a UPnP mapping (PCP dropped
#     on ra for that part): a still exits, abandoning the release after its
#     bound (time printed, not judged)
# miniupnpd learns its external address from a bare STUN responder on
# 198.18.0.12 (see stun_responder).
# Needs root and miniupnpd (Debian miniupnpd-iptables); exits 77 without.
# Everything --portmap runs inside lab namespaces only.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/natlab/lib.sh
. "$here/lib.sh"
lab_test_begin "$1"
command -v miniupnpd >/dev/null || [ -x /usr/sbin/miniupnpd ] ||
  { echo "natlab: miniupnpd missing: skipped"; rm -rf "$work"; exit 77; }
command -v iptables-legacy >/dev/null ||
  { echo "natlab: iptables-legacy missing (miniupnpd-iptables needs it): skipped"; rm -rf "$work"; exit 77; }
MINIUPNPD=$(command -v miniupnpd || echo /usr/sbin/miniupnpd)



# stun_responder NAME ADDR: a bare STUN Binding responder (python3) on a
# public lab host. miniupnpd refuses to map on an external address it deems
# reserved (198.18.0.0/15 is, and this miniupnpd has no option to allow
# it) unless it learned the address by STUN and its own STUN test found
# no filtering. Its test sends CHANGE-REQUEST attributes, which
# keyway-relay answers with 420 (RFC 8489): this responder ignores them and
# answers every request from where it was asked, which is all that test
# needs.
stun_responder() {
  lab_bg "$1" "$work/stun.log" python3 -c '
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 3478))
while True:
    d, (ip, port) = s.recvfrom(2048)
    if len(d) < 20 or d[0:2] != b"\x00\x01" or d[4:8] != b"\x21\x12\xa4\x42":
        continue
    v = struct.pack("!BBH4s", 0, 1, port ^ 0x2112,
                    bytes(a ^ b for a, b in zip(socket.inet_aton(ip), d[4:8])))
    a = struct.pack("!HH", 0x0020, len(v)) + v
    s.sendto(struct.pack("!HH", 0x0101, len(a)) + d[4:20] + a, (ip, port))
' "$2" >/dev/null
}

# upnp_router NAME LANIDX WANIP [UPNP]: miniupnpd on router NAME's LAN
# bridge, NAT-PMP on, UPnP IGD on unless UPNP=no.
# miniupnpd-iptables drives the legacy iptables tables (libiptc): its
# chains are made there. The lab's own rules are nf_tables ones, where
# lab_router drops unsolicited forwarded WAN traffic: accept what a DNAT
# rule (a port mapping) let in, ahead of that drop.
upnp_router() {
  local n=$1 idx=$2 wan=$3 upnp=${4:-yes} ipt=iptables-legacy
  lab_exec "$n" $ipt -t nat -N MINIUPNPD
  lab_exec "$n" $ipt -t nat -I PREROUTING 1 -i eth0 -j MINIUPNPD
  lab_exec "$n" $ipt -t nat -N MINIUPNPD-POSTROUTING
  lab_exec "$n" $ipt -t nat -I POSTROUTING 1 -o eth0 -j MINIUPNPD-POSTROUTING
  lab_exec "$n" $ipt -t filter -N MINIUPNPD
  lab_exec "$n" $ipt -t filter -I FORWARD 1 -i eth0 ! -o eth0 -j MINIUPNPD
  lab_exec "$n" iptables -I FORWARD 1 -i eth0 -o lanbr -m conntrack --ctstate DNAT -j ACCEPT
  # the router's own packets leave with its own address and port (the EDM
  # MASQUERADE would randomise them and fail miniupnpd's STUN test)
  lab_exec "$n" iptables -t nat -I POSTROUTING 1 -o eth0 -s "$wan" -j RETURN
  miniupnpd_start "$n" "$idx" "$upnp"
}

# miniupnpd_start NAME LANIDX UPNP: starts miniupnpd on router NAME
miniupnpd_start() {
  local n=$1 idx=$2 upnp=$3
  cat >"$work/miniupnpd-$n.conf" <<EOF
ext_ifname=eth0
ext_perform_stun=yes
ext_stun_host=198.18.0.12
ext_stun_port=3478
listening_ip=lanbr
port=0
enable_natpmp=yes
enable_upnp=$upnp
ipv6_disable=yes
secure_mode=yes
system_uptime=no
notify_interval=60
clean_ruleset_interval=600
uuid=3b2a1c8e-5d4f-4e6a-9b7c-0d1e2f3a4b5c
serial=kw0001
model_number=1
upnp_forward_chain=MINIUPNPD
upnp_nat_chain=MINIUPNPD
upnp_nat_postrouting_chain=MINIUPNPD-POSTROUTING
lease_file=$work/miniupnpd-$n.leases
allow 1024-65535 198.18.$idx.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
  lab_bg "$n" "$work/miniupnpd-$n.log" "$MINIUPNPD" -d -f "$work/miniupnpd-$n.conf" \
    -P "$work/miniupnpd-$n.pid" >/dev/null
}

# drop_pcp NAME: router NAME drops PCP requests (UDP to 5351 whose first
# payload byte, the version, is 2); NAT-PMP (version 0) still passes
drop_pcp() {
  lab_exec "$1" iptables -I INPUT 1 -i lanbr -p udp --dport 5351 \
    -m u32 --u32 "0>>22&0x3C@8>>24=2" -j DROP
}

# mapped_rules NAME: UDP DNAT rules miniupnpd holds on router NAME (on
# its legacy iptables table)
mapped_rules() {
  lab_exec "$1" iptables-legacy -t nat -S MINIUPNPD 2>/dev/null | grep -c -- '-p udp' || true
}

lab_init
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_public_host relay 198.18.0.10
lab_public_host stun 198.18.0.12
stun_responder stun 198.18.0.12
sleep 0.3
lab_router ra 198.18.0.1 1 edm
lab_lan_host a ra 1 10
lab_router rb 198.18.0.2 2 edm
lab_lan_host b rb 2 10
lab_router rc 198.18.0.3 3 edm
lab_lan_host c rc 3 10
upnp_router ra 1 198.18.0.1
upnp_router rc 3 198.18.0.3 no
lab_relay_cert "$work" 198.18.0.10
lab_start_relay relay 198.18.0.10 "$work/relay.log" -q || bad "relay up"
common=(--ephemeral --json --relay https://198.18.0.10:8443 --relay-ca "$work/cert.pem")

head -c 16M /dev/urandom >"$work/in_a"
head -c 16M /dev/urandom >"$work/in_b"

# wait_exit PID SECONDS: until PID is gone (polls every 20 ms)
wait_exit() {
  local i
  for ((i = 0; i < $2 * 50; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.02
  done
  return 1
}

# pm_requests: how many SSDP searches and NAT-PMP requests ra's miniupnpd saw
pm_requests() {
  grep -c -e 'SSDP M-SEARCH from' -e 'NAT-PMP request received' "$work/miniupnpd-ra.log" || true
}

# wait_unmapped [ROUTER]: until miniupnpd holds no UDP mapping (5 s at most)
wait_unmapped() {
  local i
  for ((i = 0; i < 50; i++)); do
    [ "$(mapped_rules "${1:-ra}")" = 0 ] && return 0
    sleep 0.1
  done
  return 1
}

# ---- netcheck: port mapping services seen on a, none on b, none unasked --
lab_wait_grep "$work/miniupnpd-ra.log" "Port forwarding is now enabled" 10 ||
  bad "miniupnpd on ra enabled port forwarding (its STUN test)"
n0=$(pm_requests)
lab_exec a timeout 20 "$KW" netcheck "${common[@]}" >"$work/nc-a-off.json" 2>"$work/nc-a-off.err"
n1=$(pm_requests)
if [ "$(jq -c .portmap "$work/nc-a-off.json" 2>/dev/null)" = '{"upnp":false,"natpmp":false,"pcp":false}' ] &&
  [ "$n0" = "$n1" ]; then
  ok "netcheck on a without --portmap: portmap all false, nothing sent to the gateway ($n0 -> $n1 requests)"
else
  bad "netcheck on a without --portmap: $(cat "$work/nc-a-off.json") requests $n0 -> $n1"
fi
lab_exec a timeout 20 "$KW" netcheck "${common[@]}" --portmap >"$work/nc-a.json" 2>"$work/nc-a.err"
n2=$(pm_requests)
if [ "$(jq -c .portmap "$work/nc-a.json" 2>/dev/null)" = '{"upnp":true,"natpmp":true,"pcp":true}' ] &&
  [ "$(jq -r '[.pcp.answered, .pcp.result] | join(" ")' "$work/nc-a.json")" = "true SUCCESS" ] &&
  jq -r .pcp.external "$work/nc-a.json" | grep -q '^198\.18\.0\.1:[0-9]*$' &&
  [ "$n2" -gt "$n1" ]; then
  ok "netcheck --portmap on a: upnp, natpmp and pcp true, PCP mapped $(jq -r .pcp.external "$work/nc-a.json") ($n1 -> $n2 requests)"
else
  bad "netcheck --portmap on a: $(cat "$work/nc-a.json") $(tail -2 "$work/nc-a.err")"
fi
if wait_unmapped; then
  ok "netcheck's mapping released when it exited"
else
  bad "netcheck's mapping still on ra: $(lab_exec ra iptables-legacy -t nat -S MINIUPNPD)"
fi
lab_exec b timeout 20 "$KW" netcheck "${common[@]}" --portmap >"$work/nc-b.json" 2>"$work/nc-b.err"
if [ "$(jq -c .portmap "$work/nc-b.json" 2>/dev/null)" = '{"upnp":false,"natpmp":false,"pcp":false}' ] &&
  [ "$(jq -c .pcp "$work/nc-b.json")" = '{"answered":false,"result":null,"external":null}' ]; then
  ok "netcheck --portmap on b (no port-mapping gateway): all false"
else
  bad "netcheck --portmap on b: $(cat "$work/nc-b.json") $(tail -2 "$work/nc-b.err")"
fi

# run_pipe NAME A_OPTS...: a listens (with A_OPTS), b connects with a's
# ticket; 16 MiB each way. Sets rc; files $work/{a,b}-NAME.err
run_pipe() {
  local name=$1
  shift
  rm -f "$work/t" "$work/out_a" "$work/out_b"
  lab_exec a "$KW" listen "${common[@]}" "$@" --once --ticket-file "$work/t" \
    <"$work/in_a" >"$work/out_a" 2>"$work/a-$name.err" &
  apid=$!
  LAB_PIDS+=("$apid")
  lab_wait_file "$work/t" 15 || bad "$name: listener ticket"
  if [ "$name" = portmap ]; then
    lab_wait_grep "$work/a-$name.err" 'portmap.mapped' 15 || bad "$name: a got no mapping"
  fi
  timeout 90 ip netns exec "$(lab_ns b)" "$KW" connect "${common[@]}" "$(cat "$work/t")" \
    <"$work/in_b" >"$work/out_b" 2>"$work/b-$name.err"
  rc=$?
  timeout 20 tail --pid="$apid" -f /dev/null
  if lab_pipe_intact "$rc"; then
    ok "$name: 16 MiB each way intact"
  else
    bad "$name: transfer (exit $rc): $(tail -2 "$work/b-$name.err")"
  fi
}

# last_path NAME: b's last path event
last_path() { grep '"event":"path"' "$work/b-$1.err" | tail -1; }

# ---- control: EDM/EDM without port mapping stays on the relay ------------
run_pipe control
if [ "$(last_path control | jq -r .kind)" = relay ]; then
  ok "control (no --portmap): final path relay"
else
  bad "control: final path $(last_path control)"
fi
if [ "$(mapped_rules ra)" = 0 ]; then
  ok "control: no mapping made on ra"
else
  bad "control: a mapping on ra"
fi

# ---- with --portmap on a: direct through the mapped port -----------------
run_pipe portmap --portmap -v
ext=$(grep -o 'portmap.mapped proto=[a-z]* external=[0-9.:]*' "$work/a-portmap.err" | tail -1 |
  sed 's/.*external=//')
proto=$(grep -o 'portmap.mapped proto=[a-z]*' "$work/a-portmap.err" | tail -1 | sed 's/.*proto=//')
case $ext/$proto in
  198.18.0.1:*/pcp) ok "a's mapping: $ext via $proto (ra's WAN address)" ;;
  *) bad "a's mapping: '$ext' via '$proto' (wanted PCP)" ;;
esac
last=$(last_path portmap)
kinds=$(grep '"event":"path"' "$work/b-portmap.err" | jq -r .kind | tr '\n' ' ')
if [ "$(jq -r .kind <<<"$last")" = direct ] && [ "$(jq -r .addr <<<"$last")" = "$ext" ]; then
  ok "portmap: final path direct to the mapped address $ext (path events: $kinds)"
else
  bad "portmap: final path, wanted direct to $ext: $last (path events: $kinds)"
fi
if wait_unmapped; then
  if grep -q "portmap.released proto=pcp port=${ext#*:} result=SUCCESS" "$work/a-portmap.err"; then
    ok "portmap: miniupnpd's mapping released by PCP after a exited ($(grep -o 'portmap.released[^"]*' "$work/a-portmap.err"))"
  else
    bad "portmap: released, but not by a PCP delete: $(grep -o 'portmap.released[^"]*' "$work/a-portmap.err")"
  fi
else
  bad "portmap: mapping left on ra: $(lab_exec ra iptables-legacy -t nat -S MINIUPNPD)"
fi

# ---- NAT-PMP only (rc: UPnP off, PCP dropped): mapped by NAT-PMP ---------
lab_wait_grep "$work/miniupnpd-rc.log" "Listening for NAT-PMP" 10 || bad "miniupnpd on rc up"
drop_pcp rc
# (ip netns exec execs keyway: $! is keyway's pid, for the SIGTERM below)
ip netns exec "$(lab_ns c)" "$KW" listen "${common[@]}" --portmap -v </dev/null >/dev/null \
  2>"$work/c-natpmp.err" &
cpid=$!
LAB_PIDS+=("$cpid")
if lab_wait_grep "$work/c-natpmp.err" 'portmap.mapped proto=natpmp external=198.18.0.3:' 15 &&
  [ "$(mapped_rules rc)" -ge 1 ]; then
  ok "NAT-PMP only: $(grep -o 'portmap.mapped[^"]*' "$work/c-natpmp.err"), rule on rc (PCP unanswered meanwhile)"
else
  bad "NAT-PMP only: no mapping: $(grep -o 'portmap[.a-z]* [^"]*' "$work/c-natpmp.err" | tail -2)"
fi
t0=$(date +%s%N)
kill -TERM "$cpid"
wait_exit "$cpid" 10
t1=$(date +%s%N)
if wait_unmapped rc && grep -q 'portmap.released proto=natpmp' "$work/c-natpmp.err"; then
  ok "NAT-PMP only: mapping released when the listener stopped (exit $(( (t1 - t0) / 1000000 )) ms after SIGTERM; $(grep -o "portmap.released[^\"]*" "$work/c-natpmp.err"))"
else
  bad "NAT-PMP only: mapping left on rc: $(lab_exec rc iptables-legacy -t nat -S MINIUPNPD)"
fi

# frozen_gateway FILE PROTO NAME RELEASED WHAT: a holds a PROTO mapping made
# by miniupnpd on ra, which is then frozen (SIGSTOP); a must still exit
# after SIGTERM with RELEASED (a log pattern) in FILE, WHAT said of it
frozen_gateway() {
  local err=$work/$1 proto=$2 name=$3 released=$4 what=$5 apid mpid t0 t1
  ip netns exec "$(lab_ns a)" "$KW" listen "${common[@]}" --portmap -v </dev/null >/dev/null \
    2>"$err" &
  apid=$!
  LAB_PIDS+=("$apid")
  mpid=$(cat "$work/miniupnpd-ra.pid" 2>/dev/null)
  if ! lab_wait_grep "$err" "portmap.mapped proto=$proto" 15 || [ -z "$mpid" ]; then
    bad "$name: a got no $proto mapping"
    return
  fi
  kill -STOP "$mpid"
  t0=$(date +%s%N)
  kill -TERM "$apid"
  wait_exit "$apid" 10
  t1=$(date +%s%N)
  kill -CONT "$mpid"
  if ! kill -0 "$apid" 2>/dev/null && grep -q "$released" "$err"; then
    ok "$name: a exited $(( (t1 - t0) / 1000000 )) ms after SIGTERM, $what"
  else
    bad "$name: a still running or no ${released%% *}: $(grep -o 'portmap[.a-z]* [^"]*' "$err" | tail -2)"
  fi
}

# ---- PCP: a frozen gateway does not hold the close either ---------------
frozen_gateway a-pcpfrozen.err pcp "frozen gateway (PCP)" \
  'portmap.released proto=pcp port=[0-9]* result=no-answer' "the delete unanswered"

# ---- a gateway that stops answering: close does not wait for it ---------
# miniupnpd on ra is frozen (SIGSTOP) while a holds a UPnP mapping: the
# kernel still accepts the DeletePortMapping TCP connection, but no answer
# comes. a must exit anyway, the release abandoned after its bound. PCP is
# dropped on ra for this part, so that UPnP makes the mapping.
drop_pcp ra
frozen_gateway a-frozen.err upnp "frozen gateway" \
  'portmap.failed reason=release-timeout' "release abandoned"

if [ -n "${KW_PM_DEBUG:-}" ]; then
  grep -v -e parse_stun -e wait_for "$work"/miniupnpd-r?.log
fi
lab_test_end
