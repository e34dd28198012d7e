#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# 100 client endpoints, then one endpoint with 100 connections, to one listener.
# Runs the C test binary quic_conns (see quic_conns.c); it prints "N passed, M failed".
set -uo pipefail
BUILD=${1:?usage: test_quic_conns.sh BUILD_DIR}
BIN="$BUILD/tests/quic_conns"
[ -x "$BIN" ] || { echo "not built: $BIN" >&2; exit 1; }
timeout 150 "$BIN" 2>&1
rc=$?
[ "$rc" -eq 0 ] || echo "quic_conns failed (exit $rc)"
exit "$rc"
