#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT lab: which local addresses an endpoint advertises, and in what order.
# One host namespace with a real-looking interface (eth0, 198.18.1.10), a
# container bridge (docker0, 198.18.9.1) and a VPN tunnel (wg0,
# 198.18.8.1). The ticket of `keyway listen` must list:
#   default                      eth0 first, then the virtual ones, loopback last
#   --deny-iface 'docker*'       no docker0 address
#   --allow-prefix 198.18.9.0/24 only docker0's address
#   --allow-iface eth0 --deny-prefix 198.18.1.10
#                                nothing from interfaces (deny wins)
# Needs root; exits 77 (skipped) without it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lab_test_begin "$1"
TT=$build/tests/ticket_tool
lab_init
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_ns_add h
# interfaces inside h: veth pairs whose far ends stay unconfigured
for pair in "eth0 p0" "docker0 p1" "wg0 p2"; do
  set -- $pair
  lab_exec h ip link add "$1" type veth peer name "$2"
  lab_exec h ip link set "$1" up
  lab_exec h ip link set "$2" up
done
lab_exec h ip addr add 198.18.1.10/24 dev eth0
lab_exec h ip addr add 198.18.9.1/24 dev docker0
lab_exec h ip addr add 198.18.8.1/24 dev wg0

# addrs NAME FLAGS...: the ticket's IPv4 addresses (no ports), one per line
addrs() {
  local n=$1
  shift
  rm -f "$work/t-$n"
  lab_exec h timeout 10 "$KW" listen --ephemeral -q --no-relay \
    --bind 0.0.0.0:0 --ticket-file "$work/t-$n" "$@" </dev/null \
    >/dev/null 2>"$work/$n.err" &
  local pid=$!
  lab_wait_file "$work/t-$n" 10 || { echo "(no ticket: $(tail -1 "$work/$n.err"))"; }
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  [ -s "$work/t-$n" ] && "$TT" addrs "$(cat "$work/t-$n")" | sed 's/:[0-9]*$//'
}

got=$(addrs default | tr '\n' ' ')
if [ "$got" = "198.18.1.10 198.18.9.1 198.18.8.1 127.0.0.1 " ] ||
  [ "$got" = "198.18.1.10 198.18.8.1 198.18.9.1 127.0.0.1 " ]; then
  ok "default: eth0 first, virtual interfaces next, loopback last ($got)"
else
  bad "default order: $got"
fi
got=$(addrs deny --deny-iface 'docker*' | tr '\n' ' ')
[ "$got" = "198.18.1.10 198.18.8.1 127.0.0.1 " ] && ok "--deny-iface docker*: $got" ||
  bad "--deny-iface docker*: $got"
got=$(addrs allow --allow-prefix 198.18.9.0/24 | tr '\n' ' ')
[ "$got" = "198.18.9.1 " ] && ok "--allow-prefix 198.18.9.0/24: $got" ||
  bad "--allow-prefix 198.18.9.0/24: $got"
got=$(addrs both --allow-iface eth0 --deny-prefix 198.18.1.10 | tr '\n' ' ')
[ -z "$got" ] && ok "deny wins over allow: nothing advertised" ||
  bad "deny over allow: $got"
lab_test_end
