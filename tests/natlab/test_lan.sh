#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT lab: LAN discovery (docs/protocol/lan.md). Two hosts behind one lab
# router (one LAN, 198.18.1.0/24), no relay anywhere:
#   - `keyway connect --no-relay --lan <bare id>` reaches `keyway listen
#     --no-relay --lan` on the other host, a pipe arrives intact both ways;
#   - `keyway receive --no-relay --lan` of an id-only ticket (the id and
#     the share's capability, no address) gets what `keyway send` serves;
#     a bare id is refused by such a share and served by `send --public`;
#   - forged mDNS answers for an id (a TXT without a record, a record whose
#     signature is not the id's, both pointing at a decoy address) are
#     rejected: the dial fails with "not found" and never tries the decoy.
#   - IPv6 only (two namespaces of the test's own with IPv6 on, one link):
#     connect by bare id resolves over ff02::fb.
# Needs root; exits 77 (skipped) without it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lab_test_begin "$1"
TT=$build/tests/ticket_tool
lab_init
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_router r 198.18.0.2 1 none
lab_lan_host a r 1 10
lab_lan_host b r 1 11
common=(--ephemeral --no-relay --lan -v --timeout 8)

# 1. listen / connect by bare id
head -c 1M /dev/urandom >"$work/in_a"
head -c 1M /dev/urandom >"$work/in_b"
lab_exec a "$KW" listen "${common[@]}" --once --ticket-file "$work/t" \
  <"$work/in_a" >"$work/out_a" 2>"$work/a.err" &
apid=$!
LAB_PIDS+=("$apid")
lab_wait_file "$work/t" 10 || bad "listener ticket"
id=$("$TT" id "$(cat "$work/t")")
lab_wait_grep "$work/a.err" "lan.started" 5 || bad "listener LAN discovery started"
set +e
timeout 20 ip netns exec "$(lab_ns b)" "$KW" connect "${common[@]}" "$id" \
  <"$work/in_b" >"$work/out_b" 2>"$work/b.err"
rc=$?
timeout 10 tail --pid="$apid" -f /dev/null
set -e
if lab_pipe_intact "$rc"; then
  ok "connect --no-relay --lan by bare id: pipe intact both ways"
else
  bad "connect by bare id: exit $rc"
  tail -5 "$work/b.err"
fi
grep -q "lan.resolved" "$work/b.err" && ok "the id was resolved on the LAN" ||
  bad "no lan.resolved in the dialer's log"

# 2. send / receive of an id-only ticket
mkdir -p "$work/share" "$work/got"
head -c 300K /dev/urandom >"$work/share/f.bin"
lab_exec a "$KW" send "${common[@]}" --once --ticket-type id \
  --ticket-file "$work/st" "$work/share" </dev/null >/dev/null 2>"$work/s.err" &
spid=$!
LAB_PIDS+=("$spid")
lab_wait_file "$work/st" 10 || bad "sender ticket"
[ -z "$("$TT" addrs "$(cat "$work/st")")" ] && ok "the send ticket names no address" ||
  bad "the id-only ticket has addresses"
set +e
timeout 20 ip netns exec "$(lab_ns b)" "$KW" receive "${common[@]}" --no-progress \
  -o "$work/got" "$(cat "$work/st")" </dev/null >/dev/null 2>"$work/r.err"
rc=$?
set -e
if [ "$rc" -eq 0 ] && cmp -s "$work/share/f.bin" "$work/got/share/f.bin"; then
  ok "receive --no-relay --lan of an id-only ticket: file intact"
else
  bad "receive: exit $rc"
  tail -5 "$work/r.err"
fi

# 2b. a bare id: refused by a share with a capability, served by --public
sid=$("$TT" id "$(cat "$work/st")")
lab_exec a "$KW" send "${common[@]}" --once --ticket-file "$work/st2" "$work/share" \
  </dev/null >/dev/null 2>"$work/s2.err" &
LAB_PIDS+=("$!")
lab_wait_file "$work/st2" 10 || bad "second sender ticket"
sid=$("$TT" id "$(cat "$work/st2")")
set +e
timeout 20 ip netns exec "$(lab_ns b)" "$KW" receive "${common[@]}" --no-progress \
  -o "$work/got2" "$sid" </dev/null >/dev/null 2>"$work/r2.err"
rc=$?
set -e
if [ "$rc" -ne 0 ] && grep -q "not valid for the share" "$work/r2.err" && [ ! -e "$work/got2/share" ]; then
  ok "receive <bare id> of a share with a capability: refused, nothing written"
else
  bad "bare id against a capability share: exit $rc, $(tail -1 "$work/r2.err")"
fi
kill "$!" 2>/dev/null
lab_exec a "$KW" send "${common[@]}" --once --public --ticket-file "$work/st3" "$work/share" \
  </dev/null >/dev/null 2>"$work/s3.err" &
LAB_PIDS+=("$!")
lab_wait_file "$work/st3" 10 || bad "public sender ticket"
sid=$("$TT" id "$(cat "$work/st3")")
set +e
timeout 20 ip netns exec "$(lab_ns b)" "$KW" receive "${common[@]}" --no-progress \
  -o "$work/got3" "$sid" </dev/null >/dev/null 2>"$work/r3.err"
