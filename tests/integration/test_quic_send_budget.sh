#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Remotes that open 100 streams each and never read hold at most the send budgets (16 MiB a connection, 24 MiB the endpoint here) of the sender.
# Runs the C test binary quic_send_budget (see quic_send_budget.c); it prints "N passed, M failed".
set -uo pipefail
BUILD=${1:?usage: test_quic_send_budget.sh BUILD_DIR}
BIN="$BUILD/tests/quic_send_budget"
[ -x "$BIN" ] || { echo "not built: $BIN" >&2; exit 1; }
timeout 150 "$BIN" 2>&1
rc=$?
[ "$rc" -eq 0 ] || echo "quic_send_budget failed (exit $rc)"
exit "$rc"
