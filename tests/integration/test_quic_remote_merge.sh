#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One remote per id: an inbound connection over UDP merges into the existing remote of its id after its handshake, and keeps working.
# Runs the C test binary quic_remote_merge (see quic_remote_merge.c); it prints "N passed, M failed".
set -uo pipefail
BUILD=${1:?usage: test_quic_remote_merge.sh BUILD_DIR}
BIN="$BUILD/tests/quic_remote_merge"
[ -x "$BIN" ] || { echo "not built: $BIN" >&2; exit 1; }
timeout 90 "$BIN" 2>&1
rc=$?
[ "$rc" -eq 0 ] || echo "quic_remote_merge failed (exit $rc)"
exit "$rc"
