#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kw_stream_write_owned: no copy, each buffer released exactly once (after its acknowledgement, or when the connection is freed).
# Runs the C test binary quic_write_owned (see quic_write_owned.c); it prints "N passed, M failed".
set -uo pipefail
BUILD=${1:?usage: test_quic_write_owned.sh BUILD_DIR}
BIN="$BUILD/tests/quic_write_owned"
[ -x "$BIN" ] || { echo "not built: $BIN" >&2; exit 1; }
timeout 90 "$BIN" 2>&1
rc=$?
[ "$rc" -eq 0 ] || echo "quic_write_owned failed (exit $rc)"
exit "$rc"
