#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Loopback benchmarks, side by side with iperf3 on the same machine and run.
#
#   bench/loopback.sh BUILD_DIR
#
# 1. keyway-bench: library throughput (1 stream, 8 streams), connect-to-
#    first-byte latency, idle endpoint RSS.
# 2. The CLI end to end: `keyway listen` | `keyway connect` moving 1 GiB, and
#    the CPU time (user + system) each side spent per GiB.
# 3. iperf3 over TCP and over UDP (-b 0 -l 1400) for 5 s each.
# 4. A table of MB/s with the ratios keyway/iperf3-TCP and keyway/iperf3-UDP,
#    and the size of libkeyway.so.
# Figures are printed, never judged: the exit status is 0 unless a tool is
# missing or a run breaks. Traffic stays on 127.0.0.1 and ::1.
set -euo pipefail

BUILD=${1:?usage: bench/loopback.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd)
BENCH="$BUILD/keyway-bench"
CLI="$BUILD/keyway"
MIB=${KW_BENCH_MIB:-1024}
SECS=${KW_BENCH_SECS:-5}

[ -x "$BENCH" ] || { echo "loopback.sh: $BENCH not built" >&2; exit 1; }
command -v jq >/dev/null || { echo "loopback.sh: needs jq" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
# mbps BYTES SECONDS -> MB/s (10^6 bytes per second)
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / s / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }

build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
echo "== keyway loopback benchmark ($(uname -r), $(nproc) CPUs, load $(cut -d" " -f1-3 /proc/loadavg), build: ${build_type:-unknown})"

# ---- 1. library figures -----------------------------------------------------
echo "-- keyway-bench"
"$BENCH" throughput --mib "$MIB" --json >"$TMP/tp1.json"
"$BENCH" throughput --mib "$MIB" --streams 8 --json >"$TMP/tp8.json"
"$BENCH" latency -n 200 --json >"$TMP/lat.json"
"$BENCH" idle-rss --json >"$TMP/rss.json"
cat "$TMP"/tp1.json "$TMP"/tp8.json "$TMP"/lat.json "$TMP"/rss.json
lib1=$(jq -r '.mbytes_per_s * 10 | round / 10' "$TMP/tp1.json")
lib8=$(jq -r '.mbytes_per_s * 10 | round / 10' "$TMP/tp8.json")

# ---- 2. the CLI end to end --------------------------------------------------
echo "-- keyway CLI: listen | connect, $MIB MiB"
cli=""
if [ -x "$CLI" ] && "$CLI" --help 2>&1 | grep -q 'listen'; then
  ticket="$TMP/ticket"
  binds=(--ephemeral --bind 127.0.0.1:0 --bind '[::1]:0')
  # CPU time of each side (user + system) when /usr/bin/time is there
  tl=() tc=()
  if [ -x /usr/bin/time ]; then
    tl=(/usr/bin/time -f "%U %S" -o "$TMP/listen.cpu")
    tc=(/usr/bin/time -f "%U %S" -o "$TMP/connect.cpu")
  fi
  mkfifo "$TMP/listen.out"
  wc -c <"$TMP/listen.out" >"$TMP/listen.count" &
  counter=$!
  PIDS+=("$counter")
  "${tl[@]}" "$CLI" listen --once "${binds[@]}" --ticket-file "$ticket" </dev/null \
    >"$TMP/listen.out" 2>"$TMP/listen.err" &
  PIDS+=($!)
  for _ in $(seq 100); do [ -s "$ticket" ] && break; sleep 0.05; done
  if [ -s "$ticket" ]; then
    t0=$(now)
    if head -c "${MIB}M" /dev/zero |
        timeout 300 "${tc[@]}" "$CLI" connect "${binds[@]}" "$(cat "$ticket")" 2>"$TMP/connect.err"; then
      t1=$(now)
      wait "$counter" || true
      got=$(cat "$TMP/listen.count")
      secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
      if [ "$got" -eq $((MIB << 20)) ]; then
        cli=$(mbps "$got" "$secs")
        echo "$got bytes in ${secs}s (process start-up and handshake included): $cli MB/s"
        for _ in $(seq 50); do [ -s "$TMP/listen.cpu" ] && break; sleep 0.1; done
        for side in connect listen; do
          [ -s "$TMP/$side.cpu" ] && awk -v s="$side" -v b="$got" '{ printf "CPU %s (%s): %.2f s per GiB (user %.2f, system %.2f)\n", s, s == "connect" ? "sender" : "receiver", ($1 + $2) * 1073741824 / b, $1 * 1073741824 / b, $2 * 1073741824 / b }' "$TMP/$side.cpu"
        done
      else
        echo "NOTE: the listener received $got of $((MIB << 20)) bytes; no CLI figure"
      fi
    else
      echo "NOTE: keyway connect failed; no CLI figure:"; sed 's/^/  /' "$TMP/connect.err"
    fi
  else
    echo "NOTE: keyway listen wrote no ticket; no CLI figure:"; sed 's/^/  /' "$TMP/listen.err"
  fi
