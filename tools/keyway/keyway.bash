# bash completion for keyway(1). The commands and each command's options
# come from `keyway --help` and `keyway COMMAND --help`, so they never go
# out of date. Installed as share/bash-completion/completions/keyway.
_keyway() {
  local cur prev cmd words cword
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD - 1]}
  cmd=${COMP_WORDS[1]}
  local kw=${COMP_WORDS[0]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    local cmds
    cmds=$("$kw" --help 2>/dev/null | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z-]*\)\( .*\)\{0,1\}$/\1/p')
    COMPREPLY=($(compgen -W "$cmds --help --version" -- "$cur"))
    return
  fi
  case $prev in
  --key | --relay-ca | --ticket-file | -o | --out)
    COMPREPLY=($(compgen -f -- "$cur"))
    return
    ;;
  --ticket-type)
    COMPREPLY=($(compgen -W "id relay addresses full" -- "$cur"))
    return
    ;;
  --relay | --bind | --alpn | --timeout | -c | --count | -i | --interval | \
    --to | --from | --allow-iface | --deny-iface | --allow-prefix | \
    --deny-prefix)
    return
    ;;
  esac
  if [[ $cur == -* ]]; then
    local opts
    opts=$("$kw" "$cmd" --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u)
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    return
  fi
  case $cmd in
  send) COMPREPLY=($(compgen -f -- "$cur")) ;;
  esac
}
complete -F _keyway keyway
