#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs keyway's dependencies from Debian's packages, only those missing.
#   scripts/deps.sh demo    what building and `make demo` need
#   scripts/deps.sh check   that, plus what the tests, fuzzing and benchmarks
#                           need (the default)
#   scripts/deps.sh coverage  that, plus gcovr for `make coverage`
# Works as root, or re-runs itself through sudo. One code path for every
# Debian release: versions are probed (apt's candidates, clang's major
# version), never guessed from the release's name.
#   - ngtcp2 must be >= 1.0. When apt's candidate is older and the mirror has
#     a <codename>-backports suite, that suite is added to apt's sources if
#     missing (said on stderr) and only the ngtcp2 packages come from it.
#   - clang's sanitizer and libFuzzer runtime is libclang-rt-N-dev for the
#     clang the system has (N = its major version).
#   - Installing never leaves a service running or enabled: a policy-rc.d
#     denies starts during the install, and units or init scripts that the
#     install enabled (coturn, miniupnpd) are disabled again.
set -euo pipefail

set_name=${1:-check}
case $set_name in
demo | check | coverage) ;;
*)
  echo "usage: scripts/deps.sh [demo|check|coverage]" >&2
  exit 2
  ;;
esac

NGTCP2_MIN=1.0
ngtcp2_pkgs=(libngtcp2-dev libngtcp2-crypto-gnutls-dev)
# build + `make demo` (the demo uses python3 for free ports; the build
# includes the tests' helpers, hence cmocka)
demo_pkgs=(make build-essential cmake pkg-config
  libgnutls28-dev libsodium-dev libuv1-dev libjansson-dev
  libminiupnpc-dev libnatpmp-dev libcmocka-dev uthash-dev python3)
# everything else `make check` and `make bench` use
check_pkgs=(clang iproute2 iptables conntrack iputils-ping iperf3 coturn
  stun-client openssl curl miniupnpd-iptables valgrind xxd procps psmisc jq groff-base)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}
installed_version() {
  dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true
}
# candidate VERSION of PKG in apt's view (empty if none)
candidate() {
  apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: *//p' | grep -v '^(none)$' || true
}
version_ge() { dpkg --compare-versions "$1" ge "$2"; }

# ngtcp2 is fine when an installed ngtcp2 >= 1.0 is visible to pkg-config
# (a package or a build of one's own), else the packages are needed.
ngtcp2_ok() {
  if command -v pkg-config >/dev/null 2>&1 &&
    pkg-config --atleast-version="$NGTCP2_MIN" libngtcp2 &&
    pkg-config --atleast-version="$NGTCP2_MIN" libngtcp2_crypto_gnutls; then
    return 0
  fi
  local p v
  for p in "${ngtcp2_pkgs[@]}"; do
    installed "$p" || return 1
    v=$(installed_version "$p")
    version_ge "$v" "$NGTCP2_MIN" || return 1
  done
}

# clang's major version: the installed clang's, else apt's candidate's
# dependency (clang -> clang-N)
clang_major() {
  if command -v clang >/dev/null 2>&1; then
    clang --version | sed -n 's/.*clang version \([0-9][0-9]*\)\..*/\1/p' | head -n 1
    return
  fi
  apt-cache depends clang 2>/dev/null | sed -n 's/^ *Depends: clang-\([0-9][0-9]*\)$/\1/p' | head -n 1
}

missing() {
  local p
  for p in "$@"; do installed "$p" || echo "$p"; done
}

want=("${demo_pkgs[@]}")
# the check set is in every set but demo
full=0
[ "$set_name" = demo ] || full=1
[ $full -eq 1 ] && want+=("${check_pkgs[@]}")
[ "$set_name" = coverage ] && want+=(gcovr)
mapfile -t todo < <(missing "${want[@]}")
need_ngtcp2=0
ngtcp2_ok || need_ngtcp2=1
need_rt=0
if [ $full -eq 1 ]; then
  major=$(clang_major)
  if [ -z "$major" ] || ! installed "libclang-rt-$major-dev"; then need_rt=1; fi
