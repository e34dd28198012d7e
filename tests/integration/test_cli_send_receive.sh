#!/usr/bin/env bash
# keyway send / receive: a 100 MiB file and a directory tree (nested, empty
# directories, an empty file, modes), diff -r equal; --once exits; two
# receivers at once; SIGINT stops a sender.
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
check "summary line" grep -Eq '^received 104857600 bytes in [0-9.]+ s \([0-9.]+ MB/s\) path=direct$' "$WORK/r1.err"
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
check "sender stops on SIGINT with exit 0" test "$rc" -eq 0
finish
