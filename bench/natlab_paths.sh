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
#     64) MiB, `keyway connect` on b receives (to /dev/null); MB/s over the
#     whole run (handshake and relay phase included) and the receiver's
#     paths in order (its --json path events: relay>direct), so a direct
#     path given up under loss shows (relay>direct>relay);
#   iperf3 TCP a -> b with -C cubic and -C bbr for KW_PATHS_SECS (default 10)
#     s through the same NATs and links (b's router forwards 198.18.0.2:5201).
# Every run is bounded (KW_PATHS_TIMEOUT, default 120 s per keyway run).
# Prints one table: MB/s per case and the ratios keyway/iperf3 (same CC and
# keyway / TCP-BBR), each lossy keyway figure against the same lab without
# loss, and per loss how many runs went direct and kept the direct path.
# A keyway run its timeout stopped still counts with what it moved (marked
# *). Skips (exit 0) without root.
# KW_PATHS_CC (default "cubic bbr") picks keyway's controllers, KW_PATHS_REPS
# (default 2) the alternating rounds;
# KW_PATHS_KEEP=DIR keeps the logs (KW_PATHS_VERBOSE=1: with -v).
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
CCS=${KW_PATHS_CC:-cubic bbr}
TMO=${KW_PATHS_TIMEOUT:-120}
REPS=${KW_PATHS_REPS:-2}
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
}

common=(--ephemeral --json --relay https://198.18.0.10:8443)
[ -n "${KW_PATHS_VERBOSE:-}" ] && common+=(-v) # logs in KW_PATHS_KEEP

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
    printf '%s\tkeyway-%s\t-\tnone\tno-ticket\n' "$loss" "$cc" >>"$results"
    return
  fi
  ticket=$(cat "$t")
  t0=$(date +%s.%N)
  bytes=$(lab_exec b timeout "$TMO" "$KW" connect "${common[@]}" \
    --relay-ca "$work/cert.pem" --cc "$cc" "$ticket" </dev/null \
    2>"$work/c-$loss-$cc-$n.err" | wc -c)
  rc=${PIPESTATUS[0]}
  t1=$(date +%s.%N)
  timeout 20 tail --pid="$lpid" -f /dev/null
  # the receiver's paths in order, repeats dropped: relay>direct
  last=$(grep -o '"event":"path".*"kind":"[a-z]*"' "$work/c-$loss-$cc-$n.err" |
    grep -o '"kind":"[a-z]*"' | cut -d'"' -f4 | uniq | paste -sd'>')
  local mbs status=ok note=""
  mbs=$(awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.1f", b / (z - a) / 1e6 }')
  if [ "$bytes" -ne $((MIB << 20)) ]; then
    status=short
    note=" (short: $bytes of $((MIB << 20)) bytes when it ended)"
  fi
  printf '%s\tkeyway-%s\t%s\t%s\t%s\n' "$loss" "$cc" "$mbs" "${last:-none}" "$status" >>"$results"
  echo "   loss $loss% keyway --cc $cc: $mbs MB/s$note, ended on ${last:-no path} (rc $rc)"
}

iperf_run() { # iperf_run LOSS CC N
  local loss=$1 cc=$2 n=$3 spid mbs
  lab_bg b "$work/is-$loss-$cc-$n.log" iperf3 -s -1 -B 198.18.2.10 >/dev/null
  spid=${LAB_PIDS[-1]}
  for _ in $(seq 50); do
    grep -q 'Server listening' "$work/is-$loss-$cc-$n.log" 2>/dev/null && break
    sleep 0.1
  done
  lab_exec a timeout $((SECS + 30)) iperf3 -c 198.18.0.2 -t "$SECS" -C "$cc" -J \
    >"$work/ic-$loss-$cc-$n.json" 2>/dev/null
  timeout 10 tail --pid="$spid" -f /dev/null
  mbs=$(jq -r '.end.sum_received | .bytes / .seconds / 1e6 | . * 10 | round / 10' \
    "$work/ic-$loss-$cc-$n.json" 2>/dev/null)
  printf '%s\ttcp-%s\t%s\t-\tok\n' "$loss" "$cc" "${mbs:--}" >>"$results"
  echo "   loss $loss% iperf3 TCP -C $cc: ${mbs:--} MB/s"
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
      for cc in cubic bbr; do
        case " $tcp_ccs " in *" $cc "*) iperf_run "$loss" "$cc" "$n" ;; esac
      done
    fi
  done
  lab_cleanup
done

python3 - "$results" <<'PY'
import sys, re, collections
rows = collections.defaultdict(list)   # (loss, what) -> [(MB/s, short)]
ended = collections.defaultdict(list)
for line in open(sys.argv[1]):
    loss, what, mbs, last, status = line.rstrip("\n").split("\t")
    if re.match(r"^[0-9.]+$", mbs):
        rows[(loss, what)].append((float(mbs), status == "short"))
    else:
        rows[(loss, what)].append(None)
    if what.startswith("keyway"):
        ended[(loss, what)].append(last)
losses = sorted({k[0] for k in rows}, key=float)
whats = sorted({k[1] for k in rows})
def best(v):
    v = [x for x in (v or []) if x is not None]
    return max(v) if v else None
def fig(x):
    return "%.1f%s" % (x[0], "*" if x[1] else "")
def fmt(v):
    ok = sorted(x for x in v if x is not None)
    if not ok:
        return "-"
    return fig(ok[0]) if len(ok) == 1 or ok[0] == ok[-1] else "%s-%s" % (fig(ok[0]), fig(ok[-1]))
def ratio(k, t):
    if not k or not t or t[0] == 0:
        return "-"
    return "%.2f%s" % (k[0] / t[0], "*" if k[1] or t[1] else "")
print()
print("%-6s %-14s %16s %10s %10s  %s" % ("loss%", "sender", "MB/s (runs)", "/TCP same", "/TCP-BBR", "keyway paths, each run"))
for loss in losses:
    for w in whats:
        v = rows.get((loss, w))
        if v is None:
            continue
        r1 = r2 = "-"
        if w.startswith("keyway"):
            cc = w.split("-", 1)[1]
            k = best(v)
            r1 = ratio(k, best(rows.get((loss, "tcp-" + cc))))
            r2 = ratio(k, best(rows.get((loss, "tcp-bbr"))))
        print("%-6s %-14s %16s %10s %10s  %s" % (loss, w, fmt(v), r1, r2,
              " ".join(ended.get((loss, w), []))))
print("(ratios from the best run of each; keyway MB/s count the whole run: start-up, handshake, relay phase;")
print(" * a keyway run that had not finished when its timeout stopped it: MB/s of what it moved)")
nol = {w: best(rows.get(("0", w))) for w in whats}
for loss in losses:
    if loss == "0":
        continue
    for w in whats:
        k = best(rows.get((loss, w)))
        if w.startswith("keyway") and nol.get(w) and k:
            print("keyway %s at %s%% loss: %s of its no-loss figure" % (w.split("-", 1)[1], loss, ratio(k, nol[w])))
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