fi
if [ ${#todo[@]} -eq 0 ] && [ $need_ngtcp2 -eq 0 ] && [ $need_rt -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    echo "deps: installing packages through sudo" >&2
    exec sudo "$0" "$@"
  fi
  [ $need_ngtcp2 -eq 1 ] && todo+=("${ngtcp2_pkgs[@]}")
  echo "deps: missing packages (${todo[*]}) and neither root nor sudo" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -y --no-install-recommends -o Dpkg::Use-Pty=0)

# ---- no service may start during the install, none stays enabled ---------
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# keyway deps.sh: no service starts during the install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=1
fi
cleanup() { if [ $own_policy -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

enabled_now() {
  # systemd units enabled by a symlink, and SysV start links
  {
    find /etc/systemd/system -path '*.wants/*' 2>/dev/null
    find /etc/rc2.d /etc/rc3.d /etc/rc4.d /etc/rc5.d -name 'S*' 2>/dev/null
  } | LC_ALL=C sort
}
before=$(enabled_now)

# ---- ngtcp2 >= 1.0, from backports where the main suite is older ----------
echo "deps: apt-get update" >&2
apt-get update
ngtcp2_target=()
if [ $need_ngtcp2 -eq 1 ]; then
  cand=$(candidate libngtcp2-dev)
  if [ -z "$cand" ] || ! version_ge "$cand" "$NGTCP2_MIN"; then
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    bpo=$codename-backports
    if [ -z "$codename" ]; then
      echo "deps: libngtcp2-dev ${cand:-(none)} < $NGTCP2_MIN and no release codename to look for backports" >&2
      exit 1
    fi
    if ! apt-cache policy | grep -q "n=$bpo,"; then
      # the mirror the system already uses for its main suite
      # shellcheck disable=SC2016 # apt's own $(FIELD) syntax
      mirror=$(apt-get indextargets --format '$(SITE) $(CODENAME)' 2>/dev/null |
        awk -v c="$codename" '$2 == c && $1 !~ /security/ {print $1; exit}')
      mirror=${mirror:-http://deb.debian.org/debian}
      tmp=$(mktemp)
      if /usr/lib/apt/apt-helper download-file "$mirror/dists/$bpo/Release" "$tmp" >/dev/null 2>&1; then
        echo "deps: libngtcp2-dev ${cand:-(none)} < $NGTCP2_MIN here: adding $bpo ($mirror) to apt's sources as /etc/apt/sources.list.d/$bpo.list" >&2
        echo "deb $mirror $bpo main" >"/etc/apt/sources.list.d/$bpo.list"
        rm -f "$tmp"
        apt-get update
      else
        rm -f "$tmp"
        echo "deps: libngtcp2-dev ${cand:-(none)} < $NGTCP2_MIN, and $mirror has no $bpo suite: install ngtcp2 >= $NGTCP2_MIN yourself" >&2
        exit 1
      fi
    fi
    bcand=$(apt-cache madison libngtcp2-dev | awk -F' *[|] *' -v s=" $bpo/" 'index($3, s) {print $2; exit}')
    if [ -z "$bcand" ] || ! version_ge "$bcand" "$NGTCP2_MIN"; then
      echo "deps: $bpo has no libngtcp2-dev >= $NGTCP2_MIN (${bcand:-none})" >&2
      exit 1
    fi
    echo "deps: ngtcp2 $bcand from $bpo (only the ngtcp2 packages)" >&2
    ngtcp2_target=(-t "$bpo")
  fi
  "${APT[@]}" "${ngtcp2_target[@]}" install "${ngtcp2_pkgs[@]}"
fi

# ---- the rest, from the release itself -------------------------------------
if [ $full -eq 1 ]; then
  # clang first: its major version names the runtime package
  if ! command -v clang >/dev/null 2>&1; then
    "${APT[@]}" install clang
  fi
  major=$(clang_major)
  if [ -z "$major" ]; then
    echo "deps: cannot tell clang's major version" >&2
    exit 1
  fi
  want+=("libclang-rt-$major-dev")
fi
mapfile -t todo < <(missing "${want[@]}")
# miniupnpd needs uuid-runtime, which needs systemd or a standalone
# sysusers: where systemd is not the init system (a container, a chroot),
# take the small one rather than installing an init system
if [ $full -eq 1 ] && [ ${#todo[@]} -gt 0 ] && ! installed systemd &&
  [ -n "$(candidate systemd-standalone-sysusers)" ]; then
  todo+=(systemd-standalone-sysusers)
fi
if [ ${#todo[@]} -gt 0 ]; then
  echo "deps: installing ${todo[*]}" >&2
  "${APT[@]}" install "${todo[@]}"
fi

# ---- disable what the install enabled ---------------------------------------
after=$(enabled_now)
new=$(LC_ALL=C comm -13 <(echo "$before") <(echo "$after") || true)
disabled=()
while read -r link; do
  [ -n "$link" ] || continue
  name=$(basename "$link")
  case $link in
  /etc/systemd/system/*)
    # the init system's own defaults (getty...), if it came along, stay
    unit=$(readlink -f "$link" || true)
    owner=$(dpkg-query -S "$unit" 2>/dev/null | cut -d: -f1 || true)
    [ "$owner" = systemd ] && continue
    if command -v deb-systemd-helper >/dev/null 2>&1; then
      # also records "disabled", so upgrades do not enable it again
      deb-systemd-helper disable "$name" >/dev/null 2>&1 || true
    fi
    if command -v systemctl >/dev/null 2>&1; then
      systemctl disable "$name" >/dev/null 2>&1 || true
      if [ -d /run/systemd/system ]; then systemctl stop "$name" >/dev/null 2>&1 || true; fi
    fi
    rm -f "$link"
    ;;
  *)
    name=${name#S[0-9][0-9]}
    if command -v update-rc.d >/dev/null 2>&1; then
      update-rc.d "$name" disable >/dev/null 2>&1 || true
    fi
    rm -f "$link"
    ;;
  esac
  disabled+=("$name")
done <<<"$new"
if [ ${#disabled[@]} -gt 0 ]; then
  echo "deps: disabled $(printf '%s\n' "${disabled[@]}" | sort -u | tr '\n' ' ')(the tests start their own instances)" >&2
fi
echo "deps: done ($set_name set)" >&2
