#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every libFuzzer target of a fuzz build for SECONDS each, on a copy of
# its seed corpus (tests/fuzz/corpus/<target>/), so the repository is never
# modified. Crash inputs are kept under BUILD_DIR/fuzz-artifacts/<target>/.
#
#   CC=clang cmake -S . -B build-fuzz -DKW_FUZZ=ON -DKW_TESTS=OFF
#   cmake --build build-fuzz -j2
#   tests/fuzz/run.sh build-fuzz 60
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

passed=0
failed=0
found=0
for bin in "$bindir"/fuzz_*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  name=$(basename "$bin")
  found=$((found + 1))
  corpus=$work/$name/corpus
  mkdir -p "$corpus"
  seeds=0
  if [ -d "$here/corpus/$name" ]; then
    cp -R "$here/corpus/$name/." "$corpus/"
    seeds=$(find "$here/corpus/$name" -type f | wc -l)
  fi
  dict=()
  if [ -f "$here/$name.dict" ]; then
    dict=(-dict="$here/$name.dict")
  fi
  log=$work/$name/log
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/$name/" "${dict[@]}" \
    "$corpus" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  now=$(find "$corpus" -type f | wc -l)
  if [ $rc -eq 0 ]; then
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
