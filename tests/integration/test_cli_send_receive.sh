#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# keyway send / receive: a 100 MiB file and a directory tree (nested, empty
# directories, an empty file, modes), diff -r equal; --once exits; two
# receivers at once; SIGINT stops a sender (exit 130) and its receivers
# learn at once; a share needs its own ticket (a bare id or the ticket of
# an earlier run gets nothing); a peer that opens 100 request streams and
# reads none is refused beyond the limit and the sender stays small; errors
# about -o before connecting; skipped entries listed.
. "$(dirname "$0")/cli_lib.sh"

# a single large file
head -c 100M /dev/urandom >"$WORK/big.bin"
"$KW" send --ephemeral --once --bind 127.0.0.1:0 --ticket-file "$WORK/t1" \
  "$WORK/big.bin" 2>"$WORK/s1.err" &
spid=$!
PIDS+=("$spid")
wait_file "$WORK/t1" 10 || bad "sender ticket"
set +e
timeout 120 "$KW" receive --ephemeral -o "$WORK/out1" "$(cat "$WORK/t1")" 2>"$WORK/r1.err"
rc=$?
timeout 30 tail --pid="$spid" -f /dev/null
wait "$spid"
src=$?
set -e
check "receive exits 0" test "$rc" -eq 0
check "send --once exits 0 after one receiver" test "$src" -eq 0
check "100 MiB file equal" cmp -s "$WORK/big.bin" "$WORK/out1/big.bin"
check "summary line, the only line, says where" grep -Eqx "received 104857600 bytes in [0-9.]+ s \([0-9.]+ MB/s\) path=direct to $WORK/out1/big.bin" "$WORK/r1.err"
check "not a terminal: nothing but the summary" test "$(wc -l <"$WORK/r1.err")" -eq 1
check "no temporary files left" bash -c "! ls -a '$WORK/out1' | grep -q kwtmp"

# a tree
tree=$WORK/tree
mkdir -p "$tree/a/b/c" "$tree/empty" "$tree/d"
head -c 3M /dev/urandom >"$tree/a/b/c/deep.bin"
echo hello >"$tree/a/x.txt"
: >"$tree/d/zero"
printf 'run me' >"$tree/d/tool.sh"
chmod 755 "$tree/d/tool.sh"
chmod 600 "$tree/a/x.txt"
chmod 711 "$tree/d"
"$KW" send --ephemeral --once --json --bind 127.0.0.1:0 --ticket-file "$WORK/t2" \
  "$tree" 2>"$WORK/s2.err" &
spid=$!
PIDS+=("$spid")
wait_file "$WORK/t2" 10 || bad "sender ticket"
set +e
timeout 60 "$KW" receive --ephemeral --json -o "$WORK/out2" "$(cat "$WORK/t2")" 2>"$WORK/r2.err"
rc=$?
wait "$spid"
set -e
check "tree: receive exits 0" test "$rc" -eq 0
check "tree: diff -r equal" diff -r "$tree" "$WORK/out2/tree"
check "tree: empty directory kept" test -d "$WORK/out2/tree/empty"
check "tree: file modes kept" test "$(stat -c %a "$WORK/out2/tree/d/tool.sh") $(stat -c %a "$WORK/out2/tree/a/x.txt")" = "755 600"
check "tree: directory mode kept" test "$(stat -c %a "$WORK/out2/tree/d")" = 711
check "tree: stats event" grep -q '"event":"stats"' "$WORK/r2.err"

# the same tree to two receivers at once, sender stays up without --once
"$KW" send --ephemeral --bind 127.0.0.1:0 --ticket-file "$WORK/t3" "$tree" 2>"$WORK/s3.err" &
spid=$!
PIDS+=("$spid")
wait_file "$WORK/t3" 10 || bad "sender ticket"
set +e
timeout 60 "$KW" receive --ephemeral -q -o "$WORK/o3a" "$(cat "$WORK/t3")" &
p1=$!
timeout 60 "$KW" receive --ephemeral -q -o "$WORK/o3b" "$(cat "$WORK/t3")"
r2=$?
wait "$p1"
r1=$?
set -e
check "two receivers at once" test "$r1$r2" = 00
check "both trees equal" bash -c "diff -r '$tree' '$WORK/o3a/tree' && diff -r '$tree' '$WORK/o3b/tree'"
check "sender still serving" kill -0 "$spid"
kill -INT "$spid"
set +e
wait "$spid"
rc=$?
set -e
check "sender stops on SIGINT with exit 130" test "$rc" -eq 130
check "sender says it was interrupted" grep -q "^send: interrupted; stopped serving (2 receivers got it all)" "$WORK/s3.err"
check "the sender counts entries" grep -Eq "^serving .*tree: 10 entries, [0-9]+ bytes" "$WORK/s3.err"

