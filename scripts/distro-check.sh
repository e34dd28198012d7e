#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's commands on a bare Debian: debootstraps a minimal root
# (minbase plus git and ca-certificates, nothing else), clones this
# repository's current HEAD into it and runs `./run check` (or `./run demo`
# with --demo) there as root in a chroot. Cleans up whatever happens
# (unmounts, removes the root) and prints the time taken. Needs root,
# debootstrap and the Debian mirror; not part of `make check`.
#
#   scripts/distro-check.sh [options] bookworm|trixie
#     --demo          run `./run demo` instead of `./run check`
#     --keep          keep the root afterwards (its path is printed) to look
#                     into it: `chroot DIR`; remove it with rm -rf
#                     --one-file-system DIR once nothing is mounted there
#     --shell         an interactive shell in the chroot after the command
#     --no-cache      download everything again (by default debootstrap's
#                     and apt's .deb files are kept in
#                     ${XDG_CACHE_HOME:-~/.cache}/keyway/distro/SUITE; only
#                     downloads are cached, never an installed state)
#     --mirror URL    Debian mirror (default http://deb.debian.org/debian)
# Environment: KW_DISTRO_TMP, where the root goes (default /var/tmp).
#
# Afterwards it checks that installing packages left no service enabled
# (/etc/systemd/system/*.wants, /etc/rc?.d/S*) and none running in the root.
# The chroot shares the host's network and kernel: the NAT-lab tests create
# their namespaces in the host's kernel (the root is bind-mounted on itself
# so that `ip netns exec` works in the chroot; they skip where it cannot),
# and tests bind loopback ports of the host.
# shellcheck disable=SC2317 # cleanup and the helpers run from traps
set -euo pipefail

usage() {
  sed -n '3,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 2
}

mode=check keep=0 shell=0 cache=1
mirror=http://deb.debian.org/debian
suite=""
while [ $# -gt 0 ]; do
  case $1 in
  --demo) mode=demo ;;
  --keep) keep=1 ;;
  --shell) shell=1 ;;
  --no-cache) cache=0 ;;
  --mirror)
    mirror=${2:?--mirror URL}
    shift
    ;;
  -h | --help) usage ;;
  -*)
    echo "distro-check: unknown option $1" >&2
    usage
    ;;
  *)
    [ -z "$suite" ] || usage
    suite=$1
    ;;
  esac
  shift
done
[ -n "$suite" ] || usage
case $suite in
*[!a-z0-9-]* | "")
  echo "distro-check: bad suite name '$suite'" >&2
  exit 2
  ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "distro-check: needs root (debootstrap, chroot, mounts)" >&2
  exit 1
fi
command -v debootstrap >/dev/null || {
  echo "distro-check: debootstrap missing (apt-get install debootstrap)" >&2
  exit 1
}

repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
head=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "distro-check: note: uncommitted changes are not tested, only HEAD ($head)" >&2
fi

start=$SECONDS
root=$(mktemp -d "${KW_DISTRO_TMP:-/var/tmp}/keyway-distro-$suite.XXXXXX")
chmod 755 "$root" # it becomes /, which every user must be able to enter
root=$(cd "$root" && pwd -P)
status=1

mounts_under() {
  # mount points at or below $root, deepest first
  awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r
}
kill_inside() {
  # processes whose root directory is the chroot (started by the run)
  local p pids=()
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && pids+=("${p#/proc/}")
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  kill -9 "${pids[@]}" 2>/dev/null || true
  sleep 0.5
}
cleanup() {
  local rc=$? m left
  trap - EXIT INT TERM
  [ "$status" -eq 1 ] && [ "$rc" -ne 0 ] && status=$rc
  kill_inside
  rm -f "$root.debootstrap.log"
  for _ in 1 2 3; do
    left=$(mounts_under)
    [ -z "$left" ] && break
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done <<<"$left"
  done
  if [ -n "$(mounts_under)" ]; then
    echo "distro-check: still mounted under $root, not removing it:" >&2
    mounts_under >&2
  elif [ "$keep" -eq 1 ]; then
    echo "distro-check: kept the root in $root" >&2
  else
    rm -rf --one-file-system "$root"
  fi
  local t=$((SECONDS - start))
  printf 'distro-check: %s %s %s after %dm%02ds\n' "$suite" "$mode" \
    "$([ "$status" -eq 0 ] && echo passed || echo FAILED)" $((t / 60)) $((t % 60)) >&2
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== distro-check: $suite, ./run $mode, in $root" >&2

# ---- a minimal Debian -------------------------------------------------------
boot=(debootstrap --variant=minbase '--include=git,ca-certificates')
if [ "$cache" -eq 1 ]; then
  cdir=${XDG_CACHE_HOME:-$HOME/.cache}/keyway/distro/$suite
  mkdir -p "$cdir/debootstrap" "$cdir/apt"
  boot+=("--cache-dir=$cdir/debootstrap")
fi
t0=$SECONDS
"${boot[@]}" "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 || {
  tail -n 30 "$root.debootstrap.log" >&2
  echo "distro-check: debootstrap failed" >&2
  exit 1
}
rm -f "$root.debootstrap.log"
echo "-- debootstrap: $((SECONDS - t0)) s; $(chroot "$root" dpkg-query -W | wc -l) packages" >&2

# ---- this repository's HEAD ------------------------------------------------
git clone -q --no-hardlinks "$repo" "$root/root/keyway"
git -C "$root/root/keyway" checkout -q --detach "$head"
echo "-- cloned $head into /root/keyway" >&2

# ---- mounts: kernel file systems, a private /run and /tmp --------------------
# the root itself a mount point: `ip netns exec` makes / a slave mount,
# which fails on a plain directory (the NAT-lab tests would then skip)
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
if [ "$cache" -eq 1 ]; then
  mount --bind "$cdir/apt" "$root/var/cache/apt/archives"
  mkdir -p "$root/var/cache/apt/archives/partial"
fi
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mkdir -p "$root/run/lock" "$root/run/netns"

enabled_units() {
  (cd "$root" && find etc/systemd/system -path '*.wants/*' 2>/dev/null
  find etc/rc2.d etc/rc3.d etc/rc4.d etc/rc5.d -name 'S*' 2>/dev/null) | sort
}
units_before=$(enabled_units)

# ---- the README's command, as root, with a clean environment -----------------
in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
echo "-- ./run $mode" >&2
t0=$SECONDS
rc=0
# in the background, so that a signal reaches the traps at once (cleanup
# then ends everything running in the root)
in_root bash -c "cd /root/keyway && ./run $mode" &
wait $! || rc=$?
echo "-- ./run $mode: exit $rc after $((SECONDS - t0)) s" >&2

# ---- nothing enabled, nothing running ------------------------------------------
new_units=$(comm -13 <(echo "$units_before") <(enabled_units) || true)
if [ -n "$new_units" ]; then
  echo "distro-check: FAIL: the install left services enabled:" >&2
  echo "$new_units" | sed 's/^/   \//' >&2
  [ "$rc" -eq 0 ] && rc=1
else
  echo "-- no service enabled by the install" >&2
fi
running=()
for p in /proc/[0-9]*; do
  [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] || continue
  running+=("${p#/proc/}:$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-60)")
done
if [ ${#running[@]} -gt 0 ]; then
  echo "distro-check: FAIL: still running in the root: ${running[*]}" >&2
  [ "$rc" -eq 0 ] && rc=1
fi

if [ "$shell" -eq 1 ]; then
  echo "-- a shell in the chroot (exit to clean up)" >&2
  in_root bash -c 'cd /root/keyway && exec bash -i' || true
fi
status=$rc
exit "$rc"
