#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# keyway is MIT-licensed: LICENSE says so, and every source file (C,
# headers, shell, Python, CMake, Makefile) carries an SPDX line near its top.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
pass=0 fail=0
check() {
  local what=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}
check "LICENSE is the MIT license" grep -q '^MIT License' "$src/LICENSE"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  files=$(git -C "$src" ls-files -- '*.c' '*.h' '*.sh' '*.py' 'CMakeLists.txt' \
    '*.cmake' '*.cmake.in' 'Makefile' '.ci/run' 'run')
else
  files=$(cd "$src" && find . -path ./build\* -prune -o \( -name '*.[ch]' -o \
    -name '*.sh' -o -name '*.py' -o -name CMakeLists.txt -o -name Makefile \) \
    -type f -print | sed 's|^\./||')
fi
missing=""
n=0
for f in $files; do
  [ -f "$src/$f" ] || continue
  n=$((n + 1))
  head -3 "$src/$f" | grep -q 'SPDX-License-Identifier: MIT' || missing="$missing $f"
done
check "every one of $n source files names its license (SPDX):${missing:- yes}" test -z "$missing"
check "kw_version_string is declared beside KW_VERSION" \
  grep -q 'kw_version_string' "$src/include/keyway.h"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