# SIGINT mid-transfer: the receiver learns at once and says so
truncate -s 8G "$WORK/sparse.bin"
"$KW" send --ephemeral --bind 127.0.0.1:0 --ticket-file "$WORK/t4" "$WORK/sparse.bin" 2>"$WORK/s4.err" &
spid=$!
PIDS+=("$spid")
wait_file "$WORK/t4" 10 || bad "sender ticket"
set +e
timeout 60 "$KW" receive --ephemeral -o "$WORK/o4" "$(cat "$WORK/t4")" 2>"$WORK/r4.err" &
rpid=$!
sleep 2
kill -INT "$spid"
t0=$(date +%s%N)
wait "$rpid"
rc=$?
t1=$(date +%s%N)
wait "$spid"
src=$?
set -e
check "interrupted sender: exit 130" test "$src" -eq 130
check "interrupted sender: the receiver fails" test "$rc" -eq 1
check "interrupted sender: the receiver says the sender stopped" grep -q "^keyway: receive: the sender stopped" "$WORK/r4.err"
check "interrupted sender: never 'success' as a reason" bash -c "! grep -qi 'success' '$WORK/r4.err'"
check "interrupted sender: the receiver knew within 3 s ($(((t1 - t0) / 1000000)) ms)" test $(((t1 - t0) / 1000000)) -lt 3000
check "interrupted sender: nothing left behind" test ! -e "$WORK/o4"
rm -f "$WORK/sparse.bin"

# a share needs its ticket: the same key, a later run, the old ticket
"$KW" id --key "$WORK/k" >/dev/null
echo one >"$WORK/one.txt"
echo two >"$WORK/two.txt"
"$KW" send --key "$WORK/k" --once --bind 127.0.0.1:0 --ticket-file "$WORK/t5" "$WORK/one.txt" 2>"$WORK/s5.err" &
spid=$!
PIDS+=("$spid")
wait_file "$WORK/t5" 10 || bad "sender ticket"
set +e
timeout 30 "$KW" receive --ephemeral -q -o "$WORK/o5" "$(cat "$WORK/t5")"
wait "$spid"
set -e
"$KW" send --key "$WORK/k" --bind 127.0.0.1:0 --ticket-file "$WORK/t6" "$WORK/two.txt" 2>"$WORK/s6.err" &
spid=$!
PIDS+=("$spid")
wait_file "$WORK/t6" 10 || bad "sender ticket"
port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' <<<"$("$BUILD/tests/ticket_tool" addrs "$(cat "$WORK/t6")")" | head -1)
old=$("$BUILD/tests/ticket_tool" port "$(cat "$WORK/t5")" "$port")
set +e
timeout 30 "$KW" receive --ephemeral -o "$WORK/o6" "$old" 2>"$WORK/r6.err"
rc=$?
set -e
check "old ticket, same key, later share: exit 1" test "$rc" -eq 1
check "old ticket: 'this ticket is not valid for the share'" grep -q "^keyway: receive: this ticket is not valid for the share" "$WORK/r6.err"
check "old ticket: nothing received" test ! -e "$WORK/o6/two.txt"
id=$("$BUILD/tests/ticket_tool" id "$(cat "$WORK/t6")")
bare=$("$BUILD/tests/ticket_tool" strip "$(cat "$WORK/t6")")
set +e
timeout 30 "$KW" receive --ephemeral -o "$WORK/o7" "$bare" 2>"$WORK/r7.err"
rc=$?
set -e
check "the id and addresses without the capability: exit 1" test "$rc" -eq 1
check "without the capability: 'not valid for the share'" grep -q "this ticket is not valid for the share" "$WORK/r7.err"
check "without the capability: nothing received" test ! -e "$WORK/o7/two.txt"
set +e
timeout 30 "$KW" receive --ephemeral -q -o "$WORK/o8" "$(cat "$WORK/t6")"
rc=$?
set -e
check "its own ticket still works" bash -c "[ $rc -eq 0 ] && cmp -s '$WORK/two.txt' '$WORK/o8/two.txt'"
check "a ticket file with a capability is private (0600)" test "$(stat -c %a "$WORK/t6")" = 600
check "the sender says whom it refused" grep -q "^send: refused .*: its ticket is not the one of this share" "$WORK/s6.err"

