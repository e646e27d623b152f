# rolecall shell integration for PowerShell 7.
# Load it with:  rolecall init powershell | Out-String | Invoke-Expression
#
# Defines:
#   rolecall use <profile> | rolecall use --unset | rolecall use   (picker)
#       sets $env:AWS_PROFILE, $env:ROLECALL_PROFILE and $env:AWS_REGION in this session
#   __rolecall_prompt
#       the prompt segment, e.g.
#           function prompt { "$(__rolecall_prompt) PS $($executionContext.SessionState.Path.CurrentLocation)> " }
#   completion of subcommands, flags, profile and source names

$global:__RolecallBin = '/usr/local/bin/rolecall'
$global:__RolecallSubcommands = 'setup login logout credential-process use status prompt init completions populate import container exec env console audit relay daemon service demo' -split ' '
$global:__RolecallProfileCmds = 'credential-process use container exec env console' -split ' '
$global:__RolecallSourceCmds = 'login logout populate' -split ' '
$global:__RolecallFlags = 'setup --identity-center --region --entra-saml --entra-oidc --name --yes --no-populate --role --no-browser --service --shell-init --endpoint-url --authority
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
demo --keep' -split "`n"

function global:rolecall {
    if ($args.Count -ge 1 -and $args[0] -eq 'use') {
        $rest = @($args | Select-Object -Skip 1)
        $lines = & $global:__RolecallBin use --shell powershell @rest
        # The binary has already said why on stderr.
        if ($LASTEXITCODE -ne 0) { return }
        if ($lines) { ($lines -join "`n") | Invoke-Expression }
    } else {
        & $global:__RolecallBin @args
    }
}

function global:__rolecall_prompt {
    # No active profile: skip the process start entirely (this runs on every prompt).
    if (-not ($env:ROLECALL_PROFILE -or $env:AWS_PROFILE)) { return '' }
    $segment = & $global:__RolecallBin prompt --shell powershell 2>$null
    if ($segment) { return ($segment -join '') }
    return ''
}

Register-ArgumentCompleter -Native -CommandName rolecall -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = @($commandAst.CommandElements | Where-Object { $_.Extent.EndOffset -le $cursorPosition } |
        ForEach-Object { $_.ToString() })
    if ($wordToComplete -ne '' -and $words.Count -gt 0) { $words = @($words | Select-Object -SkipLast 1) }
    $rest = @($words | Select-Object -Skip 1 | Where-Object { -not $_.StartsWith('-') })
    $candidates = @()
    if ($rest.Count -eq 0) {
        $candidates = $global:__RolecallSubcommands
    } elseif ($wordToComplete.StartsWith('-')) {
        $line = $global:__RolecallFlags | Where-Object { $_.StartsWith("$($rest[0]) ") } | Select-Object -First 1
        if ($line) { $candidates = @($line -split ' ' | Select-Object -Skip 1) }
    } elseif ($rest.Count -eq 1) {
        if ($global:__RolecallProfileCmds -contains $rest[0]) {
            $candidates = @(& $global:__RolecallBin --no-autostart names profiles 2>$null)
        } elseif ($global:__RolecallSourceCmds -contains $rest[0]) {
            $candidates = @(& $global:__RolecallBin --no-autostart names sources 2>$null)
        } elseif ($rest[0] -eq 'init' -or $rest[0] -eq 'completions') {
            $candidates = @('bash', 'zsh', 'fish', 'powershell')
        }
    }
    $candidates | Where-Object { $_ -like "$wordToComplete*" } | ForEach-Object {
        [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
    }
}
