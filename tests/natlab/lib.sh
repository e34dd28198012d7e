# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# The NAT lab: network-namespace topologies with real Linux NAT, for tests
# that run as root. Source this file; every name it creates carries a
# per-run prefix and lab_cleanup (armed with trap by lab_init) removes all.
#
# Addresses come only from 198.18.0.0/15 (docs/ARCHITECTURE.md section 1):
#   198.18.0.0/24      the "internet": a bridge with the relay and WAN sides
#   198.18.N.0/24      LAN N behind router N (N >= 1)
#
# Facts this relies on (../../shared/NOTES-natlab.md): new namespaces need
# rp_filter=0 and ip_forward=1 set explicitly; IPv6 is disabled in the lab;
# NAT routers drop unsolicited WAN input (else conntrack clashes break hole
# punching); there is no netem on this kernel, so delayed or lossy WAN links
# (lab_router_delay) are TAP pairs joined by tests/natlab/kw_delaylink.

LAB_PREFIX=""
LAB_NS=()
LAB_PIDS=()

lab_have_root() {
  [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null && ip netns list >/dev/null 2>&1
}

# lab_can_netns: a network namespace can be made and entered here (not so
# in some containers and chroots); else prints why on stdout, returns 1
lab_can_netns() {
  local ns="kwprobe$$" err
  if ! err=$(ip netns add "$ns" 2>&1); then
    echo "cannot create a network namespace (ip netns add: ${err:-failed})"
    return 1
  fi
  if ! err=$(ip netns exec "$ns" true 2>&1); then
    ip netns del "$ns" 2>/dev/null || true
    echo "cannot enter a network namespace (ip netns exec: ${err:-failed})"
    return 1
  fi
  ip netns del "$ns" 2>/dev/null || true
}

lab_init() {
  # BASHPID: a test may run two labs at once, each in a subshell of its own
  LAB_PREFIX="kw${BASHPID:-$$}"
  LAB_NS=()
  LAB_PIDS=()
  trap lab_cleanup EXIT
  # the internet: a namespace holding a bridge
  lab_ns_add pub
  ip -n "$(lab_ns pub)" link add br0 type bridge
  ip -n "$(lab_ns pub)" link set br0 up
}

lab_ns() { echo "${LAB_PREFIX}-$1"; }

lab_ns_add() {
  local ns
  ns=$(lab_ns "$1")
  ip netns add "$ns"
  LAB_NS+=("$ns")
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.default.rp_filter=0
}

# lab_exec NAME CMD...: run a command inside a lab namespace
lab_exec() {
  local n=$1
  shift
  ip netns exec "$(lab_ns "$n")" "$@"
}

# lab_bg NAME LOG CMD...: run in the background, remember the pid (not a
# job of the caller's: do not `wait` for it)
lab_bg() {
  local n=$1 log=$2
  shift 2
  ip netns exec "$(lab_ns "$n")" "$@" >"$log" 2>&1 &
  LAB_PIDS+=($!)
  echo $!
  # lab_cleanup ends it (kill -9 if need be): no "Killed" job report then
  disown "$!" 2>/dev/null || true
}

# lab_link A IFA B IFB: a veth pair between two namespaces
lab_link() {
  local a=$1 ifa=$2 b=$3 ifb=$4 tmp="v${RANDOM}x${BASHPID:-$$}"
  ip link add "${tmp}a" type veth peer name "${tmp}b"
  ip link set "${tmp}a" netns "$(lab_ns "$a")"
  ip link set "${tmp}b" netns "$(lab_ns "$b")"
  ip -n "$(lab_ns "$a")" link set "${tmp}a" name "$ifa"
  ip -n "$(lab_ns "$b")" link set "${tmp}b" name "$ifb"
  ip -n "$(lab_ns "$a")" link set "$ifa" up
  ip -n "$(lab_ns "$b")" link set "$ifb" up
}

# lab_public_host NAME ADDR: a host on the internet bridge (198.18.0.x)
lab_public_host() {
  local n=$1 addr=$2
  lab_ns_add "$n"
  lab_link "$n" eth0 pub "p-$n"
  ip -n "$(lab_ns pub)" link set "p-$n" master br0
  ip -n "$(lab_ns "$n")" addr add "$addr/24" dev eth0
}

# lab_router NAME WAN_ADDR LAN_NET_INDEX MODE
#   MODE: eim (MASQUERADE), edm (MASQUERADE --random-fully),
#         udpblock (EIM NAT that drops forwarded UDP), none (plain router)
# LAN is 198.18.IDX.0/24, the router is .1 on it.
lab_router() {
  local n=$1 wan=$2 idx=$3 mode=$4
  lab_public_host "$n" "$wan"
  _lab_router_conf "$n" "$idx" "$mode"
}

# lab_router_delay NAME WAN_ADDR LAN_NET_INDEX MODE DELAY_MS [LOSS_PCT [SEED]]
#   lab_router whose WAN link (its eth0 to the internet bridge) is a
#   kw_delaylink: DELAY_MS each way, LOSS_PCT random loss each way (seeded).
#   Needs LAB_DELAYLINK (path of BUILD/tests/kw_delaylink).
lab_router_delay() {
  local n=$1 wan=$2 idx=$3 mode=$4 delay=$5 loss=${6:-0} seed=${7:-1}
  lab_ns_add "$n"
  lab_delay_link "$n" "$delay" "$loss" "$seed" || return 1
  lab_exec "$n" ip addr add "$wan/24" dev eth0
  _lab_router_conf "$n" "$idx" "$mode"
}

# lab_delay_link NAME DELAY_MS LOSS_PCT SEED: NAME's eth0 is a TAP joined by
# kw_delaylink (started with lab_bg, so lab_cleanup ends it) to the TAP p-NAME
# on the internet bridge. Its counters are in lab_delay_log NAME at exit.
lab_delay_link() {
  local n=$1 delay=$2 loss=$3 seed=$4 log i pid
  if [ ! -x "${LAB_DELAYLINK:-}" ]; then
    echo "lab_delay_link: set LAB_DELAYLINK to BUILD/tests/kw_delaylink" >&2
    return 1
  fi
  log=$(lab_delay_log "$n")
  rm -f "$log" # a log left by an earlier lab must not say "ready"
  lab_bg pub "$log" "$LAB_DELAYLINK" --ns-a "$(lab_ns pub)" --if-a "p-$n" \
    --ns-b "$(lab_ns "$n")" --if-b eth0 --delay-ms "$delay" --loss "$loss" \
    --seed "$seed" >/dev/null
  pid=${LAB_PIDS[-1]}
  # creating a TAP waits for the RTNL lock, which the teardown of an earlier
  # lab's namespaces may hold for seconds on a busy machine: wait up to 60 s
  for ((i = 0; i < 600; i++)); do
    grep -qx ready "$log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -qx ready "$log" 2>/dev/null; then
    echo "lab_delay_link: kw_delaylink for $n did not start:" >&2
    cat "$log" >&2
    return 1
  fi
  ip -n "$(lab_ns pub)" link set "p-$n" master br0
}

# lab_delay_log NAME: the log of NAME's kw_delaylink (removed by lab_cleanup
# unless LAB_LOGDIR names where to keep it)
lab_delay_log() {
  echo "${LAB_LOGDIR:-${TMPDIR:-/tmp}}/${LAB_PREFIX}-delaylink-$1.log"
}

_lab_router_conf() {
  local n=$1 idx=$2 mode=$3
  lab_exec "$n" sysctl -qw net.ipv4.ip_forward=1
  lab_exec "$n" ip link add lanbr type bridge
  lab_exec "$n" ip link set lanbr up
  lab_exec "$n" ip addr add "198.18.$idx.1/24" dev lanbr
  case $mode in
    eim) lab_exec "$n" iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE ;;
    edm) lab_exec "$n" iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE --random-fully ;;
    udpblock)
      lab_exec "$n" iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE
      lab_exec "$n" iptables -A FORWARD -i lanbr -o eth0 -p udp -j DROP
      ;;
    none) ;;
    *) echo "lab_router: unknown mode $mode" >&2; return 1 ;;
  esac
  if [ "$mode" != none ]; then
    # a CPE router: no unsolicited input from the WAN
    lab_exec "$n" iptables -A INPUT -i eth0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    lab_exec "$n" iptables -A INPUT -i eth0 -j DROP
    lab_exec "$n" iptables -A FORWARD -i eth0 -o lanbr -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    lab_exec "$n" iptables -A FORWARD -i eth0 -o lanbr -j DROP
  fi
}

