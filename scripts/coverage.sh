#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Line and branch coverage per folder, from a build configured with
# -DKW_COVERAGE=ON (make coverage does that):
#   scripts/coverage.sh BUILD [CTEST_REGEX]
# Clears the counters, runs the tests (all, or those matching the regex),
# then asks gcovr for a per-file summary and adds it up per folder
# (src/core, src/net, src/endpoint, src/relay, tools). The per-file table
# and an HTML report are left in BUILD/coverage/.
set -euo pipefail
build=${1:?usage: scripts/coverage.sh BUILD [CTEST_REGEX]}
regex=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
out=$build/coverage
mkdir -p "$out"
find "$build" -name '*.gcda' -delete
rc=0
if [ -n "$regex" ]; then
  (cd "$build" && ctest --output-on-failure -j "${JOBS:-2}" -R "$regex") || rc=$?
else
  (cd "$build" && ctest --output-on-failure -j "${JOBS:-2}") || rc=$?
fi
[ $rc -eq 0 ] || echo "coverage: some tests failed (ctest exit $rc); figures below count what ran" >&2
# only the shipped code: src/ and tools/; the tests themselves are not counted
gcovr -r "$root" --object-directory "$build" \
  --filter "$root/src/" --filter "$root/tools/" \
  --exclude-unreachable-branches \
  --json-summary "$out/summary.json" --txt "$out/files.txt" \
  --html-details "$out/index.html" >/dev/null
python3 - "$out/summary.json" <<'PY'
import json, sys
files = json.load(open(sys.argv[1]))["files"]
groups = {}
for f in files:
    name = f["filename"]
    parts = name.split("/")
    key = "/".join(parts[:2]) if parts[0] == "src" else parts[0]
    g = groups.setdefault(key, [0, 0, 0, 0])
    g[0] += f["line_covered"]; g[1] += f["line_total"]
    g[2] += f["branch_covered"]; g[3] += f["branch_total"]
def pct(a, b):
    return "%5.1f%%" % (100.0 * a / b) if b else "    -"
print("%-14s %8s %14s %8s %14s" % ("folder", "lines", "", "branches", ""))
tot = [0, 0, 0, 0]
for k in sorted(groups):
    g = groups[k]
    tot = [a + b for a, b in zip(tot, g)]
    print("%-14s %8s %6d of %6d %8s %6d of %6d" % (k, pct(g[0], g[1]), g[0], g[1], pct(g[2], g[3]), g[2], g[3]))
print("%-14s %8s %6d of %6d %8s %6d of %6d" % ("all", pct(tot[0], tot[1]), tot[0], tot[1], pct(tot[2], tot[3]), tot[2], tot[3]))
PY
echo "coverage: per file in $out/files.txt, HTML in $out/index.html"
exit $rc
