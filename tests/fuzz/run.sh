#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every libFuzzer target of a fuzz build for SECONDS each, on a copy of
# its seed corpus (tests/fuzz/corpus/<target>/), so the repository is never
# modified. Crash inputs are kept under BUILD_DIR/fuzz-artifacts/<target>/.
#
#   CC=clang cmake -S . -B build-fuzz -DKW_FUZZ=ON -DKW_TESTS=OFF
#   cmake --build build-fuzz -j2
#   tests/fuzz/run.sh build-fuzz 60
# JOBS=N (default 2) targets run at the same time.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$1
secs=$2
case $secs in
  '' | *[!0-9]*) echo "run.sh: SECONDS must be a whole number" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
bindir=$build/tests/fuzz

work=$(mktemp -d "${TMPDIR:-/tmp}/kw-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

# JOBS targets run at once (default 2, the CI machine's cores); each
# reports when all are done, in the order of their names
jobs=${JOBS:-2}
case $jobs in
  '' | *[!0-9]* | 0) jobs=2 ;;
esac

# run_one NAME: one target on its copy of the corpus; leaves rc, seeds and
# the final corpus size in $work/NAME/
run_one() {
  local name=$1 bin=$bindir/$1 corpus=$work/$1/corpus seeds=0 dict=() rc
  mkdir -p "$corpus"
  if [ -d "$here/corpus/$name" ]; then
    cp -R "$here/corpus/$name/." "$corpus/"
    seeds=$(find "$here/corpus/$name" -type f | wc -l)
  fi
  if [ -f "$here/$name.dict" ]; then
    dict=(-dict="$here/$name.dict")
  fi
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/$name/" "${dict[@]}" \
    "$corpus" >"$work/$name/log" 2>&1
  rc=$?
  echo "$seeds" >"$work/$name/seeds"
  echo "$rc" >"$work/$name/rc"
}

names=()
for bin in "$bindir"/fuzz_*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  names+=("$(basename "$bin")")
done
found=${#names[@]}
running=0
for name in "${names[@]}"; do
  if [ $running -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$name" &
  running=$((running + 1))
done
wait

passed=0
failed=0
for name in "${names[@]}"; do
  log=$work/$name/log
  rc=$(cat "$work/$name/rc" 2>/dev/null || echo 1)
  seeds=$(cat "$work/$name/seeds" 2>/dev/null || echo 0)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  now=$(find "$work/$name/corpus" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "$name: ok, ${runs:-?} runs in ${secs}s, corpus $seeds -> $now"
  else
    failed=$((failed + 1))
    keep=$build/fuzz-artifacts/$name
    mkdir -p "$keep"
    for f in "$work/$name"/crash-* "$work/$name"/leak-* \
      "$work/$name"/timeout-* "$work/$name"/oom-*; do
      [ -e "$f" ] && cp "$f" "$keep/"
    done
    echo "$name: FAILED (exit $rc), inputs kept in $keep; log tail:"
    tail -n 30 "$log" | sed 's/^/    /'
  fi
done

if [ $found -eq 0 ]; then
  echo "fuzz: no fuzz_* binaries in $bindir (configure with CC=clang -DKW_FUZZ=ON)"
  exit 1
fi
echo "fuzz: $passed passed, $failed failed"
[ $failed -eq 0 ]
