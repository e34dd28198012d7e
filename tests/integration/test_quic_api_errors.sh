#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Error paths of the public API: wrong key, ALPN, timeout, close and reset codes, bad arguments.
# Runs the C test binary quic_api_errors (see quic_api_errors.c); it prints "N passed, M failed".
set -uo pipefail
BUILD=${1:?usage: test_quic_api_errors.sh BUILD_DIR}
BIN="$BUILD/tests/quic_api_errors"
[ -x "$BIN" ] || { echo "not built: $BIN" >&2; exit 1; }
timeout 150 "$BIN" 2>&1
rc=$?
[ "$rc" -eq 0 ] || echo "quic_api_errors failed (exit $rc)"
exit "$rc"
