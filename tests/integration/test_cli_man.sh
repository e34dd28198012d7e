#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Documentation a person finds: every option that `keyway --help`, each
# `keyway COMMAND --help` and `keyway-relay --help` list appears in the man
# pages (docs/man/keyway.1, keyway-relay.8), which render without warnings;
# each command's --help lists the options it takes; the bash completion
# completes commands and a command's options; a mistyped command or option
# gets a "did you mean".
. "$(dirname "$0")/cli_lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MAN=$SRC/docs/man
# the man source with roff's escaped hyphens as plain ones
plain() { sed 's/\\-/-/g; s/\\f[BIRP]//g' "$1"; }
plain "$MAN/keyway.1" >"$WORK/keyway.1.txt"
plain "$MAN/keyway-relay.8" >"$WORK/relay.8.txt"
opts_of() { grep -o -- '--[a-z][a-z0-9-]*' | sort -u; }

cmds=$("$KW" --help | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z-]*\)\( .*\)\{0,1\}$/\1/p')
check "--help lists the commands" test "$(wc -w <<<"$cmds")" -ge 9
missing=
for c in $cmds; do
  grep -q -- "^\.B.*$c" "$WORK/keyway.1.txt" || missing="$missing $c"
done
check "keyway(1) has every command:${missing:- yes}" test -z "$missing"
missing=
for o in $( { "$KW" --help; for c in $cmds; do "$KW" "$c" --help; done; } | opts_of); do
  grep -q -- "$o\b" "$WORK/keyway.1.txt" || missing="$missing $o"
done
check "keyway(1) has every option of every --help:${missing:- yes}" test -z "$missing"
missing=
for o in $("$BUILD/keyway-relay" --help | opts_of); do
  grep -q -- "$o\b" "$WORK/relay.8.txt" || missing="$missing $o"
done
check "keyway-relay(8) has every option of its --help:${missing:- yes}" test -z "$missing"
for p in keyway.1 keyway-relay.8 keyway.3; do
  check "$p renders without warnings" bash -c "[ -z \"\$(groff -man -Tutf8 -ww -z '$MAN/$p' 2>&1)\" ]"
done

# each command's --help: the options it takes, not the others'
"$KW" ping --help >"$WORK/ph"
check "ping --help lists --until-direct" grep -q -- --until-direct "$WORK/ph"
check "ping --help lists the shared --relay" grep -q -- '--relay URL' "$WORK/ph"
check "ping --help does not list receive's --force" bash -c "! grep -q -- --force '$WORK/ph'"
check "listen-tcp --help lists --to and --ticket-type" \
  bash -c "'$KW' listen-tcp --help | grep -q -- '--to HOST:PORT' && '$KW' listen-tcp --help | grep -q -- --ticket-type"
check "send --help lists --ticket-type" bash -c "'$KW' send --help | grep -q -- --ticket-type"

# did you mean
set +e
"$KW" recieve x 2>"$WORK/dym1"; r1=$?
"$KW" ping --unil-direct x 2>"$WORK/dym2"; r2=$?
set -e
check "mistyped command: exit 2" test "$r1" -eq 2
check "mistyped command: did you mean" grep -q "did you mean 'receive'" "$WORK/dym1"
check "mistyped option: exit 2, did you mean" \
  bash -c "[ $r2 -eq 2 ] && grep -q 'did you mean --until-direct' '$WORK/dym2'"

# bash completion, from the installed file's source
complete_words() { # complete_words WORD...: what bash would offer
  bash -c '
    . "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
    _keyway; printf "%s\n" "${COMPREPLY[@]}"' _ "$SRC/tools/keyway/keyway.bash" "$KW" "$@"
}
got=$(complete_words li | tr '\n' ' ')
check "completion: 'li' -> listen listen-tcp ($got)" test "$got" = "listen listen-tcp "
got=$(complete_words ping --unt | tr '\n' ' ')
check "completion: 'ping --unt' -> --until-direct ($got)" test "$got" = "--until-direct "
got=$(complete_words send --ticket-type a | tr '\n' ' ')
check "completion: --ticket-type values ($got)" test "$got" = "addresses "
# installed where man(1) and bash-completion look
if DESTDIR=$WORK/inst cmake --install "$BUILD" --prefix /usr >"$WORK/inst.log" 2>&1; then
  for f in share/man/man1/keyway.1 share/man/man3/keyway.3 \
    share/man/man8/keyway-relay.8 share/bash-completion/completions/keyway; do
    check "installed: /usr/$f" test -s "$WORK/inst/usr/$f"
  done
else
  bad "cmake --install: $(tail -3 "$WORK/inst.log")"
fi
finish