rc=$?
set -e
if [ "$rc" -eq 0 ] && cmp -s "$work/share/f.bin" "$work/got3/share/f.bin"; then
  ok "send --public / receive <bare id> --no-relay --lan: file intact"
else
  bad "receive <bare id> of a --public share: exit $rc"
  tail -5 "$work/r3.err"
fi

# 3. forged answers are ignored
"$KW" id --key "$work/x.key" >"$work/x.id" 2>/dev/null || bad "keyway id"
xid=$(cat "$work/x.id")
cat >"$work/forge.py" <<'EOF'
import socket, struct, sys, time, os
xid = sys.argv[1].encode()
def name(labels):
    return b"".join(bytes([len(l)]) + l for l in labels) + b"\0"
inst = name([xid, b"_keyway", b"_udp", b"local"])
def txt(strings):
    return b"".join(bytes([len(s)]) + s for s in strings)
def resp(rdata):
    rr = inst + struct.pack(">HHIH", 16, 0x8001, 120, len(rdata)) + rdata
    return struct.pack(">6H", 0, 0x8400, 0, 1, 0, 0) + rr
import base64
idbytes = base64.b32decode(xid.upper() + b"====")[:32]
# a record for the id, to a decoy address, with a signature that is not its
rec = (bytes([1]) + idbytes + struct.pack(">QI", int(time.time() * 1e6), 600)
       + b"\0" + bytes([1, 4, 198, 18, 1, 99]) + struct.pack(">H", 4242)
       + os.urandom(64))
unsigned = resp(txt([b"v=1", b"port=4242"]))
badsig = resp(txt([b"v=1", b"port=4242", b"rec0=" + rec]))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
s.bind(("0.0.0.0", 5353))
end = time.time() + float(sys.argv[2])
while time.time() < end:
    for m in (unsigned, badsig):
        s.sendto(m, ("224.0.0.251", 5353))
    time.sleep(0.2)
EOF
lab_bg b "$work/forge.log" python3 "$work/forge.py" "$xid" 12 >/dev/null
set +e
timeout 20 ip netns exec "$(lab_ns a)" "$KW" connect "${common[@]}" --timeout 4 \
  "$xid" </dev/null >/dev/null 2>"$work/f.err"
rc=$?
set -e
[ "$rc" -ne 0 ] && ok "a dial to an id only forgers answer for fails (exit $rc)" ||
  bad "the dial to a forged id succeeded"
grep -q "lan.rejected unsigned=[1-9]" "$work/f.err" && ok "the unsigned answer was rejected" ||
  bad "no unsigned rejection logged"
grep -q "lan.rejected .*bad_sig=[1-9]" "$work/f.err" && ok "the wrongly signed answer was rejected" ||
  bad "no bad-signature rejection logged"
if grep -q "lan.resolved\|conn.dial" "$work/f.err"; then
  bad "a forged answer was dialed"
  grep "lan.resolved\|conn.dial" "$work/f.err" | head -3
else
  ok "no forged address was dialed"
fi

# 4. IPv6 only (the lab's namespaces have IPv6 off: two of its own, one
# link, documentation addresses, link-local for mDNS): ff02::fb works
for n in c d; do
  lab_ns_add "$n"
  lab_exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=0
  lab_exec "$n" sysctl -qw net.ipv6.conf.default.disable_ipv6=0
done
lab_link c eth0 d eth0
lab_exec c ip -6 addr add 2001:db8:1::10/64 dev eth0 nodad
lab_exec d ip -6 addr add 2001:db8:1::11/64 dev eth0 nodad
for _ in $(seq 50); do # the link-local addresses (DAD)
  lab_exec c ip -6 addr show dev eth0 scope link | grep -q 'inet6 fe80' &&
    ! lab_exec c ip -6 addr show dev eth0 | grep -q tentative &&
    ! lab_exec d ip -6 addr show dev eth0 | grep -q tentative && break
  sleep 0.1
done
v6=(--ephemeral --no-relay --lan -v --timeout 8 --bind '[::]:0')
lab_exec c "$KW" listen "${v6[@]}" --once --ticket-file "$work/t6" \
  </dev/null >/dev/null 2>"$work/c.err" &
LAB_PIDS+=($!)
lab_wait_file "$work/t6" 10 || bad "IPv6 listener ticket"
id6=$("$TT" id "$(cat "$work/t6")")
set +e
echo hello6 | timeout 20 ip netns exec "$(lab_ns d)" "$KW" connect "${v6[@]}" "$id6" \
  >/dev/null 2>"$work/d.err"
rc=$?
set -e
if [ "$rc" -eq 0 ] && grep -q "lan.resolved" "$work/d.err"; then
  ok "IPv6 only: connect --lan by bare id over ff02::fb"
else
  bad "IPv6 only: exit $rc"
  grep "lan\.\|conn.dial" "$work/d.err" | head -5
fi
lab_test_end