else
  echo "NOTE: the keyway CLI is not built (or has no listen); skipping the CLI run"
fi

# ---- 3. iperf3 ---------------------------------------------------------------
tcp="" udp="" udp_loss=""
if command -v iperf3 >/dev/null; then
  # iperf3_run NAME CLIENT-ARGS...: a one-off server on a free port, one client
  iperf3_run() {
    local name=$1; shift
    for _ in 1 2 3 4 5; do
      local port=$((20000 + RANDOM % 40000))
      iperf3 -s -1 -B 127.0.0.1 -p "$port" >"$TMP/iperf3-s.log" 2>&1 &
      local spid=$!
      PIDS+=("$spid")
      sleep 0.3
      kill -0 "$spid" 2>/dev/null || continue # port taken: try another
      iperf3 -c 127.0.0.1 -p "$port" -t "$SECS" -J "$@" >"$TMP/$name.json"
      wait "$spid" || true
      return 0
    done
    return 1
  }
  echo "-- iperf3 TCP, ${SECS}s"
  iperf3_run tcp
  tcp=$(jq -r '.end.sum_received.bytes / .end.sum_received.seconds / 1e6 | . * 10 | round / 10' "$TMP/tcp.json")
  echo "$tcp MB/s"
  echo "-- iperf3 UDP -b 0 -l 1400, ${SECS}s"
  iperf3_run udp -u -b 0 -l 1400
  udp=$(jq -r '(.end.sum_received // .end.sum) | .bytes / .seconds / 1e6 | . * 10 | round / 10' "$TMP/udp.json")
  udp_loss=$(jq -r '(.end.sum_received // .end.sum) | .lost_percent | . * 10 | round / 10' "$TMP/udp.json")
  echo "$udp MB/s received, $udp_loss% lost"
else
  echo "NOTE: iperf3 is not installed; no comparison (apt-get install iperf3)"
fi

# ---- 4. summary ----------------------------------------------------------------
so="$BUILD/libkeyway.so"
so_real=$(readlink -f "$so" 2>/dev/null || true)
echo
echo "== summary (MB/s = 10^6 bytes/s, loopback)"
printf '%-34s %10s %12s %12s\n' "run" "MB/s" "/iperf3-TCP" "/iperf3-UDP"
row() { printf '%-34s %10s %12s %12s\n' "$1" "${2:--}" "$(ratio "$2" "$tcp")" "$(ratio "$2" "$udp")"; }
row "keyway library, 1 stream" "$lib1"
row "keyway library, 8 streams" "$lib8"
row "keyway CLI, listen|connect" "$cli"
printf '%-34s %10s\n' "iperf3 TCP" "${tcp:--}"
printf '%-34s %10s   (%s%% lost)\n' "iperf3 UDP -b 0 -l 1400" "${udp:--}" "${udp_loss:--}"
echo
jq -r '"connect to first echoed byte: median \(.median_ms * 100 | round / 100) ms, p99 \(.p99_ms * 100 | round / 100) ms over \(.connections) connections (handshake median \(.handshake_median_ms * 100 | round / 100) ms)"' "$TMP/lat.json"
jq -r '"idle endpoint: VmRSS \(.vmrss_kib) KiB, VmHWM \(.vmhwm_kib) KiB (process before it: \(.rss_before_kib) KiB)"' "$TMP/rss.json"
if [ -n "$so_real" ] && [ -f "$so_real" ]; then
  strip -o "$TMP/libkeyway.stripped.so" "$so_real" 2>/dev/null || cp "$so_real" "$TMP/libkeyway.stripped.so"
  printf 'libkeyway.so: %s KiB as built, %s KiB stripped\n' \
    $(( $(stat -c %s "$so_real") / 1024 )) $(( $(stat -c %s "$TMP/libkeyway.stripped.so") / 1024 ))
fi
