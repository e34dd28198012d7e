#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kw__tls_stream on loopback: handshake with a generated certificate,
# 8 MiB echoed byte-exact with back-pressure, verification failures,
# connection refused, graceful close, the write high watermark and
# plaintext garbage at a TLS server.
set -euo pipefail
BUILD=${1:?usage: test_tls_stream.sh BUILD_DIR}
BIN="$BUILD/tests/tls_stream_echo"
[ -x "$BIN" ] || BIN="$BUILD/tls_stream_echo"
[ -x "$BIN" ] || BIN=$(find "$BUILD" -name tls_stream_echo -type f -perm -u+x | head -n1)
TMP=$(mktemp -d)
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT

pass=0 fail=0
for c in echo wrongca wrongname dnsname refused close full garbage; do
  if timeout 60 "$BIN" "$c" "$TMP" >"$TMP/$c.out" 2>"$TMP/$c.err"; then
    pass=$((pass + 1)); echo "ok - $c"
  else
    fail=$((fail + 1)); echo "not ok - $c"; cat "$TMP/$c.err" >&2
  fi
done
# the generated certificate: PEM, P-256, 1 year, SANs localhost + 127.0.0.1
if openssl x509 -in "$TMP/ca-echo.pem" -noout -text 2>/dev/null |
     grep -q 'DNS:localhost' &&
   openssl x509 -in "$TMP/ca-echo.pem" -noout -text | grep -q 'IP Address:127.0.0.1' &&
   openssl x509 -in "$TMP/ca-echo.pem" -noout -text | grep -q 'prime256v1' &&
   openssl x509 -in "$TMP/ca-echo.pem" -noout -checkend $((360 * 86400)) >/dev/null &&
   ! openssl x509 -in "$TMP/ca-echo.pem" -noout -checkend $((370 * 86400)) >/dev/null; then
  pass=$((pass + 1)); echo "ok - certificate"
else
  fail=$((fail + 1)); echo "not ok - certificate"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
