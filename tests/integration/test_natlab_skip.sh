#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Where network namespaces cannot be entered (a container or chroot in
# which `ip netns exec` fails), a NAT-lab test skips (exit 77) and says why
# instead of failing. Here `ip netns exec` is made to fail by an `ip` ahead
# of the real one in PATH, which passes every other command through.
set -uo pipefail
BUILD=${1:?usage: test_natlab_skip.sh BUILD}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
pass=0 fail=0
check() {
  local what=$1; shift
  if "$@"; then pass=$((pass + 1)); echo "ok - $what"; else fail=$((fail + 1)); echo "FAIL: $what"; fi
}
real_ip=$(command -v ip || echo /sbin/ip)
mkdir "$WORK/bin"
cat >"$WORK/bin/ip" <<EOS
#!/bin/sh
if [ "\$1" = netns ] && [ "\$2" = exec ]; then
  echo "setting the network namespace failed: Operation not permitted" >&2
  exit 1
fi
exec "$real_ip" "\$@"
EOS
chmod +x "$WORK/bin/ip"
PATH="$WORK/bin:$PATH" bash "$SRC/tests/natlab/test_candidates.sh" "$BUILD" >"$WORK/out" 2>&1
rc=$?
check "a NAT-lab test skips where namespaces cannot be entered (exit $rc)" test "$rc" -eq 77
if [ "$(id -u)" = 0 ]; then
  check "it says why" grep -q "cannot enter a network namespace" "$WORK/out"
  check "it leaves no namespace behind" bash -c "! ip netns list | grep -q kwprobe"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
