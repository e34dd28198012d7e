#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# 1,000 concurrent echo streams on one connection, the stream limit, uni streams.
# Runs the C test binary quic_streams (see quic_streams.c); it prints "N passed, M failed".
set -uo pipefail
BUILD=${1:?usage: test_quic_streams.sh BUILD_DIR}
BIN="$BUILD/tests/quic_streams"
[ -x "$BIN" ] || { echo "not built: $BIN" >&2; exit 1; }
timeout 150 "$BIN" 2>&1
rc=$?
[ "$rc" -eq 0 ] || echo "quic_streams failed (exit $rc)"
exit "$rc"