# 100 request streams that are never read: beyond 4 per connection they are
# refused at once, and the sender's memory stays bounded
head -c 64M /dev/urandom >"$WORK/g.bin"
"$KW" send --ephemeral -v --bind 127.0.0.1:0 --ticket-file "$WORK/t9" "$WORK/g.bin" 2>"$WORK/s9.err" &
gpid=$!
PIDS+=("$gpid")
wait_file "$WORK/t9" 10 || bad "sender ticket"
"$BUILD/tests/cli_greedy_receiver" "$(cat "$WORK/t9")" 100 6 >"$WORK/g.out" 2>"$WORK/g.err" &
hpid=$!
sleep 4
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$gpid/status")
wait "$hpid" || true
refusedn=$(sed -n 's/.*refused=\([0-9]*\).*/\1/p' "$WORK/g.out")
check "100 unread request streams: 96 refused at once (got ${refusedn:-none}; $(cat "$WORK/g.out"))" test "${refusedn:-0}" -eq 96
check "100 unread request streams: sender RSS ${rss} kB < 100 MB" test "${rss:-999999}" -lt 102400
check "the sender counts the refusals" grep -q "refused a request from .*too many at once (per connection)" "$WORK/s9.err"
# one peer over 3 connections, 4 requests each: 8 per peer, 4 refused
"$BUILD/tests/cli_greedy_receiver" "$(cat "$WORK/t9")" 4 3 3 >"$WORK/g2.out" 2>"$WORK/g2.err" || true
check "one peer, 3 connections x 4 requests: 4 refused ($(cat "$WORK/g2.out"))" grep -q '^opened=12 refused=4$' "$WORK/g2.out"
check "the sender names the per-peer limit" grep -q "too many at once (per peer)" "$WORK/s9.err"
kill -INT "$gpid"; wait "$gpid" || true

# errors that are known before connecting say why, at once
: >"$WORK/afile"
chmod 555 "$WORK/ro" 2>/dev/null || { mkdir "$WORK/ro"; chmod 555 "$WORK/ro"; }
set +e
"$KW" receive --ephemeral -o "$WORK/afile" "$(cat "$WORK/t6")" 2>"$WORK/e1.err"; r1=$?
"$KW" receive --ephemeral -o "$WORK/missing/sub" "$(cat "$WORK/t6")" 2>"$WORK/e2.err"; r2=$?
if [ "$(id -u)" = 0 ]; then
  # root writes anywhere: the unwritable case runs as nobody, into a
  # directory of root's that nobody can enter but not write (with a copy
  # of the binary there: the build may sit where nobody cannot reach)
  robase=$(mktemp -d "${TMPDIR:-/tmp}/kw-ro.XXXXXX")
  chmod 755 "$robase"
  mkdir -m 755 "$robase/ro"
  cp "$KW" "$robase/keyway"
  setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$robase/keyway" receive --ephemeral -o "$robase/ro" "$(cat "$WORK/t6")" 2>"$WORK/e3.err"
  r3=$?
  rm -rf "$robase"
else
  "$KW" receive --ephemeral -o "$WORK/ro" "$(cat "$WORK/t6")" 2>"$WORK/e3.err"; r3=$?
fi
"$KW" send --ephemeral /dev/null 2>"$WORK/e4.err"; r4=$?
set -e
check "-o naming a file: exit 1, Not a directory" bash -c "[ $r1 -eq 1 ] && grep -q -- '-o .*afile: Not a directory' '$WORK/e1.err' && ! grep -q connected '$WORK/e1.err'"
check "-o with a missing parent: exit 1, says so" bash -c "[ $r2 -eq 1 ] && grep -q 'No such file or directory (its parent directory is missing)' '$WORK/e2.err'"
check "-o unwritable: exit 1, Permission denied" bash -c "[ $r3 -eq 1 ] && grep -q 'cannot write into .*: Permission denied' '$WORK/e3.err' && ! grep -q connected '$WORK/e3.err'"
check "send /dev/null: exit 1, a character device" bash -c "[ $r4 -eq 1 ] && grep -q '/dev/null: a character device' '$WORK/e4.err'"
kill -INT "$spid"; wait "$spid" || true

