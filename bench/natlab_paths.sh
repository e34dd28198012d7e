#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT-lab path benchmark: keyway against TCP on a long and lossy path (root;
# figures printed, never pass/fail).
#
#   bench/natlab_paths.sh BUILD_DIR
#
# Topology (tests/natlab/lib.sh): hosts a (198.18.1.10) and b (198.18.2.10)
# behind two EIM NAT routers whose WAN links are kw_delaylink TAP pairs with
# KW_PATHS_DELAY_MS (default 20) ms each way and a seeded random loss per
# link direction (direct a<->b RTT about 4 x delay), a keyway-relay on the
# public segment. For each loss in KW_PATHS_LOSS (default "0 1 5" percent) a
# fresh lab, then, alternating:
#   keyway: `keyway listen --once --cc CC` on a sends KW_PATHS_MIB (default
#     64) MiB, `keyway connect` on b receives (through a byte meter to
#     /dev/null); MB/s over the whole run from the dial (handshake and relay
#     phase included) and in steady state (over the last half of the
#     bytes), the run split into first byte, when it went direct and how
#     much had moved on the relay by then, MB/s per quarter of the bytes,
#     and the receiver's paths in order (its --json path events:
#     relay>direct), so a direct path given up under loss shows
#     (relay>direct>relay);
#   iperf3 TCP a -> b with -C cubic and -C bbr (KW_PATHS_TCP, "" for none),
#     once with -n KW_PATHS_MIB MiB timed from before its connect to its
#     end (the same bytes and start-up as keyway's whole figure) and once
#     for KW_PATHS_SECS (default 10) s, through the same NATs and links
#     (b's router forwards 198.18.0.2:5201).
# Every run is bounded (KW_PATHS_TIMEOUT, default 120 s per keyway run;
# KW_PATHS_TCP_TIMEOUT, default 40 s, per iperf3 -n run: one it stops
# counts with what it moved, marked *).
# Prints one table: MB/s per case (whole and steady) and the ratios
# keyway/iperf3 (same CC and TCP BBR; whole against -n, steady against -t),
# then what issue 10 asks: per loss keyway against the best TCP of the run,
# at 1% and 5% also against TCP BBR and against keyway without loss; and per
# loss how many runs went direct and kept the direct path.
# A keyway run its timeout stopped still counts with what it moved (marked
# *). Skips (exit 0) without root.
# KW_PATHS_CC (default "cubic bbr", "" for none) picks keyway's controllers, KW_PATHS_REPS
# (default 2) the alternating rounds;
# KW_PATHS_KEEP=DIR keeps the logs (receiver stderr with seconds since the
# dial in front, the byte meter's log, UDP and link drop counters per lab
# host after each keyway run, and per router the disco Pings and Pongs
# that left the LAN, came in on the WAN and were let through the NAT;
# KW_PATHS_VERBOSE=1: with -v, 2: -vv).
set -uo pipefail
build=$(cd "${1:?usage: bench/natlab_paths.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/natlab/lib.sh"
KW=$build/keyway
RELAY=$build/keyway-relay
LAB_DELAYLINK=$build/tests/kw_delaylink
MIB=${KW_PATHS_MIB:-64}
SECS=${KW_PATHS_SECS:-10}
DELAY=${KW_PATHS_DELAY_MS:-20}
LOSSES=${KW_PATHS_LOSS:-0 1 5}
CCS=${KW_PATHS_CC-cubic bbr}
TMO=${KW_PATHS_TIMEOUT:-120}
REPS=${KW_PATHS_REPS:-2}
TCPS=${KW_PATHS_TCP-cubic bbr}
TCP_TMO=${KW_PATHS_TCP_TIMEOUT:-40}
if ! lab_have_root; then
  echo "bench/natlab_paths.sh: needs root and ip netns: skipped"
  exit 0
fi
for f in "$KW" "$RELAY" "$LAB_DELAYLINK"; do
  [ -x "$f" ] || { echo "bench/natlab_paths.sh: $f not built" >&2; exit 1; }
done
have_iperf=1
command -v iperf3 >/dev/null && command -v jq >/dev/null || have_iperf=0
tcp_ccs=$(sysctl -n net.ipv4.tcp_available_congestion_control 2>/dev/null)
work=$(mktemp -d "${TMPDIR:-/tmp}/kw-bench-paths.XXXXXX")
# shellcheck disable=SC2034 # read by lib.sh
LAB_LOGDIR=$work
results=$work/results.tsv
: >"$results"

lab_up() { # lab_up LOSS
  lab_init
  trap 'lab_cleanup; rm -rf "$work"' EXIT
  [ -s "$work/cert.pem" ] || lab_relay_cert "$work" 198.18.0.10
  lab_public_host relay 198.18.0.10
  lab_router_delay ra 198.18.0.1 1 eim "$DELAY" "$1" 11 || return 1
  lab_lan_host a ra 1 10
  lab_router_delay rb 198.18.0.2 2 eim "$DELAY" "$1" 22 || return 1
  lab_lan_host b rb 2 10
  lab_bg relay "$work/relay.log" "$RELAY" --listen 198.18.0.10:8443 \
    --stun-listen 198.18.0.10:3478 --tls-cert "$work/cert.pem" \
    --tls-key "$work/key.pem" --rate 0 -q >/dev/null
  lab_wait_tcp relay 198.18.0.10 8443 || return 1
  for proto in tcp udp; do
    lab_exec rb iptables -t nat -A PREROUTING -i eth0 -p "$proto" --dport 5201 \
      -j DNAT --to-destination 198.18.2.10
  done
  lab_exec rb iptables -I FORWARD -i eth0 -o lanbr -m conntrack --ctstate DNAT -j ACCEPT
  if [ -n "${KW_PATHS_KEEP:-}" ]; then
    # count disco datagrams at each router: Pings (133 bytes and up, IP
    # length 161; counted 155-171) and Pongs (120, 148) leaving the LAN, arriving on the
    # WAN side (before the NAT's filtering) and let through to the LAN
    local r len
    for r in ra rb; do
      for len in 155:171 148; do
        lab_exec "$r" iptables -t mangle -A POSTROUTING -o eth0 -p udp -m length --length "$len"
        lab_exec "$r" iptables -t mangle -A PREROUTING -i eth0 -p udp -m length --length "$len"
        lab_exec "$r" iptables -t mangle -A POSTROUTING -o lanbr -p udp -m length --length "$len"
      done
    done
  fi
}

common=(--ephemeral --json --relay https://198.18.0.10:8443)
[ -n "${KW_PATHS_VERBOSE:-}" ] && common+=(-v) # logs in KW_PATHS_KEEP
[ "${KW_PATHS_VERBOSE:-}" = 2 ] && common+=(-v) # -vv: debug

# The receiver's stdout goes through this meter: it counts the bytes and
# writes "SECONDS BYTES" (seconds since the dial) at the first byte and at
# each MiB, so a run splits into dial -> first byte, relay phase, move to
# direct and steady state.
meter='import sys, time
t0 = float(sys.argv[1]); out = open(sys.argv[2], "w")
n = 0; mark = 0; rd = sys.stdin.buffer.raw
while True:
    b = rd.read(1 << 20)
    if not b:
        break
    if n == 0:
        out.write("%.4f 0 first\n" % (time.time() - t0))
    n += len(b)
    if n >> 20 > mark:
        mark = n >> 20
        out.write("%.4f %d\n" % (time.time() - t0, n))
out.write("%.4f %d end\n" % (time.time() - t0, n))
print(n)'
# stderr lines with the seconds since the dial in front
stamp='import sys, time
t0 = float(sys.argv[1])
for l in sys.stdin:
    sys.stdout.write("%.4f %s" % (time.time() - t0, l)); sys.stdout.flush()'

keyway_run() { # keyway_run LOSS CC N
  local loss=$1 cc=$2 n=$3 t ticket lpid t0 t1 rc bytes last
  t=$work/t-$loss-$cc-$n
  rm -f "$t"
  head -c "${MIB}M" /dev/zero | ip netns exec "$(lab_ns a)" timeout "$TMO" "$KW" \
    listen "${common[@]}" --relay-ca "$work/cert.pem" --cc "$cc" --once \
    --ticket-file "$t" >/dev/null 2>"$work/l-$loss-$cc-$n.err" &
  lpid=$!
  LAB_PIDS+=("$lpid")
  if ! lab_wait_file "$t" 15; then
    printf '%s\tkeyway-%s\t-\tnone\tno-ticket\t-\n' "$loss" "$cc" >>"$results"
    return
  fi
  ticket=$(cat "$t")
  t0=$(date +%s.%N)
  bytes=$(lab_exec b timeout "$TMO" "$KW" connect "${common[@]}" \
    --relay-ca "$work/cert.pem" --cc "$cc" "$ticket" </dev/null \
    2> >(python3 -u -c "$stamp" "$t0" >"$work/c-$loss-$cc-$n.err") |
    python3 -c "$meter" "$t0" "$work/p-$loss-$cc-$n")
  rc=${PIPESTATUS[0]}
  t1=$(date +%s.%N)
  timeout 20 tail --pid="$lpid" -f /dev/null
  sleep 0.2 # the stderr stamper's last lines
  if [ -n "${KW_PATHS_KEEP:-}" ]; then # UDP drop counters, since the last run
    for h in a b ra rb pub; do
      echo "== $h" >>"$work/udp-$loss-$cc-$n"
      lab_exec "$h" nstat -z 2>/dev/null | grep -E 'Udp|Ip6?Out|Drop|Err' | awk '$2 != 0' \
        >>"$work/udp-$loss-$cc-$n"
      lab_exec "$h" ip -s link >>"$work/udp-$loss-$cc-$n" 2>/dev/null
      lab_exec "$h" tc -s qdisc >>"$work/udp-$loss-$cc-$n" 2>/dev/null
    done
    for h in ra rb; do # the disco counters above, zeroed for the next run
      echo "== $h disco (155:171: Ping, 148: Pong)" >>"$work/disco-$loss-$cc-$n"
      lab_exec "$h" iptables -t mangle -L -v -n -x -Z 2>/dev/null | grep -E 'Chain|length' \
        >>"$work/disco-$loss-$cc-$n"
    done
  fi
  # the receiver's paths in order, repeats dropped: relay>direct
  last=$(grep -o '"event":"path".*"kind":"[a-z]*"' "$work/c-$loss-$cc-$n.err" |
    grep -o '"kind":"[a-z]*"' | cut -d'"' -f4 | uniq | paste -sd'>')
  local mbs status=ok note="" split
  bytes=${bytes:-0}
  mbs=$(awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.1f", b / (z - a) / 1e6 }')
  if [ "$bytes" -ne $((MIB << 20)) ]; then
    status=short
    note=" (short: $bytes of $((MIB << 20)) bytes when it ended)"
  fi
  split=$(phases "$work/p-$loss-$cc-$n" "$work/c-$loss-$cc-$n.err")
  printf '%s\tkeyway-%s\t%s\t%s\t%s\t%s\n' "$loss" "$cc" "$mbs" "${last:-none}" "$status" \
    "$(echo "$split" | cut -d' ' -f1)" >>"$results"
  echo "   loss $loss% keyway --cc $cc: $mbs MB/s$note, ended on ${last:-no path} (rc $rc)"
  echo "      $(echo "$split" | cut -d' ' -f2-)"
}

# phases METER_LOG STDERR_LOG: "STEADY_MBS text" where STEADY_MBS is the
# rate over the second half of the bytes, and the text splits the run:
# first byte, bytes on the relay before the first direct path event, the
# time to the first byte after it, and MB/s per quarter of the transfer.
phases() {
  python3 - "$1" "$2" <<'PY'
import sys, re
pts = []
first = None
for l in open(sys.argv[1]):
    f = l.split()
    if len(f) == 3 and f[2] == "first":
        first = float(f[0])
    elif len(f) >= 2:
        pts.append((float(f[0]), int(f[1])))
if first is not None:
    pts.insert(0, (first, 0))
direct = None
for l in open(sys.argv[2]):
    if '"event":"path"' in l and '"kind":"direct"' in l:
        direct = float(l.split()[0])
        break
if not pts or first is None:
    print("- no data"); sys.exit()
total = pts[-1][1]
def at(b):  # time the receiver had b bytes
    for t, n in pts:
        if n >= b:
            return t
    return pts[-1][0]
def rate(a, b):
    ta, tb = at(a), at(b)
    return (b - a) / (tb - ta) / 1e6 if tb > ta else 0.0
half = rate(total // 2, total) if total >= 2 << 20 else 0.0
out = ["first byte %.2fs" % first]
if direct is not None:
    onrelay = max([n for t, n in pts if t <= direct] or [0])
    out.append("direct at %.2fs after %.1f MiB on the relay" % (direct, onrelay / 1048576))
else:
    out.append("never direct")
if total >= 1 << 20:
    out.append("1 MiB at %.2fs" % at(1 << 20))
q = [rate(total * i // 4, total * (i + 1) // 4) for i in range(4)]
out.append("MB/s per quarter " + " ".join("%.1f" % x for x in q))
out.append("last half %.1f MB/s" % half)
print("%.1f %s" % (half, ", ".join(out)))
PY
}

iperf_run() { # iperf_run LOSS CC N MODE: MODE t = KW_PATHS_SECS s, n = MIB MiB
  local loss=$1 cc=$2 n=$3 mode=$4 spid mbs what=tcp-$2 arg
  arg=(-t "$SECS")
  if [ "$mode" = n ]; then
    arg=(-n "${MIB}M")
    what=tcp${MIB}M-$cc
  fi
  lab_bg b "$work/is-$loss-$cc-$n-$mode.log" iperf3 -s -1 -B 198.18.2.10 >/dev/null
  spid=${LAB_PIDS[-1]}
  for _ in $(seq 50); do
    grep -q 'Server listening' "$work/is-$loss-$cc-$n-$mode.log" 2>/dev/null && break
    sleep 0.1
  done
  # -n: the client's own wall clock from before the connect to the end,
  # like keyway's figure (iperf3's seconds start after the connect)
  local t0 t1
  t0=$(date +%s.%N)
  local tmo=$((SECS + 30))
  [ "$mode" = n ] && tmo=$TCP_TMO
  lab_exec a timeout "$tmo" iperf3 -c 198.18.0.2 "${arg[@]}" -C "$cc" -J \
    >"$work/ic-$loss-$cc-$n-$mode.json" 2>/dev/null
  local irc=$?
  t1=$(date +%s.%N)
  timeout 10 tail --pid="$spid" -f /dev/null
  local status=ok
  if [ "$mode" = n ]; then
    # stopped by its timeout (CUBIC under loss): what the intervals so far
    # moved, marked short like a keyway run
    local got
    got=$(jq -r '(.end.sum_received.bytes // ([.intervals[]?.sum.bytes] | add) // 0) | floor' \
      "$work/ic-$loss-$cc-$n-$mode.json" 2>/dev/null)
    [ "$irc" = 124 ] && status=short
    mbs=$(awk -v b="${got:-0}" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.1f", b / (z - a) / 1e6 }')
  else
    mbs=$(jq -r '.end.sum_received | .bytes / .seconds / 1e6 | . * 10 | round / 10' \
      "$work/ic-$loss-$cc-$n-$mode.json" 2>/dev/null)
  fi
  printf '%s\t%s\t%s\t-\t%s\t-\n' "$loss" "$what" "${mbs:--}" "$status" >>"$results"
  if [ "$mode" = n ]; then
    echo "   loss $loss% iperf3 TCP -C $cc -n ${MIB}M (connect included): ${mbs:--} MB/s$([ "$status" = short ] && echo " (stopped after ${TCP_TMO} s)")"
  else
    echo "   loss $loss% iperf3 TCP -C $cc -t $SECS: ${mbs:--} MB/s"
  fi
}

echo "== keyway NAT-lab paths ($(uname -r), $(nproc) CPUs, load $(cut -d" " -f1-3 /proc/loadavg))"
echo "   EIM/EIM, ${DELAY} ms per WAN link direction, loss per link direction: $LOSSES %; $MIB MiB keyway, ${SECS}s iperf3"
for loss in $LOSSES; do
  if ! lab_up "$loss"; then
    echo "   loss $loss%: the lab did not come up"
    lab_cleanup
    continue
  fi
  for n in $(seq "$REPS"); do # alternate: the machine is shared, figures drift
    for cc in $CCS; do keyway_run "$loss" "$cc" "$n"; done
    if [ "$have_iperf" = 1 ]; then
      for cc in $TCPS; do
        case " $tcp_ccs " in *" $cc "*)
          iperf_run "$loss" "$cc" "$n" n
          iperf_run "$loss" "$cc" "$n" t
          ;;
        esac
      done
    fi
  done
  lab_cleanup
done

python3 - "$results" "$MIB" "$SECS" <<'PY'
import sys, re, collections
mib, secs = sys.argv[2], sys.argv[3]
rows = collections.defaultdict(list)   # (loss, what) -> [(MB/s, short)]
steady = collections.defaultdict(list) # keyway: MB/s over the last half
ended = collections.defaultdict(list)
for line in open(sys.argv[1]):
    loss, what, mbs, last, status, st = line.rstrip("\n").split("\t")
    if re.match(r"^[0-9.]+$", mbs):
        rows[(loss, what)].append((float(mbs), status == "short"))
    else:
        rows[(loss, what)].append(None)
    if what.startswith("keyway"):
        ended[(loss, what)].append(last)
        if re.match(r"^[0-9.]+$", st):
            steady[(loss, what)].append((float(st), status == "short"))
losses = sorted({k[0] for k in rows}, key=float)
whats = sorted({k[1] for k in rows}, key=lambda w: (not w.startswith("keyway"), w))
def best(v):
    v = [x for x in (v or []) if x is not None]
    return max(v) if v else None
def fig(x):
    return "%.1f%s" % (x[0], "*" if x[1] else "")
def fmt(v):
    ok = sorted(x for x in (v or []) if x is not None)
    if not ok:
        return "-"
    return fig(ok[0]) if len(ok) == 1 or ok[0] == ok[-1] else "%s-%s" % (fig(ok[0]), fig(ok[-1]))
def ratio(k, t):
    if not k or not t or t[0] == 0:
        return "-"
    return "%.2f%s" % (k[0] / t[0], "*" if k[1] or t[1] else "")
tn = "tcp%sM-" % mib   # iperf3 -n: the same bytes as keyway, connect included
print()
print("keyway: MB/s for the whole %s MiB from the dial (start-up, relay phase, move to direct" % mib)
print("included) and steady (the last half of the bytes); tcp%sM: iperf3 -n %sM, from before its" % (mib, mib))
print("connect to the end; tcp: iperf3 -t %s (after its connect). Ratios: whole against tcp%sM," % (secs, mib))
print("steady against tcp -t %s, each of the same controller and of TCP BBR." % secs)
print("%-6s %-14s %14s %14s %9s %9s %9s %9s  %s" % ("loss%", "sender", "MB/s whole", "steady",
      "/TCP same", "/TCP-BBR", "st/TCP", "st/BBR", "keyway paths, each run"))
for loss in losses:
    for w in whats:
        v = rows.get((loss, w))
        if v is None:
            continue
        r = ["-"] * 4
        st = "-"
        if w.startswith("keyway"):
            cc = w.split("-", 1)[1]
            k, ks = best(v), best(steady.get((loss, w)))
            st = fmt(steady.get((loss, w)))
            r = [ratio(k, best(rows.get((loss, tn + cc)))), ratio(k, best(rows.get((loss, tn + "bbr")))),
                 ratio(ks, best(rows.get((loss, "tcp-" + cc)))), ratio(ks, best(rows.get((loss, "tcp-bbr"))))]
        print("%-6s %-14s %14s %14s %9s %9s %9s %9s  %s" % (loss, w, fmt(v), st, *r,
              " ".join(ended.get((loss, w), []))))
print("(ratios from the best run of each; * a keyway run that had not finished when its timeout")
print(" stopped it: MB/s of what it moved)")
# what issue 10 asks, keyway's default controller (BBR) and any other that ran
def check(loss, w, label):
    k, ks = best(rows.get((loss, w))), best(steady.get((loss, w)))
    tb, tb10 = best(rows.get((loss, tn + "bbr"))), best(rows.get((loss, "tcp-bbr")))
    tc, tc10 = best(rows.get((loss, tn + "cubic"))), best(rows.get((loss, "tcp-cubic")))
    t = max([x for x in (tb, tc) if x] or [None], key=lambda x: x[0] if x else 0)
    t10 = max([x for x in (tb10, tc10) if x] or [None], key=lambda x: x[0] if x else 0)
    out = "%s %s: whole %s / best TCP %sM %s = %s, steady %s / best TCP -t %s %s = %s" % (
        label, w, fig(k) if k else "-", mib, fig(t) if t else "-", ratio(k, t),
        fig(ks) if ks else "-", secs, fig(t10) if t10 else "-", ratio(ks, t10))
    if loss != "0":
        out += "; against TCP BBR: whole %s, steady %s" % (ratio(k, tb), ratio(ks, tb10))
        k0, ks0 = best(rows.get(("0", w))), best(steady.get(("0", w)))
        out += "; against itself without loss: whole %s, steady %s" % (ratio(k, k0), ratio(ks, ks0))
    print(out)
print()
for loss in losses:
    for w in whats:
        if w.startswith("keyway") and rows.get((loss, w)):
            check(loss, w, "%s%% loss" % loss)
for loss in losses:
    for w in whats:
        e = ended.get((loss, w))
        if e:
            went = [x for x in e if "direct" in x.split(">")]
            kept = [x for x in went if x.split(">")[-1] == "direct"]
            print("keyway %s at %s%% loss: %d of %d runs went direct, %d of them kept the direct path to the end%s"
                  % (w.split("-", 1)[1], loss, len(went), len(e), len(kept),
                     "" if len(went) == len(e) else " (the others finished on the relay before a direct path was found)"))
PY
if [ -n "${KW_PATHS_KEEP:-}" ]; then cp -r "$work" "$KW_PATHS_KEEP"; fi
exit 0
