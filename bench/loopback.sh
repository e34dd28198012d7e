#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Loopback benchmarks, side by side with iperf3 on the same machine and run.
#
#   bench/loopback.sh BUILD_DIR
#
# 1. keyway-bench: library throughput (1 stream copied by kw_stream_write,
#    1 stream handed over by kw_stream_write_owned, 8 streams), connect-to-
#    first-byte latency, idle endpoint RSS.
# 2. The CLI end to end moving 1 GiB, in the issue's setup (`keyway connect
#    < FILE`, `keyway listen --once > /dev/null`) and through pipes, with
#    the CPU time (user + system) each side spent per GiB.
# 3. iperf3 over TCP and over UDP (-b 0 -l 1400) for 5 s each.
# 4. A table of MB/s with the ratios keyway/iperf3-TCP and keyway/iperf3-UDP,
#    the CLI's CPU time per GiB, and the size of libkeyway.so.
# KW_BENCH_MIB (1024) sets the size, KW_BENCH_REPS (3) the CLI runs per case
# (median), KW_BENCH_SECS (5) iperf3's time; KW_BENCH_PARTS ("lib cli
# iperf") picks the parts that run.
# Figures are printed, never judged: the exit status is 0 unless a tool is
# missing or a run breaks. Traffic stays on 127.0.0.1 and ::1.
set -euo pipefail

BUILD=${1:?usage: bench/loopback.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd)
BENCH="$BUILD/keyway-bench"
CLI="$BUILD/keyway"
MIB=${KW_BENCH_MIB:-1024}
SECS=${KW_BENCH_SECS:-5}
PARTS=" ${KW_BENCH_PARTS:-lib cli iperf} "
part() { [[ "$PARTS" == *" $1 "* ]]; }

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
lib1="" lib1o="" lib8=""
if part lib; then
  echo "-- keyway-bench"
  "$BENCH" throughput --mib "$MIB" --json >"$TMP/tp1.json"
  "$BENCH" throughput --mib "$MIB" --owned --json >"$TMP/tp1o.json"
  "$BENCH" throughput --mib "$MIB" --streams 8 --json >"$TMP/tp8.json"
  "$BENCH" latency -n 200 --json >"$TMP/lat.json"
  "$BENCH" idle-rss --json >"$TMP/rss.json"
  cat "$TMP"/tp1.json "$TMP"/tp1o.json "$TMP"/tp8.json "$TMP"/lat.json "$TMP"/rss.json
  lib1=$(jq -r '.mbytes_per_s * 10 | round / 10' "$TMP/tp1.json")
  lib1o=$(jq -r '.mbytes_per_s * 10 | round / 10' "$TMP/tp1o.json")
  lib8=$(jq -r '.mbytes_per_s * 10 | round / 10' "$TMP/tp8.json")
fi

# ---- 2. the CLI end to end --------------------------------------------------
# Two cases, each KW_BENCH_REPS times (median reported):
#   file: the issue's setup, `keyway connect < FILE` (a MIB MiB file in
#         /dev/shm, else $TMPDIR) and `keyway listen --once > /dev/null`;
#         the bytes are the ones the listener reports (--json stats);
#   pipe: `head -c | keyway connect` and `keyway listen > fifo | wc -c`.
# Wall time runs from the start of `keyway connect` to its exit (process
# start-up and handshake included); CPU time (user + system, /usr/bin/time)
# per GiB for each side.
REPS=${KW_BENCH_REPS:-3}
cli_file="" cli_pipe=""
cpu_file_s="" cpu_file_r="" cpu_pipe_s="" cpu_pipe_r=""
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# cli_case MODE N: one run; appends "MB/s sender-cpu/GiB receiver-cpu/GiB"
# to $TMP/MODE.runs, or says why there is no figure
cli_case() {
  local mode=$1 n=$2 ticket="$TMP/ticket" got="" lpid
  local binds=(--ephemeral --bind 127.0.0.1:0 --bind '[::1]:0')
  local tl=() tc=()
  rm -f "$ticket" "$TMP/listen.cpu" "$TMP/connect.cpu" "$TMP/listen.out"
  if [ -x /usr/bin/time ]; then
    tl=(/usr/bin/time -f "%U %S" -o "$TMP/listen.cpu")
    tc=(/usr/bin/time -f "%U %S" -o "$TMP/connect.cpu")
  fi
  if [ "$mode" = pipe ]; then
    mkfifo "$TMP/listen.out"
    wc -c <"$TMP/listen.out" >"$TMP/listen.count" &
    local counter=$!
    PIDS+=("$counter")
    "${tl[@]}" "$CLI" listen --once "${binds[@]}" --ticket-file "$ticket" </dev/null \
      >"$TMP/listen.out" 2>"$TMP/listen.err" &
  else
    "${tl[@]}" "$CLI" listen --once --json "${binds[@]}" --ticket-file "$ticket" </dev/null \
      >/dev/null 2>"$TMP/listen.err" &
  fi
  lpid=$!
  PIDS+=("$lpid")
  for _ in $(seq 100); do [ -s "$ticket" ] && break; sleep 0.05; done
  if [ ! -s "$ticket" ]; then
    echo "NOTE: keyway listen wrote no ticket; no CLI figure:"; sed 's/^/  /' "$TMP/listen.err"
    return 1
  fi
  local t0 t1 ok=0
  t0=$(now)
  if [ "$mode" = pipe ]; then
    head -c "${MIB}M" /dev/zero |
      timeout 300 "${tc[@]}" "$CLI" connect "${binds[@]}" "$(cat "$ticket")" 2>"$TMP/connect.err" && ok=1
  else
    timeout 300 "${tc[@]}" "$CLI" connect "${binds[@]}" "$(cat "$ticket")" \
      <"$FILE" >/dev/null 2>"$TMP/connect.err" && ok=1
  fi
  t1=$(now)
  if [ "$ok" != 1 ]; then
    echo "NOTE: keyway connect failed; no CLI figure:"; sed 's/^/  /' "$TMP/connect.err"
    return 1
  fi
  timeout 30 tail --pid="$lpid" -f /dev/null || true
  wait "$lpid" 2>/dev/null || true
  if [ "$mode" = pipe ]; then
    wait "$counter" || true
    got=$(cat "$TMP/listen.count")
  else
    got=$(grep '"event": *"stats"' "$TMP/listen.err" | jq -r '.bytes_received' 2>/dev/null | tail -1)
  fi
  if [ "${got:-0}" -ne $((MIB << 20)) ]; then
    echo "NOTE: the listener received ${got:-no} of $((MIB << 20)) bytes; no CLI figure"
    return 1
  fi
  local secs mbs cs=- cr=-
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  mbs=$(mbps "$got" "$secs")
  [ -s "$TMP/connect.cpu" ] && cs=$(awk -v b="$got" '{ printf "%.2f", ($1 + $2) * 1073741824 / b }' "$TMP/connect.cpu")
  [ -s "$TMP/listen.cpu" ] && cr=$(awk -v b="$got" '{ printf "%.2f", ($1 + $2) * 1073741824 / b }' "$TMP/listen.cpu")
  printf '%s run %d: %s bytes in %.3fs: %s MB/s; CPU per GiB: sender %s s (user %s), receiver %s s (user %s)\n' \
    "$mode" "$n" "$got" "$secs" "$mbs" "$cs" "$(awk -v b="$got" '{ printf "%.2f", $1 * 1073741824 / b }' "$TMP/connect.cpu" 2>/dev/null)" \
    "$cr" "$(awk -v b="$got" '{ printf "%.2f", $1 * 1073741824 / b }' "$TMP/listen.cpu" 2>/dev/null)"
  echo "$mbs $cs $cr" >>"$TMP/$mode.runs"
}
if ! part cli; then
  :
