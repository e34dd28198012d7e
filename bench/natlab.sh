#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT-lab benchmarks (root; figures printed, never pass/fail).
#
#   bench/natlab.sh BUILD_DIR
#
# Topology: hosts a (198.18.1.10) and b (198.18.2.10) behind two EIM NAT
# routers (MASQUERADE) whose WAN links each carry 20 ms per direction
# (tests/natlab/kw_delaylink: this kernel has no netem), a keyway-relay on
# the public segment at 198.18.0.10 (20 ms from each host, a<->b direct is
# 40 ms one way).
#  1. 20 runs: a fresh `keyway listen --once` on a (sends 1 byte), `keyway
#     connect` on b. Measured in b with CLOCK_MONOTONIC ns stamps from just
#     before the connect process starts: the first byte on its stdout, and
#     the first {"event":"path",...,"kind":"direct"} line on its --json
#     stderr. Median and worst of each.
#  2. Throughput a -> b: `keyway listen --once` on a sends KW_NATLAB_MIB
#     (default 256) MiB of zeros to `keyway connect` on b; figures for the
#     whole run (start-up, handshake, relay phase included) and for the part
#     after the first direct path event.
#  3. iperf3 between the same two hosts through the same NATs and delay
#     links: the server runs on b, reached through a port forward (DNAT of
#     198.18.0.2:5201 tcp+udp on b's router); TCP, and UDP at -b 2G -l 1400
#     with 4 MiB socket buffers (-w 4M; with the default ones most losses are
#     the receiving socket's overflows, not the path's), the received rate is
#     reported; KW_NATLAB_SECS (default 10) s each. keyway's UDP sockets ask
#     for 8 MiB buffers.
# Skips (exit 0) when not root. Traffic stays in lab namespaces.
# KW_NATLAB_KEEP=DIR keeps the logs, KW_NATLAB_VERBOSE=1 adds -v to keyway;
# KW_NATLAB_RUNS, KW_NATLAB_MIB, KW_NATLAB_SECS, KW_NATLAB_DELAY_MS change the sizes.
set -uo pipefail
build=$(cd "${1:?usage: bench/natlab.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/natlab/lib.sh"
KW=$build/keyway
RELAY=$build/keyway-relay
LAB_DELAYLINK=$build/tests/kw_delaylink
RUNS=${KW_NATLAB_RUNS:-20}
MIB=${KW_NATLAB_MIB:-256}
SECS=${KW_NATLAB_SECS:-10}
DELAY=${KW_NATLAB_DELAY_MS:-20}
if ! lab_have_root; then
  echo "bench/natlab.sh: needs root and ip netns: skipped"
  exit 0
fi
for f in "$KW" "$RELAY" "$LAB_DELAYLINK"; do
  [ -x "$f" ] || { echo "bench/natlab.sh: $f not built" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/kw-bench-natlab.XXXXXX")
# shellcheck disable=SC2034 # read by lib.sh: kw_delaylink logs kept in $work
LAB_LOGDIR=$work

# The dialer-side probe: runs a command, stamps (monotonic ns) its first
# stdout byte and its first direct path event, counts stdout bytes over time;
# its stderr goes to a file, each line prefixed with ms since the start.
cat >"$work/probe.py" <<'PY'
import json, os, subprocess, sys, threading, time
mode, deadline_s, errfile = sys.argv[1], float(sys.argv[2]), sys.argv[3]
cmd = sys.argv[4:]
st = {"first_byte": None, "direct": None, "bytes": 0, "end": None, "samples": []}
done = threading.Event()
t0 = time.monotonic_ns()
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, bufsize=0)
def out():
    while True:
        b = p.stdout.read(1 << 20)
        now = time.monotonic_ns()
        if not b:
            st["end"] = now
            break
        if st["first_byte"] is None:
            st["first_byte"] = now
        st["bytes"] += len(b)
        st["samples"].append((now, st["bytes"]))
        if st["direct"] is not None and mode == "latency":
            done.set()
    done.set()
def err():
    with open(errfile, "wb") as f:
        for line in p.stderr:
            now = time.monotonic_ns()
            f.write(b"%9.1f " % ((now - t0) / 1e6) + line)
            if (st["direct"] is None and b'"event":"path"' in line
                    and b'"kind":"direct"' in line):
                st["direct"] = now
                if st["first_byte"] is not None and mode == "latency":
                    done.set()
th = [threading.Thread(target=out), threading.Thread(target=err)]
for t in th:
    t.start()
if mode == "throughput":
    p.stdin.close()
done.wait(deadline_s)
if not p.stdin.closed:
    p.stdin.close()
try:
    rc = p.wait(timeout=max(5.0, deadline_s))
except subprocess.TimeoutExpired:
    p.kill()
    rc = p.wait()
for t in th:
    t.join(5)
r = {"rc": rc, "bytes": st["bytes"]}
for k in ("first_byte", "direct", "end"):
    r[k + "_ms"] = None if st[k] is None else (st[k] - t0) / 1e6
if st["direct"] is not None and st["end"] is not None:
    before = 0
    for t, n in st["samples"]:
        if t <= st["direct"]:
            before = n
    span = (st["end"] - st["direct"]) / 1e9
    r["after_direct_bytes"] = st["bytes"] - before
    r["after_direct_s"] = span
if st["end"] is not None:
    r["total_s"] = (st["end"] - t0) / 1e9
print(json.dumps(r))
PY

lab_init
trap 'lab_cleanup; rm -rf "$work"' EXIT
lab_relay_cert "$work" 198.18.0.10
lab_public_host relay 198.18.0.10
lab_router_delay ra 198.18.0.1 1 eim "$DELAY"
lab_lan_host a ra 1 10
lab_router_delay rb 198.18.0.2 2 eim "$DELAY"
lab_lan_host b rb 2 10
lab_bg relay "$work/relay.log" "$RELAY" --listen 198.18.0.10:8443 \
  --stun-listen 198.18.0.10:3478 --tls-cert "$work/cert.pem" \
  --tls-key "$work/key.pem" --rate 0 -q >/dev/null
for _ in $(seq 50); do
  lab_exec relay bash -c "exec 3<>/dev/tcp/198.18.0.10/8443" 2>/dev/null && break
  sleep 0.1
done
common=(--ephemeral --json --relay https://198.18.0.10:8443 --relay-ca "$work/cert.pem")
[ -n "${KW_NATLAB_VERBOSE:-}" ] && common+=(-v) # logs in the kept work dir

echo "== keyway NAT-lab benchmark ($(uname -r), $(nproc) CPUs, load $(cut -d" " -f1-3 /proc/loadavg))"
echo "   EIM/EIM, ${DELAY} ms per WAN link direction, relay on the public segment"

# listener_start I STDIN-CMD: a one-shot listener on a, ticket in $work/tI
listener_start() {
  local i=$1
  shift
  rm -f "$work/t$i"
  bash -c "$*" | ip netns exec "$(lab_ns a)" "$KW" listen "${common[@]}" --once \
    --ticket-file "$work/t$i" >/dev/null 2>"$work/l$i.err" &
  LAB_PIDS+=($!)
  lstn=$!
  lab_wait_file "$work/t$i" 15
}

# ---- 1. connect latency ----------------------------------------------------
echo "-- $RUNS connects: to first byte, to first direct path event"
: >"$work/lat.jsonl"
for i in $(seq 1 "$RUNS"); do
  if ! listener_start "$i" "printf x"; then
    echo "run $i: no listener ticket"
    continue
  fi
  lab_exec b python3 "$work/probe.py" latency 15 "$work/c$i.err" \
    "$KW" connect "${common[@]}" "$(cat "$work/t$i")" >>"$work/lat.jsonl"
  timeout 10 tail --pid="$lstn" -f /dev/null
done

# ---- 2. throughput over the direct path ------------------------------------
echo "-- keyway listen -> connect, $MIB MiB (a -> b)"
if listener_start tp "head -c ${MIB}M /dev/zero"; then
  lab_exec b python3 "$work/probe.py" throughput 300 "$work/ctp.err" \
    "$KW" connect "${common[@]}" "$(cat "$work/ttp")" >"$work/tp.json"
  timeout 20 tail --pid="$lstn" -f /dev/null
  cat "$work/tp.json"
fi

# ---- 3. iperf3 through the same NATs and delay links -----------------------
for proto in tcp udp; do
  lab_exec rb iptables -t nat -A PREROUTING -i eth0 -p "$proto" --dport 5201 \
    -j DNAT --to-destination 198.18.2.10
done
lab_exec rb iptables -I FORWARD -i eth0 -o lanbr -m conntrack --ctstate DNAT -j ACCEPT
iperf3_run() { # iperf3_run NAME CLIENT-ARGS...
  local name=$1
  shift
  lab_bg b "$work/iperf3-s-$name.log" iperf3 -s -1 -B 198.18.2.10 >/dev/null
  for _ in $(seq 50); do
    grep -q 'Server listening' "$work/iperf3-s-$name.log" 2>/dev/null && break
    sleep 0.1
  done
  local spid=${LAB_PIDS[-1]}
  lab_exec a timeout $((SECS + 30)) iperf3 -c 198.18.0.2 -t "$SECS" -J "$@" >"$work/$name.json"
  timeout 10 tail --pid="$spid" -f /dev/null # the one-shot server is gone: port free
}
tcp="" udp="" udp_loss=""
if command -v iperf3 >/dev/null && command -v jq >/dev/null; then
  echo "-- iperf3 TCP a -> b, ${SECS}s"
  iperf3_run tcp
  tcp=$(jq -r '.end.sum_received | .bytes / .seconds / 1e6 | . * 10 | round / 10' "$work/tcp.json" 2>/dev/null)
  echo "-- iperf3 UDP a -> b, -b 2G -l 1400 -w 4M, ${SECS}s"
  iperf3_run udp -u -b 2G -l 1400 -w 4M
  # received: datagrams that arrived (the server's count) x 1400 bytes
  udp=$(jq -r '.end.sum | (.packets - .lost_packets) * 1400 / .seconds / 1e6 | . * 10 | round / 10' "$work/udp.json" 2>/dev/null)
  udp_loss=$(jq -r '.end.sum.lost_percent | . * 10 | round / 10' "$work/udp.json" 2>/dev/null)
else
  echo "NOTE: iperf3 or jq missing: no comparison"
fi

# ---- table -------------------------------------------------------------------
python3 - "$work/lat.jsonl" "$work/tp.json" "$RUNS" "${tcp:-}" "${udp:-}" "${udp_loss:-}" "$MIB" <<'PY'
import json, statistics, sys
latf, tpf, runs, tcp, udp, udp_loss, mib = sys.argv[1:8]
rows = [json.loads(l) for l in open(latf) if l.strip()]
def stat(key):
    v = sorted(r[key + "_ms"] for r in rows if r.get(key + "_ms") is not None)
    if not v:
        return "-", "-", 0
    return "%.0f" % statistics.median(v), "%.0f" % v[-1], len(v)
print()
print("%-44s %10s %10s %8s" % ("connect (EIM/EIM, 20 ms per WAN direction)", "median ms", "worst ms", "runs"))
for key, name in (("first_byte", "start -> first byte"), ("direct", "start -> first direct path event")):
    m, w, n = stat(key)
    print("%-44s %10s %10s %5d/%s" % (name, m, w, n, runs))
fails = [r for r in rows if r.get("rc") != 0]
if fails:
    print("(%d runs exited non-zero)" % len(fails))
print()
try:
    tp = json.load(open(tpf))
except Exception:
    tp = {}
def mbps(b, s):
    return "%.1f" % (b / s / 1e6) if b and s else "-"
kw_all = mbps(tp.get("bytes"), tp.get("total_s"))
kw_dir = mbps(tp.get("after_direct_bytes"), tp.get("after_direct_s"))
def ratio(a, b):
    try:
        return "%.2f" % (float(a) / float(b))
    except (ValueError, ZeroDivisionError):
        return "-"
print("%-44s %10s %12s %12s" % ("throughput a -> b (same NATs, delay links)", "MB/s", "/iperf3-TCP", "/iperf3-UDP"))
ok = tp.get("bytes") == int(mib) << 20
note = "" if ok else "  (received %s of %d bytes)" % (tp.get("bytes"), int(mib) << 20)
print("%-44s %10s %12s %12s%s" % ("keyway %s MiB, whole run" % mib, kw_all, ratio(kw_all, tcp), ratio(kw_all, udp), note))
print("%-44s %10s %12s %12s" % ("keyway, after the first direct path event", kw_dir, ratio(kw_dir, tcp), ratio(kw_dir, udp)))
print("%-44s %10s" % ("iperf3 TCP", tcp or "-"))
print("%-44s %10s   (%s%% lost)" % ("iperf3 UDP -b 2G -l 1400 -w 4M, received", udp or "-", udp_loss or "-"))
if tp.get("direct_ms") is not None:
    print("(throughput run: first direct path event at %.0f ms, last byte at %.0f ms)" % (tp["direct_ms"], tp["end_ms"]))
PY
lab_cleanup
if [ -n "${KW_NATLAB_KEEP:-}" ]; then cp -r "$work" "$KW_NATLAB_KEEP"; fi
exit 0
