#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# QUIC datagrams on loopback: 500 each way, the size limit, the per-remote
# queue bound (5 connections to one remote).
# Runs the C test binary quic_datagrams (see quic_datagrams.c); it prints "N passed, M failed".
set -uo pipefail
BUILD=${1:?usage: test_quic_datagrams.sh BUILD_DIR}
BIN="$BUILD/tests/quic_datagrams"
[ -x "$BIN" ] || { echo "not built: $BIN" >&2; exit 1; }
timeout 150 "$BIN" 2>&1
rc=$?
[ "$rc" -eq 0 ] || echo "quic_datagrams failed (exit $rc)"
exit "$rc"
