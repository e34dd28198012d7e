#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# keyway receive against a sender that misbehaves (tests/cli_bad_sender):
# a wrong hash, unsafe or outside-the-tree paths, a cut-off stream, surplus
# bytes, another protocol; special mode bits, symbolic links inside -o DIR,
# existing files, hidden or control-character names, duplicate entries,
# manifests beyond the bounds, a share larger than the disk, a stalled
# sender. Each is refused with exit 1 and a one-line reason, and nothing
# this receive created is left behind. Loopback only.
. "$(dirname "$0")/cli_lib.sh"
BAD=$BUILD/tests/cli_bad_sender
[ -x "$BAD" ] || { echo "no cli_bad_sender in $BUILD/tests"; exit 1; }

# run MODE [OUT [ARGS...]]: starts the bad sender, receives into OUT
# (default $WORK/MODE) with ARGS; sets rc
run() {
  local mode=$1 out=${2:-$WORK/$1}
  shift $(($# < 2 ? $# : 2))
  rm -f "$WORK/$mode.t"
  "$BAD" "$mode" "$WORK/$mode.t" 2>"$WORK/$mode.bad.err" &
  PIDS+=($!)
  local bpid=$!
  if ! wait_file "$WORK/$mode.t" 10; then
    bad "$mode: bad sender did not start"; cat "$WORK/$mode.bad.err"; rc=99; return
  fi
  set +e
  timeout 60 "$KW" receive --ephemeral -q --bind 127.0.0.1:0 -o "$out" "$@" \
    "$(cat "$WORK/$mode.t")" 2>"$WORK/$mode.err"
  rc=$?
  set -e
  timeout 10 tail --pid="$bpid" -f /dev/null || true
}
no_tmp() { ! find "$WORK/$1" -name '*kwtmp*' 2>/dev/null | grep -q .; }
empty_dir() { [ ! -e "$WORK/$1" ] || [ -z "$(ls -A "$WORK/$1")" ]; }
one_line() { [ "$(wc -l <"$WORK/$1.err")" -eq 1 ]; }

run good
check "good sender: exit 0" test "$rc" -eq 0
check "good sender: the file arrived whole" test "$(stat -c %s "$WORK/good/f.bin" 2>/dev/null)" = 1048576

# a sender that never ends its stream after the ack cannot hold the
# receiver: it exits 0 (everything is verified) within its 5 s grace
start=$(date +%s)
run nofin
took=$(( $(date +%s) - start ))
check "sender without its end of stream: exit 0" test "$rc" -eq 0
check "sender without its end of stream: done in ${took}s (<= 15)" test "$took" -le 15
check "sender without its end of stream: the file is whole" test "$(stat -c %s "$WORK/nofin/f.bin" 2>/dev/null)" = 1048576

run badhash
check "hash mismatch: exit 1" test "$rc" -eq 1
check "hash mismatch: one-line reason" grep -q "keyway: receive: integrity check failed for f.bin (hash mismatch)" "$WORK/badhash.err"
check "hash mismatch: the file is absent" test ! -e "$WORK/badhash/f.bin"
check "hash mismatch: no temporary file left" no_tmp badhash

run secondbad
check "second file bad: exit 1" test "$rc" -eq 1
check "second file bad: names it" grep -q "integrity check failed for t/b.bin" "$WORK/secondbad.err"
check "second file bad: what this receive created is gone, the tree too" test ! -e "$WORK/secondbad/t"
check "second file bad: no temporary file left" no_tmp secondbad

for mode in dotdot absolute outside; do
  run "$mode"
  check "$mode path: exit 1" test "$rc" -eq 1
  check "$mode path: reason given" grep -q "keyway: receive: bad file list: " "$WORK/$mode.err"
  check "$mode path: one line" one_line "$mode"
  check "$mode path: nothing written" empty_dir "$mode"
done
check "no file escaped the output directory" test ! -e "$WORK/escape"

run short
check "cut-off stream: exit 1" test "$rc" -eq 1
check "cut-off stream: reason given" grep -q "keyway: receive: the sender stopped early" "$WORK/short.err"
check "cut-off stream: the file is absent" test ! -e "$WORK/short/f.bin"
check "cut-off stream: no temporary file left" no_tmp short

run extra
check "surplus bytes: exit 1" test "$rc" -eq 1
check "surplus bytes: reason given" grep -q "sent more than it announced" "$WORK/extra.err"

run badmagic
check "another protocol: exit 1" test "$rc" -eq 1
check "another protocol: reason given" grep -q "the sender speaks another protocol" "$WORK/badmagic.err"

# --- a receiver safe against its sender ---

# setuid/setgid/sticky bits are never applied; the umask masks the rest
umask_was=$(umask); umask 027
run suid
umask "$umask_was"
check "mode bits: exit 0" test "$rc" -eq 0
check "mode bits: file 750 (06777 & 0777 & ~027): no setuid/setgid" \
  test "$(stat -c %a "$WORK/suid/s/x" 2>/dev/null)" = 750
check "mode bits: directory 750: no sticky/setgid" \
  test "$(stat -c %a "$WORK/suid/s" 2>/dev/null)" = 750

# a symbolic link inside -o DIR is never followed, not even with --force
mkdir -p "$WORK/elsewhere" "$WORK/symo"
chmod 700 "$WORK/elsewhere"
ln -s "$WORK/elsewhere" "$WORK/symo/docs"
run docs "$WORK/symo"
check "symlink in -o DIR: exit 1" test "$rc" -eq 1
check "symlink in -o DIR: nothing written through it" test ! -e "$WORK/elsewhere/planted"
check "symlink in -o DIR: its target's mode untouched" test "$(stat -c %a "$WORK/elsewhere")" = 700
run docs "$WORK/symo" --force
check "symlink in -o DIR with --force: exit 1" test "$rc" -eq 1
check "symlink in -o DIR with --force: says it is not followed" grep -q "docs is not a directory (a symbolic link is never followed)" "$WORK/docs.err"
check "symlink in -o DIR with --force: nothing written through it" test ! -e "$WORK/elsewhere/planted"
check "symlink in -o DIR with --force: its target's mode untouched" test "$(stat -c %a "$WORK/elsewhere")" = 700
check "symlink in -o DIR with --force: the link itself stays" test -L "$WORK/symo/docs"

# an existing file or directory is never replaced without --force
mkdir -p "$WORK/exist/docs"
echo mine >"$WORK/exist/docs/planted"
run docs "$WORK/exist"
check "existing directory: exit 1" test "$rc" -eq 1
check "existing directory: names it and --force" grep -q "exist/docs already exists (pass --force to replace it)" "$WORK/docs.err"
check "existing directory: the file in it is untouched" test "$(cat "$WORK/exist/docs/planted")" = mine
run docs "$WORK/exist" --force
check "existing directory with --force: exit 0, file replaced" \
  bash -c "[ $rc -eq 0 ] && [ \"\$(stat -c %s '$WORK/exist/docs/planted')\" = 4 ]"
printf 'mine' >"$WORK/good/f.bin"
run good
check "existing file: exit 1" test "$rc" -eq 1
check "existing file: names it" grep -q "good/f.bin already exists (pass --force to replace it)" "$WORK/good.err"
check "existing file: untouched" test "$(cat "$WORK/good/f.bin")" = mine
run good "$WORK/good" --force
check "existing file with --force: replaced" test "$(stat -c %s "$WORK/good/f.bin")" = 1048576

# hidden names (.ssh in $HOME), control characters, duplicate files
mkdir -p "$WORK/home/.ssh"
echo "ssh-ed25519 AAAA mine" >"$WORK/home/.ssh/authorized_keys"
chmod 700 "$WORK/home/.ssh"
for force in "" --force; do
  run dotssh "$WORK/home" $force
  check "hidden name $force: exit 1" test "$rc" -eq 1
  check "hidden name $force: refused as such" grep -q "bad file list: .*a refused name" "$WORK/dotssh.err"
  check "hidden name $force: authorized_keys untouched" grep -q mine "$WORK/home/.ssh/authorized_keys"
  check "hidden name $force: .ssh mode untouched" test "$(stat -c %a "$WORK/home/.ssh")" = 700
done
run ctrl
check "control characters in a name: exit 1" test "$rc" -eq 1
check "control characters in a name: nothing written" empty_dir ctrl
check "control characters in a name: no raw ESC in the message" bash -c "! grep -q \$'\\x1b' '$WORK/ctrl.err'"
run dupfile
check "duplicate file entry: exit 1" test "$rc" -eq 1
check "duplicate file entry: reason" grep -q "bad file list: duplicate entry" "$WORK/dupfile.err"
check "duplicate file entry: nothing written" empty_dir dupfile
run longname
long=$(printf 'n%.0s' $(seq 250))
check "a 250-byte name: exit 0" test "$rc" -eq 0
check "a 250-byte name: the file is there" test -f "$WORK/longname/$long"
check "a 250-byte name: no temporary file left" no_tmp longname

# bounded work: entries over the bound, no room on disk, failures clean up
run many
check "250,000 entries: exit 1" test "$rc" -eq 1
check "250,000 entries: too many" grep -q "too many entries" "$WORK/many.err"
check "250,000 entries: nothing written" empty_dir many
run huge
check "1 PiB declared: exit 1" test "$rc" -eq 1
check "1 PiB declared: not enough free space" grep -q "not enough free space in " "$WORK/huge.err"
check "1 PiB declared: nothing written" empty_dir huge
run dirsbad
check "500 directories then a bad file: exit 1" test "$rc" -eq 1
check "500 directories then a bad file: every directory made is gone" empty_dir dirsbad

# a stale temporary of a receiver killed with -9 goes at the next receive
mkdir -p "$WORK/stale"
stale=$WORK/stale/.kwtmp.0123456789abcdef0123456789abcdef
echo partial >"$stale"
echo keep >"$WORK/stale/.kwtmp.notours"
run good "$WORK/stale"
check "stale temporary: the receive succeeds" test "$rc" -eq 0
check "stale temporary: removed" test ! -e "$stale"
check "stale temporary: other names kept" test -e "$WORK/stale/.kwtmp.notours"

# a sender that stops sending while the connection stays up
start=$(date +%s)
export KEYWAY_STALL_TIMEOUT=3
run stall
unset KEYWAY_STALL_TIMEOUT
took=$(($(date +%s) - start))
check "stalled sender: exit 1" test "$rc" -eq 1
check "stalled sender: says so" grep -q "the sender stopped sending (no data for 3 s)" "$WORK/stall.err"
check "stalled sender: given up in ${took}s (<= 15)" test "$took" -le 15
check "stalled sender: nothing left" empty_dir stall
finish