# what send skips is listed with the reason; one entry is "1 entry"
mkdir -p "$WORK/sk"
echo x >"$WORK/sk/x"
ln -s /etc "$WORK/sk/link"
mkfifo "$WORK/sk/fifo"
echo h >"$WORK/sk/.hidden"
timeout 5 "$KW" send --ephemeral --bind 127.0.0.1:0 --ticket-file "$WORK/t10" "$WORK/sk" 2>"$WORK/s10.err" &
spid=$!
wait_file "$WORK/t10" 10 || bad "sender ticket"
timeout 5 "$KW" send --ephemeral --bind 127.0.0.1:0 --ticket-file "$WORK/t11" "$WORK/sk/x" 2>"$WORK/s11.err" &
spid2=$!
wait_file "$WORK/t11" 10 || bad "sender ticket"
sleep 0.3
kill -INT "$spid" "$spid2" 2>/dev/null || true
wait "$spid" "$spid2" 2>/dev/null || true
check "skipped: the symbolic link, with the reason" grep -q "^send: skipped .*sk/link: a symbolic link (links are not followed)" "$WORK/s10.err"
check "skipped: the FIFO" grep -q "^send: skipped .*sk/fifo: a FIFO" "$WORK/s10.err"
check "skipped: the hidden file" grep -q "^send: skipped .*sk/.hidden: a hidden name" "$WORK/s10.err"
check "one file: '1 entry'" grep -q "^serving .*: 1 entry, 2 bytes" "$WORK/s11.err"
# a receiver killed with -9 leaves its locked temporary; the next receive
# into that directory removes it. A receiver interrupted with SIGINT
# removes what it made itself.
truncate -s 8G "$WORK/sparse.bin"
"$KW" send --ephemeral --bind 127.0.0.1:0 --ticket-file "$WORK/t13" "$WORK/sparse.bin" 2>"$WORK/s13.err" &
spid=$!
PIDS+=("$spid")
wait_file "$WORK/t13" 10 || bad "sender ticket"
mkdir -p "$WORK/o13"
"$KW" receive --ephemeral -q -o "$WORK/o13" "$(cat "$WORK/t13")" 2>/dev/null &
rpid=$!
sleep 1.5
kill -9 "$rpid"; wait "$rpid" 2>/dev/null || true
stale=$(ls -A "$WORK/o13" | grep -c '^\.kwtmp\.' || true)
check "killed with -9: its temporary file stays (${stale})" test "$stale" -eq 1
"$KW" send --ephemeral --once --bind 127.0.0.1:0 --ticket-file "$WORK/t15" "$WORK/two.txt" 2>/dev/null &
PIDS+=($!)
wait_file "$WORK/t15" 10 || bad "sender ticket"
set +e
timeout 30 "$KW" receive --ephemeral -q -o "$WORK/o13" "$(cat "$WORK/t15")"
rc=$?
set -e
check "the next receive into it succeeds" test "$rc" -eq 0
check "the next receive removed the stale temporary" bash -c "! ls -A '$WORK/o13' | grep -q kwtmp"
"$KW" receive --ephemeral -q -o "$WORK/o14" "$(cat "$WORK/t13")" 2>/dev/null &
rpid=$!
sleep 1.5
kill -INT "$rpid"
set +e
wait "$rpid"
rc=$?
set -e
check "receiver interrupted: exit 130 ($rc)" test "$rc" -eq 130
check "receiver interrupted: nothing of it left" test ! -e "$WORK/o14"
kill -INT "$spid"; wait "$spid" || true
rm -f "$WORK/sparse.bin"

# progress on a terminal (a pty from script(1)): one line redrawn in place
# (\r, erase), a rate and an ETA only together, the summary last; with
# --no-progress no bar at all
if command -v script >/dev/null; then
  for np in "" --no-progress; do
    "$KW" send --ephemeral --once --bind 127.0.0.1:0 --ticket-file "$WORK/t12$np" "$WORK/g.bin" 2>/dev/null &
    spid=$!
    PIDS+=("$spid")
    wait_file "$WORK/t12$np" 10 || bad "sender ticket"
    set +e
    timeout 60 script -qfec "'$KW' receive --ephemeral $np --bind 127.0.0.1:0 -o '$WORK/o12$np' '$(cat "$WORK/t12$np")'" /dev/null >"$WORK/pty$np.out"
    rc=$?
    wait "$spid"
    set -e
    tr '\r' '\n' <"$WORK/pty$np.out" >"$WORK/pty$np.lines"
    check "terminal$np: exit 0" test "$rc" -eq 0
    check "terminal$np: the summary comes last, whole" bash -c "tail -n 2 '$WORK/pty$np.lines' | grep -Eq '^(.\\[K)?received 67108864 bytes in [0-9.]+ s \\([0-9.]+ MB/s\\) path=direct to .*/o12$np/g.bin'"
  done
  check "terminal: the bar is drawn and redrawn in place" grep -q $'\x1b\\[K\\[#*\\.*\\]' "$WORK/pty.lines"
  check "terminal: an ETA only with a rate" bash -c "! grep 'ETA' '$WORK/pty.lines' | grep -vq 'MB/s ETA'"
  check "terminal: connection events on lines of their own" grep -q '^path: direct' "$WORK/pty.lines"
  check "terminal --no-progress: no bar" bash -c "! grep -q '\\[#*\\.*\\] ' '$WORK/pty--no-progress.lines'"
fi
finish
