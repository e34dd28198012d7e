#!/usr/bin/env bash
# keyway receive against a sender that misbehaves (tests/cli_bad_sender):
# a wrong hash, unsafe or outside-the-tree paths, a cut-off stream, surplus
# bytes, another protocol. Each is refused with exit 1 and a one-line
# reason, and no partial or temporary file is left behind; files verified
# before the failure stay whole. Loopback only.
. "$(dirname "$0")/cli_lib.sh"
BAD=$BUILD/tests/cli_bad_sender
[ -x "$BAD" ] || { echo "no cli_bad_sender in $BUILD/tests"; exit 1; }

# run MODE: starts the bad sender, receives into $WORK/MODE; sets rc
run() {
  local mode=$1
  rm -f "$WORK/$mode.t"
  "$BAD" "$mode" "$WORK/$mode.t" 2>"$WORK/$mode.bad.err" &
  PIDS+=($!)
  local bpid=$!
  if ! wait_file "$WORK/$mode.t" 10; then
    bad "$mode: bad sender did not start"; cat "$WORK/$mode.bad.err"; rc=99; return
  fi
  set +e
  timeout 60 "$KW" receive --ephemeral -q --bind 127.0.0.1:0 -o "$WORK/$mode" \
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
check "second file bad: the verified first file is whole" test "$(stat -c %s "$WORK/secondbad/t/a.bin" 2>/dev/null)" = 1048576
check "second file bad: the bad one is absent" test ! -e "$WORK/secondbad/t/b.bin"
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
finish