# lab_lan_host NAME ROUTER IDX HOSTNUM: a host behind router, 198.18.IDX.HOSTNUM
lab_lan_host() {
  local n=$1 r=$2 idx=$3 num=$4
  lab_ns_add "$n"
  lab_link "$n" eth0 "$r" "l-$n"
  lab_exec "$r" ip link set "l-$n" master lanbr
  lab_exec "$n" ip addr add "198.18.$idx.$num/24" dev eth0
  lab_exec "$n" ip route add default via "198.18.$idx.1"
}

# lab_relay_cert DIR IP...: DIR/cert.pem and DIR/key.pem for a relay at IP
# (kept across relay restarts; clients pass DIR/cert.pem as --relay-ca);
# more IPs: one certificate for relays at each of them
lab_relay_cert() {
  local dir=$1 san="" ip
  shift
  for ip in "$@"; do san+="${san:+,}IP:$ip"; done
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 -subj /CN=relay \
    -addext "subjectAltName=$san" 2>/dev/null
}

# lab_wait_file FILE SECONDS: wait until FILE exists and is not empty
lab_wait_file() {
  local f=$1 s=$2 i
  for ((i = 0; i < s * 10; i++)); do
    [ -s "$f" ] && return 0
    sleep 0.1
  done
  return 1
}

