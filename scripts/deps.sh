#!/usr/bin/env bash
# Installs keyway's build and test dependencies from Debian's packages, only
# those missing. Works as root, or through sudo.
set -euo pipefail

pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev
      libsodium-dev libuv1-dev libjansson-dev libminiupnpc-dev libnatpmp-dev libcmocka-dev uthash-dev
      iproute2 iptables conntrack iputils-ping iperf3 coturn stun-client openssl python3 curl
      miniupnpd-iptables valgrind xxd procps psmisc jq)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "deps: missing packages (${missing[*]}) and neither root nor sudo" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
# coturn and miniupnpd would start services on install; policy-rc.d may deny
# that, which is fine: tests start their own instances on loopback.
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  --no-install-recommends "${missing[@]}" >/dev/null
