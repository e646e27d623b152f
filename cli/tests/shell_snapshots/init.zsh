# rolecall shell integration for zsh.
# Load it with:  eval "$(rolecall init zsh)"   (after compinit / your framework, if any)
#
# Defines:
#   rolecall use <profile> | rolecall use --unset | rolecall use   (picker)
#       sets AWS_PROFILE, ROLECALL_PROFILE and AWS_REGION in this shell
#   __rolecall_prompt
#       the prompt segment, e.g.  setopt prompt_subst; RPROMPT='$(__rolecall_prompt)'
#       (oh-my-zsh and most themes already set prompt_subst)
#   completion of subcommands, flags, profile and source names
#
# Safe under `setopt nounset` and `errexit`; the prompt function never fails.

typeset -g __rolecall_bin='/usr/local/bin/rolecall'
typeset -g __rolecall_subcommands='setup login logout credential-process use status prompt init completions populate import container exec env console audit relay daemon service demo'
typeset -g __rolecall_profile_cmds='credential-process use container exec env console'
typeset -g __rolecall_source_cmds='login logout populate'
typeset -g __rolecall_flags='setup --identity-center --region --entra-saml --entra-oidc --name --yes --no-populate --role --no-browser --service --shell-init --endpoint-url --authority
login --no-browser --paste --force
use --unset
status --json
prompt --format --profile --color --shell
populate --dry-run --prefix --name-template --prune
import --dry-run
container --format --token-file --relative --pod-identity --revoke --renew --all
exec --static --read-only --policy
env --format
console --service --region --session-duration --print
audit --since --profile --interface --json
relay --listen --to --idle-timeout
demo --keep'

rolecall() {
    if [[ "${1-}" == use ]]; then
        shift
        local __rolecall_lines
        __rolecall_lines=$("$__rolecall_bin" use --shell zsh "$@") || return
        eval "$__rolecall_lines"
    else
        "$__rolecall_bin" "$@"
    fi
}

__rolecall_prompt() {
    # No active profile: skip the process start entirely (this runs on every prompt).
    [[ -n "${ROLECALL_PROFILE-}${AWS_PROFILE-}" ]] || return 0
    "$__rolecall_bin" prompt --shell zsh 2>/dev/null
    return 0
}

__rolecall_names() {
    "$__rolecall_bin" --no-autostart names "$1" 2>/dev/null
}

_rolecall() {
    local cur=${words[CURRENT]-} prev=${words[CURRENT-1]-} sub= line
    local -i i positional=0
    local -a cands
    for (( i = 2; i < CURRENT; i++ )); do
        case ${words[i]} in
            --) positional=99 ;;
            -*) ;;
            *)
                if [[ -z $sub ]]; then
                    sub=${words[i]}
                else
                    positional=$(( positional + 1 ))
                fi
                ;;
        esac
    done
    if [[ -z $sub ]]; then
        if [[ $cur == -* ]]; then
            cands=(--no-autostart --help --version)
        else
            cands=(${=__rolecall_subcommands})
        fi
    elif [[ $prev == --profile ]]; then
        cands=(${(f)"$(__rolecall_names profiles)"})
    elif [[ $cur == -* ]]; then
        for line in ${(f)__rolecall_flags}; do
            [[ $line == "$sub "* ]] && cands+=(${=line#* })
        done
        cands+=(--help)
    elif (( positional == 0 )); then
        if [[ " $__rolecall_profile_cmds " == *" $sub "* ]]; then
            cands=(${(f)"$(__rolecall_names profiles)"})
        elif [[ " $__rolecall_source_cmds " == *" $sub "* ]]; then
            cands=(${(f)"$(__rolecall_names sources)"})
        elif [[ $sub == init ]]; then
            cands=(bash zsh fish powershell)
        elif [[ $sub == completions ]]; then
            cands=(bash zsh fish powershell elvish)
        fi
    fi
    if (( ${#cands} )); then
        compadd -- "${cands[@]}"
    else
        _files
    fi
}

# compdef exists only once compinit ran; frameworks run it at various points, so register
# now if we can, else at the first prompt after compinit shows up.
if (( ${+functions[compdef]} )); then
    compdef _rolecall rolecall
else
    __rolecall_compdef_later() {
        if (( ${+functions[compdef]} )); then
            compdef _rolecall rolecall
            add-zsh-hook -d precmd __rolecall_compdef_later
        fi
    }
    autoload -Uz add-zsh-hook && add-zsh-hook precmd __rolecall_compdef_later
fi