# lab_wait_grep FILE PATTERN SECONDS: until FILE has a line matching PATTERN
lab_wait_grep() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

lab_cleanup() {
  # runs from an EXIT trap, maybe under set -e: nothing here may fail
  local p ns
  set +e
  for p in "${LAB_PIDS[@]}"; do
    kill "$p" 2>/dev/null
  done
  sleep 0.2
  for p in "${LAB_PIDS[@]}"; do
    kill -9 "$p" 2>/dev/null
  done
  for ns in "${LAB_NS[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  [ -z "${LAB_LOGDIR:-}" ] && [ -n "$LAB_PREFIX" ] &&
    rm -f "${TMPDIR:-/tmp}/${LAB_PREFIX}"-delaylink-*.log 2>/dev/null
  LAB_NS=()
  LAB_PIDS=()
  return 0
}

# ---- shared by the test scripts -------------------------------------------

# lab_test_begin BUILD_DIR: every NAT-lab test's preamble: the build's
# binaries ($build, $KW, $RELAY), exit 77 (skipped) without root, the
# ok/bad counters, and a work directory ($work; the caller's trap removes
# it).
# shellcheck disable=SC2034 # build, KW, RELAY, work: for the sourcing script
lab_test_begin() {
  build=$(cd "$1" && pwd)
  KW=$build/keyway
  RELAY=$build/keyway-relay
  lab_have_root || { echo "natlab: needs root and ip netns: skipped"; exit 77; }
  local why
  why=$(lab_can_netns) || { echo "natlab: $why: skipped"; exit 77; }
  passed=0
  failed=0
  work=$(mktemp -d)
}
ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }
# lab_test_end: the summary line; the status is the verdict
lab_test_end() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# lab_wait_tcp NAME IP PORT: wait (5 s at most) until IP:PORT accepts TCP,
# seen from namespace NAME
lab_wait_tcp() {
  local i
  for ((i = 0; i < 50; i++)); do
    lab_exec "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# lab_start_relay NAME IP LOG [ARGS...]: keyway-relay in namespace NAME
# (TLS on IP:8443, STUN on IP:3478) with $work/cert.pem and $work/key.pem
# (lab_relay_cert); waits until it accepts connections. Its pid is left in
# LAB_RELAY_PID. Call it directly, not in $(...), so cleanup knows the pid.
lab_start_relay() {
  local n=$1 ip=$2 log=$3
  shift 3
  lab_bg "$n" "$log" "$RELAY" --listen "$ip:8443" --stun-listen "$ip:3478" \
    --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" "$@" >/dev/null
  # shellcheck disable=SC2034 # for the sourcing script
  LAB_RELAY_PID=${LAB_PIDS[-1]}
  lab_wait_tcp "$n" "$ip" 8443
}

# lab_pipe_intact RC: a listen/connect pair ended well: the dialer exited
# with RC 0 and $work/in_a arrived as $work/out_b, $work/in_b as $work/out_a
lab_pipe_intact() {
  [ "$1" -eq 0 ] && cmp -s "$work/in_a" "$work/out_b" &&
    cmp -s "$work/in_b" "$work/out_a"
}

# lab_path_kinds FILE: the kinds of the --json path events in FILE, in
# order, space-separated ("relay direct ")
lab_path_kinds() {
  grep -o '"event":"path".*"kind":"[a-z]*"' "$1" | grep -o '"kind":"[a-z]*"' |
    cut -d'"' -f4 | tr '\n' ' '
}

# lab_slow_source FILE: the file at about 20 MiB/s, so a transfer lasts
# long enough for something to happen in its middle
lab_slow_source() {
  local i n
  n=$(($(stat -c %s "$1") / 1048576))
  for ((i = 0; i < n; i++)); do
    dd if="$1" bs=1M skip="$i" count=1 status=none
    sleep 0.05
  done
}

# lab_bday_trial NAME MODE_A MODE_B [DIALER_OPTS...]: one birthday-probing
# trial in a fresh lab (test_birthday.sh, bench/natlab_birthday.sh): two
# relays with STUN on the public segment (198.18.0.10 and .11, one
# certificate: lab_relay_cert "$work" both), host a behind router ra
# (MODE_A), host b behind rb (MODE_B); a fresh `keyway listen` on a, then
# `keyway ping --until-direct` from a fresh dialer on b (DIALER_OPTS added,
# e.g. --no-birthday). Sets BDAY_DIRECT (1: a reply came over a direct
# path), BDAY_MS (dial to the ping's exit), BDAY_NAT_A / BDAY_NAT_B (the
# kind each endpoint learned, "-" if none), BDAY_SOCKS (extra sockets the
# EDM side opened), BDAY_PINGS (spray Pings of the EIM side), BDAY_TIMEOUT
# (seconds the dialer may take, default 20). Logs: $work/NAME-{a,b}.err.
lab_bday_trial() {
  local name=$1 ma=$2 mb=$3
  shift 3
  lab_init
  lab_public_host relay1 198.18.0.10
  lab_public_host relay2 198.18.0.11
  lab_router ra 198.18.0.1 1 "$ma"
  lab_lan_host a ra 1 10
  lab_router rb 198.18.0.2 2 "$mb"
  lab_lan_host b rb 2 10
  BDAY_DIRECT=0 BDAY_MS=0 BDAY_NAT_A=- BDAY_NAT_B=- BDAY_SOCKS=0 BDAY_PINGS=0
  lab_start_relay relay1 198.18.0.10 "$work/$name-relay1.log" -q || return 1
  lab_start_relay relay2 198.18.0.11 "$work/$name-relay2.log" -q || return 1
  local common=(--ephemeral --json -v --relay https://198.18.0.10:8443
    --relay https://198.18.0.11:8443 --relay-ca "$work/cert.pem")
  rm -f "$work/t"
  lab_bg a "$work/$name-a.err" "$KW" listen "${common[@]}" --ticket-file "$work/t" \
    </dev/null >/dev/null
  lab_wait_file "$work/t" 15 || return 1
  local s e rc f
  s=$(date +%s%N)
  timeout "${BDAY_TIMEOUT:-20}" ip netns exec "$(lab_ns b)" "$KW" ping "${common[@]}" \
    "$@" -c 400 -i 0.05 --until-direct "$(cat "$work/t")" >"$work/$name-b.out" \
    2>"$work/$name-b.err"
  rc=$?
  e=$(date +%s%N)
  [ "$rc" -eq 0 ] && BDAY_DIRECT=1
  BDAY_MS=$(((e - s) / 1000000))
  sleep 0.3 # the listener's last log lines
  BDAY_NAT_A=$(grep -o 'stun.nat_kind kind=[a-z]*' "$work/$name-a.err" | tail -1 | cut -d= -f2)
  BDAY_NAT_B=$(grep -o 'stun.nat_kind kind=[a-z]*' "$work/$name-b.err" | tail -1 | cut -d= -f2)
  BDAY_NAT_A=${BDAY_NAT_A:--} BDAY_NAT_B=${BDAY_NAT_B:--}
  for f in "$work/$name-a.err" "$work/$name-b.err"; do
    # the EDM side's extra sockets (one Ping each), the EIM side's spray
    local n
    n=$(grep -o 'holepunch.birthday_end [^"]*' "$f" | head -1 | grep -o ' sent=[0-9]*' | cut -d= -f2)
    if grep -q 'birthday_start.*mode=sockets' "$f"; then
      BDAY_SOCKS=${n:-0}
    elif grep -q 'birthday_start.*mode=spray' "$f"; then
      BDAY_PINGS=${n:-0}
    fi
  done
  lab_cleanup
}
