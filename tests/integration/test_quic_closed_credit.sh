#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A stream that closes before its bytes were consumed (manual consume) gives the connection its flow-control credit back.
# Runs the C test binary quic_closed_credit (see quic_closed_credit.c); it prints "N passed, M failed".
set -uo pipefail
BUILD=${1:?usage: test_quic_closed_credit.sh BUILD_DIR}
BIN="$BUILD/tests/quic_closed_credit"
[ -x "$BIN" ] || { echo "not built: $BIN" >&2; exit 1; }
timeout 90 "$BIN" 2>&1
rc=$?
[ "$rc" -eq 0 ] || echo "quic_closed_credit failed (exit $rc)"
exit "$rc"
