#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A flood of client Initials (100/s) does not lock a real client out: Retry past 16 handshakes in progress.
# Runs the C test binary quic_handshake_flood (see quic_handshake_flood.c); it prints "N passed, M failed".
set -uo pipefail
BUILD=${1:?usage: test_quic_handshake_flood.sh BUILD_DIR}
BIN="$BUILD/tests/quic_handshake_flood"
[ -x "$BIN" ] || { echo "not built: $BIN" >&2; exit 1; }
timeout 150 "$BIN" 2>&1
rc=$?
[ "$rc" -eq 0 ] || echo "quic_handshake_flood failed (exit $rc)"
exit "$rc"