elif [ -x "$CLI" ] && "$CLI" --help 2>&1 | grep -q 'listen'; then
  shm=/dev/shm
  [ -d "$shm" ] && [ -w "$shm" ] || shm=${TMPDIR:-/tmp}
  FILE=$(mktemp "$shm/kw-bench-file.XXXXXX")
  trap 'rm -f "$FILE"; cleanup' EXIT INT TERM
  head -c "${MIB}M" /dev/zero >"$FILE"
  for mode in file pipe; do
    echo "-- keyway CLI ($mode): $([ $mode = file ] && echo "keyway connect < $MIB MiB file in $shm, keyway listen --once > /dev/null" || echo "head -c ${MIB}M | keyway connect, keyway listen --once > fifo | wc -c"), $REPS run(s)"
    : >"$TMP/$mode.runs"
    for n in $(seq "$REPS"); do cli_case "$mode" "$n" || true; done
  done
  rm -f "$FILE"
  col() { awk -v c="$2" '$c != "-" { print $c }' "$TMP/$1.runs" | median; }
  cli_file=$(col file 1) cpu_file_s=$(col file 2) cpu_file_r=$(col file 3)
  cli_pipe=$(col pipe 1) cpu_pipe_s=$(col pipe 2) cpu_pipe_r=$(col pipe 3)
else
  echo "NOTE: the keyway CLI is not built (or has no listen); skipping the CLI run"
fi

# ---- 3. iperf3 ---------------------------------------------------------------
tcp="" udp="" udp_loss=""
if ! part iperf; then
  :
elif command -v iperf3 >/dev/null; then
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
row "keyway library, 1 stream, owned" "$lib1o"
row "keyway library, 8 streams" "$lib8"
row "keyway CLI, connect < file" "$cli_file"
row "keyway CLI, head -c | connect" "$cli_pipe"
printf '%-34s %10s\n' "iperf3 TCP" "${tcp:--}"
printf '%-34s %10s   (%s%% lost)\n' "iperf3 UDP -b 0 -l 1400" "${udp:--}" "${udp_loss:--}"
echo
echo "CLI CPU time (user + system) per GiB, median of $REPS: connect < file: sender ${cpu_file_s:--} s, receiver ${cpu_file_r:--} s; head -c | connect: sender ${cpu_pipe_s:--} s, receiver ${cpu_pipe_r:--} s"
[ -s "$TMP/lat.json" ] && jq -r '"connect to first echoed byte: median \(.median_ms * 100 | round / 100) ms, p99 \(.p99_ms * 100 | round / 100) ms over \(.connections) connections (handshake median \(.handshake_median_ms * 100 | round / 100) ms)"' "$TMP/lat.json"
[ -s "$TMP/rss.json" ] && jq -r '"idle endpoint: VmRSS \(.vmrss_kib) KiB, VmHWM \(.vmhwm_kib) KiB (process before it: \(.rss_before_kib) KiB)"' "$TMP/rss.json"
if [ -n "$so_real" ] && [ -f "$so_real" ]; then
  strip -o "$TMP/libkeyway.stripped.so" "$so_real" 2>/dev/null || cp "$so_real" "$TMP/libkeyway.stripped.so"
  printf 'libkeyway.so: %s KiB as built, %s KiB stripped\n' \
    $(( $(stat -c %s "$so_real") / 1024 )) $(( $(stat -c %s "$TMP/libkeyway.stripped.so") / 1024 ))
fi
