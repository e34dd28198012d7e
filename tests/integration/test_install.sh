#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make install, as a user or a packager sees it: the build installs into a
# DESTDIR staging folder (the configured prefix below it); a program
# compiled and linked against the installed header and library through the
# installed keyway.pc alone runs (LD_LIBRARY_PATH: a DESTDIR is not the
# system); the systemd unit names the installed keyway-relay; no ldconfig
# runs for a DESTDIR. The Makefile passes PREFIX, prefix and DESTDIR on.
set -euo pipefail
BUILD=$(cd "${1:?usage: test_install.sh BUILD_DIR}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$BUILD/CMakeCache.txt")
case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac
stage=$TMP/stage

if DESTDIR=$stage cmake --install "$BUILD" >"$TMP/install.log" 2>&1; then
  ok "cmake --install with DESTDIR"
else
  bad "cmake --install with DESTDIR"
  cat "$TMP/install.log"
fi
for f in "$prefix/include/keyway.h" "$libdir/libkeyway.so.0" "$libdir/libkeyway.a" \
  "$libdir/pkgconfig/keyway.pc" "$prefix/bin/keyway" "$prefix/bin/keyway-relay" \
  "$libdir/cmake/keyway/keywayConfig.cmake"; do
  if [ -e "$stage$f" ]; then ok "installed $f"; else bad "missing $f under DESTDIR"; fi
done
if grep -qi ldconfig "$TMP/install.log"; then
  bad "no ldconfig for a DESTDIR install"
  grep -i ldconfig "$TMP/install.log"
else
  ok "no ldconfig for a DESTDIR install"
fi

# the unit names the installed binary
unit=$stage$prefix/lib/systemd/system/keyway-relay.service
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit" 2>/dev/null || true)
if [ "$exec_start" = "$prefix/bin/keyway-relay" ] && [ -x "$stage$exec_start" ]; then
  ok "unit's ExecStart is $exec_start"
else
  bad "unit's ExecStart is '$exec_start', want $prefix/bin/keyway-relay"
fi

# a program built with nothing but the installed files and pkg-config
cat >"$TMP/prog.c" <<'EOF'
#include <stdio.h>
#include <string.h>

#include <keyway.h>

int main(void) {
  kw_config *cfg;
  kw_endpoint *ep;
  kw_sockaddr a;
  if (kw_config_new(&cfg) != KW_OK || kw_sockaddr_parse("127.0.0.1:0", &a) != KW_OK ||
      kw_config_add_bind(cfg, &a) != KW_OK ||
      kw_config_set_families(cfg, true, false) != KW_OK)
    return 1;
  kw_err err = kw_endpoint_new(cfg, &ep);
  kw_config_free(cfg);
  if (err != KW_OK) {
    fprintf(stderr, "endpoint: %s\n", kw_strerror(err));
    return 1;
  }
  uint8_t id[KW_ID_LEN];
  char s[KW_ID_STRLEN + 1];
  kw_endpoint_id(ep, id);
  kw_id_to_string(id, s, sizeof s);
  printf("keyway %s id %s\n", KW_VERSION, s);
  kw_endpoint_free(ep);
  return strlen(s) == KW_ID_STRLEN ? 0 : 1;
}
EOF
export PKG_CONFIG_SYSROOT_DIR=$stage
export PKG_CONFIG_PATH=$stage$libdir/pkgconfig
san=()
[ -n "${KW_SANITIZED:-}" ] && san=('-fsanitize=address,undefined')
flags=$(pkg-config --cflags --libs keyway 2>"$TMP/cc.log" || true)
# shellcheck disable=SC2086 # pkg-config's words
if [ -n "$flags" ] &&
  cc -Wall -Werror "${san[@]}" -o "$TMP/prog" "$TMP/prog.c" $flags 2>>"$TMP/cc.log"; then
  ok "compiled against the installed keyway.pc ($flags)"
else
  bad "compile against the installed keyway.pc"
  cat "$TMP/cc.log"
fi
if [ -x "$TMP/prog" ]; then
  # (ldd's whole output first: grep -q closing the pipe early would fail
  # the pipeline under pipefail)
  libs=$(LD_LIBRARY_PATH=$stage$libdir ldd "$TMP/prog" 2>&1 || true)
  if out=$(LD_LIBRARY_PATH=$stage$libdir "$TMP/prog" 2>&1) &&
    grep -q "libkeyway.so.0 => $stage$libdir/" <<<"$libs"; then
    ok "the program runs with the installed library: $out"
  else
    bad "the program with the installed library: $out"
    echo "$libs"
  fi
fi

# the Makefile hands PREFIX / prefix / DESTDIR to CMake (dry run)
dry=$(make -n -C "$SRC" BUILD="$BUILD" install PREFIX=/opt/kwtest DESTDIR=/stage 2>/dev/null || true)
if grep -q -- '-DCMAKE_INSTALL_PREFIX=/opt/kwtest' <<<"$dry" &&
  grep -q 'DESTDIR=/stage cmake --install' <<<"$dry"; then
  ok "make install PREFIX=... DESTDIR=..."
else
  bad "make install does not pass PREFIX and DESTDIR on: $dry"
fi
dry=$(make -n -C "$SRC" BUILD="$BUILD" install prefix=/opt/kwlower 2>/dev/null || true)
if grep -q -- '-DCMAKE_INSTALL_PREFIX=/opt/kwlower' <<<"$dry"; then
  ok "make install prefix=..."
else
  bad "make install does not pass prefix on: $dry"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
