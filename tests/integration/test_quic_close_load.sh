#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kw_endpoint_close of a listener while 10 connections stream at full speed.
# Runs the C test binary quic_close_load (see quic_close_load.c); it prints "N passed, M failed".
set -uo pipefail
BUILD=${1:?usage: test_quic_close_load.sh BUILD_DIR}
BIN="$BUILD/tests/quic_close_load"
[ -x "$BIN" ] || { echo "not built: $BIN" >&2; exit 1; }
timeout 150 "$BIN" 2>&1
rc=$?
[ "$rc" -eq 0 ] || echo "quic_close_load failed (exit $rc)"
exit "$rc"
