# rolecall shell integration for fish (3.0 and later).
# Load it with:  rolecall init fish | source
#
# Defines:
#   rolecall use <profile> | rolecall use --unset | rolecall use   (picker)
#       sets AWS_PROFILE, ROLECALL_PROFILE and AWS_REGION in this shell
#   __rolecall_prompt
#       the prompt segment, e.g. in fish_right_prompt:
#           function fish_right_prompt; __rolecall_prompt; end
#   completion of subcommands, flags, profile and source names

set -g __rolecall_bin '/usr/local/bin/rolecall'
set -g __rolecall_subcommands 'setup login logout credential-process use status prompt init completions populate import container exec env console audit relay daemon service demo'
set -g __rolecall_profile_cmds 'credential-process use container exec env console'
set -g __rolecall_source_cmds 'login logout populate'
set -g __rolecall_flags 'setup --identity-center --region --entra-saml --entra-oidc --name --yes --no-populate --role --no-browser --service --shell-init --endpoint-url --authority
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

function rolecall --description 'AWS credentials through Microsoft Entra ID'
    if test (count $argv) -ge 1; and test "$argv[1]" = use
        # The binary prints the set/erase lines; a failure has already said why on stderr.
        set -l lines ($__rolecall_bin use --shell fish $argv[2..-1])
        or return
        string join \n -- $lines | source
        return 0
    end
    $__rolecall_bin $argv
end

function __rolecall_prompt --description 'rolecall prompt segment'
    # No active profile: skip the process start entirely (this runs on every prompt).
    test -n "$ROLECALL_PROFILE$AWS_PROFILE"; or return 0
    $__rolecall_bin prompt --shell fish 2>/dev/null
    return 0
end

function __rolecall_names
    $__rolecall_bin --no-autostart names $argv[1] 2>/dev/null
end

# Whether the command line has its subcommand and no positional argument after it yet.
function __rolecall_wants_first_arg
    set -l tokens (commandline -opc)
    set -l positional 0
    set -l sub ''
    for t in $tokens[2..-1]
        switch $t
            case '-*'
            case '*'
                if test -z "$sub"
                    set sub $t
                else
                    set positional (math $positional + 1)
                end
        end
    end
    test -n "$sub"; and test $positional -eq 0; and contains -- $sub $argv
end

function __rolecall_setup_completions
    complete -c rolecall -e
    complete -c rolecall -f
    complete -c rolecall -n __fish_use_subcommand -a "$__rolecall_subcommands"
    complete -c rolecall -n __fish_use_subcommand -l no-autostart -d 'Do not start rolecalld'
    set -l profile_cmds (string split ' ' -- $__rolecall_profile_cmds)
    set -l source_cmds (string split ' ' -- $__rolecall_source_cmds)
    complete -c rolecall -n "__rolecall_wants_first_arg $profile_cmds" -a '(__rolecall_names profiles)'
    complete -c rolecall -n "__rolecall_wants_first_arg $source_cmds" -a '(__rolecall_names sources)'
    complete -c rolecall -n '__rolecall_wants_first_arg init' -a 'bash zsh fish powershell'
    complete -c rolecall -n '__rolecall_wants_first_arg completions' -a 'bash zsh fish powershell elvish'
    complete -c rolecall -l profile -x -a '(__rolecall_names profiles)'
    for line in (string split \n -- $__rolecall_flags)
        set -l parts (string split ' ' -- $line)
        for flag in $parts[2..-1]
            complete -c rolecall -n "__fish_seen_subcommand_from $parts[1]" -l (string replace -r '^--' '' -- $flag)
        end
    end
    # `exec <profile> -- cmd`: the command and its arguments are files and commands again.
    complete -c rolecall -n '__fish_seen_subcommand_from exec; and contains -- -- (commandline -opc)' -F
end
__rolecall_setup_completions
functions -e __rolecall_setup_completions
