#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Unidirectional streams close on the receiver and return their stream credit.
# Runs the C test binary quic_uni_credit (see quic_uni_credit.c); it prints "N passed, M failed".
set -uo pipefail
BUILD=${1:?usage: test_quic_uni_credit.sh BUILD_DIR}
BIN="$BUILD/tests/quic_uni_credit"
[ -x "$BIN" ] || { echo "not built: $BIN" >&2; exit 1; }
timeout 90 "$BIN" 2>&1
rc=$?
[ "$rc" -eq 0 ] || echo "quic_uni_credit failed (exit $rc)"
exit "$rc"
