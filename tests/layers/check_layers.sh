#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The layering rules of docs/ARCHITECTURE.md section 1, checked on the
# sources and on the built binaries.
#   check_layers.sh includes SRCDIR          what each layer's files include
#   check_layers.sh relay    BUILDDIR        what keyway-relay links
#   check_layers.sh unit     BUILDDIR        what the unit tests link
# Prints every violation and exits 1 if there is one.
set -u
mode=${1:?mode}
dir=${2:?dir}
bad=0
fail() { echo "layers: $*" >&2; bad=1; }

# forbid LAYER REGEX WHAT: no file of src/LAYER has an #include matching REGEX.
forbid() {
  local layer=$1 re=$2 what=$3 hits
  hits=$(grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($re)" \
    "$dir"/src/"$layer"/*.[ch] 2>/dev/null)
  if [ -n "$hits" ]; then
    fail "src/$layer must not include $what:"
    echo "$hits" | sed "s|^$dir/||" >&2
  fi
}

case $mode in
includes)
  # core: libc + libsodium only.
  forbid core 'uv\.h|uv/|gnutls/|ngtcp2/|miniupnpc/|natpmp\.h|jansson\.h|pthread\.h' \
    'libuv, GnuTLS, ngtcp2, port-mapping, jansson or thread headers'
  forbid core 'net/|io/|endpoint/|relay/' 'a header of src/net, src/endpoint or src/relay'
  # net: core + libuv + GnuTLS; knows no endpoint and no ngtcp2.
  forbid net 'ngtcp2/|miniupnpc/|natpmp\.h' 'ngtcp2 or port-mapping headers'
  forbid net 'io/|endpoint/|relay/' 'a header of src/endpoint or src/relay'
  # relay server: core + net (+ jansson).
  forbid relay 'ngtcp2/|miniupnpc/|natpmp\.h' 'ngtcp2 or port-mapping headers'
  forbid relay 'io/|endpoint/' 'a header of the endpoint (src/endpoint)'
  # endpoint: only the QUIC module (quic*.c/h) and TLS for QUIC (tls.c)
  # include ngtcp2
  hits=$(grep -lE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]ngtcp2/' \
    "$dir"/src/endpoint/*.[ch] 2>/dev/null | grep -vE '/(quic[a-z_]*|tls)\.[ch]$')
  if [ -n "$hits" ]; then
    fail "only quic*.c/h and tls.c of src/endpoint may include ngtcp2:"
    echo "$hits" | sed "s|^$dir/||" >&2
  fi
  # the QUIC module's own header (kw_conn, kw_stream and their parts):
  # only the module's files, src/endpoint/quic*.c, include it
  hits=$(grep -rlE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([a-z_/]*/)?quic_conn\.h' \
    "$dir"/src "$dir"/tests "$dir"/bench "$dir"/tools "$dir"/examples \
    --include='*.c' --include='*.h' 2>/dev/null |
    grep -vE '^'"$dir"'/src/endpoint/quic[a-z_]*\.c$')
  if [ -n "$hits" ]; then
    fail "only src/endpoint/quic*.c may include quic_conn.h:"
    echo "$hits" | sed "s|^$dir/||" >&2
  fi
  # one owner per struct (docs/ARCHITECTURE.md section 2): each of these
  # is defined in its owner's file and nowhere else; a header shared by
  # every endpoint file (the former internal.h) does not come back
  owners='kw_endpoint:src/endpoint/endpoint.c
kw_config:src/endpoint/config.h
kw__magicsock:src/endpoint/magicsock.c
kw__remote:src/endpoint/magicsock.c
kw__xsock:src/endpoint/magicsock.c
kw__udp:src/net/udp.c
kw__quic:src/endpoint/quic_conn.h
kw_conn:src/endpoint/quic_conn.h
kw_stream:src/endpoint/quic_conn.h
kw__disco:src/endpoint/disco_io.c
kw__stun:src/endpoint/stun_probe.c
kw__relay_map:src/endpoint/relay_client.c
kw__relay:src/endpoint/relay_client.c
kw__publisher:src/endpoint/lookup_client.c
kw__resolve:src/endpoint/resolve.c
kw__lan:src/endpoint/lan.c
kw__portmap:src/endpoint/portmap.c
kw__netmon:src/endpoint/netmon.c
kw__tls_ctx:src/endpoint/tls.c
kw__tls_sess:src/endpoint/tls.c'
  while IFS=: read -r name owner; do
    defs=$(grep -lE "^(typedef )?struct $name[[:space:]]*\{" \
      "$dir"/src/*/*.[ch] 2>/dev/null | sed "s|^$dir/||")
    if [ "$defs" != "$owner" ]; then
      fail "struct $name must be defined in $owner only; defined in:" ${defs:-nothing}
    fi
  done <<<"$owners"
  [ ! -e "$dir"/src/endpoint/internal.h ] ||
    fail "src/endpoint/internal.h is back: each module has its own header"
  ;;
relay)
  bin=$dir/keyway-relay
  [ -x "$bin" ] || { echo "layers: no $bin" >&2; exit 1; }
  # ngtcp2, the port-mapping libraries, and the endpoint's own names
  # (public kw_endpoint/kw_conn/kw_stream, src/endpoint's kw__ functions).
  re='ngtcp2|upnp|natpmp|^kw_(endpoint|conn|stream|config)_|^kw__(conn|magicsock|remotes?|disco_(start|stop|free|input|conn_up|conn_down|arm|network_change|local_candidates)|portmap|netmon|stun_(probe|input|start|stop|refresh)|tls_(ctx|sess)|relays_|relay_(send_batch|index|home|url_of|stun_target|latency|ready|tls_target|lookup)|lookup_stop|endpoint|log|now)(_|$)'
  und=$(nm -D --undefined-only "$bin" | awk '{print $NF}' | grep -iE "$re")
  [ -z "$und" ] || { fail "keyway-relay needs endpoint or ngtcp2 symbols:"; echo "$und" >&2; }
  def=$(nm --defined-only "$bin" 2>/dev/null | awk '{print $NF}' | grep -iE "$re")
  [ -z "$def" ] || { fail "keyway-relay contains endpoint or ngtcp2 code:"; echo "$def" >&2; }
  need=$(readelf -d "$bin" | awk '/NEEDED/ {print $NF}' | grep -iE 'ngtcp2|miniupnpc|natpmp')
  [ -z "$need" ] || { fail "keyway-relay links $need"; }
  ;;
unit)
  # Unit tests link kwcore (+ cmocka); tests/CMakeLists.txt names the
  # exceptions in KW_UNIT_NEEDS_IO, repeated here.
  allowed=" test_keyfile "
  n=0
  for t in "$dir"/tests/test_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    name=$(basename "$t")
    n=$((n + 1))
    case $allowed in *" $name "*) continue ;; esac
    need=$(readelf -d "$t" | awk '/NEEDED/ {print $NF}' | grep -E 'libuv|gnutls|ngtcp2|miniupnpc|natpmp')
    [ -z "$need" ] || fail "$name links more than core:" $need
  done
  [ "$n" -gt 0 ] || fail "no unit test binaries under $dir/tests"
  ;;
*) echo "usage: $0 includes SRCDIR | relay BUILDDIR | unit BUILDDIR" >&2; exit 2 ;;
esac
[ "$bad" = 0 ] && echo "layers $mode: ok"
exit $bad
