//! The shell integration in real shells (bash, zsh, fish from Debian): `rolecall use` sets and
//! unsets the variables, the prompt function prints the segment, completions offer profile
//! names, and `set -u`/`set -e` shells keep working. Interactive shells run inside tmux.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod shell_common;

use shell_common::{stderr, stdout, Install, Tmux, BIN};

fn init_line(shell: &str) -> String {
    match shell {
        "fish" => format!("'{BIN}' init fish | source"),
        _ => format!("eval \"$('{BIN}' init {shell})\""),
    }
}

#[test]
fn bash_strict_mode_use_prompt_unset() {
    let ins = Install::new();
    ins.write_snapshot(std::process::id(), 2 * 3600 + 150, false);
    let script = format!(
        r#"set -euo pipefail
{init}
rolecall use dev-admin
echo "P=$AWS_PROFILE R=$ROLECALL_PROFILE G=$AWS_REGION"
echo "seg=[$(__rolecall_prompt)]"
rolecall use prod-ro
echo "P=$AWS_PROFILE G=${{AWS_REGION-none}}"
rolecall use --unset
echo "after=${{AWS_PROFILE-unset}}/${{ROLECALL_PROFILE-unset}}/${{AWS_REGION-unset}}"
echo "empty=[$(__rolecall_prompt)]"
"#,
        init = init_line("bash")
    );
    let o = ins.command("bash").arg("-c").arg(&script).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "P=dev-admin R=dev-admin G=eu-central-1\n\
         seg=[dev-admin@Dev 2h02m]\n\
         P=prod-ro G=eu-west-1\n\
         after=unset/unset/unset\n\
         empty=[]\n"
    );
    assert_eq!(stderr(&o), "");
}

#[test]
fn zsh_nounset_errexit_use_prompt_unset() {
    let ins = Install::new();
    ins.write_snapshot(std::process::id(), 10 * 60 + 30, false);
    let script = format!(
        r#"setopt nounset errexit pipefail
{init}
rolecall use dev-admin
echo "P=$AWS_PROFILE R=$ROLECALL_PROFILE G=$AWS_REGION"
print -r -- "seg=[$(__rolecall_prompt)]"
rolecall use --unset
echo "after=${{AWS_PROFILE-unset}}/${{AWS_REGION-unset}}"
"#,
        init = init_line("zsh")
    );
    let o = ins
        .command("zsh")
        .arg("-f")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Under 15 minutes: yellow, with zsh's %{ %} around the escapes.
    assert_eq!(
        stdout(&o),
        "P=dev-admin R=dev-admin G=eu-central-1\n\
         seg=[%{\x1b[33m%}dev-admin@Dev 10m%{\x1b[0m%}]\n\
         after=unset/unset\n"
    );
}

#[test]
fn fish_use_prompt_unset() {
    let ins = Install::new();
    ins.write_snapshot(std::process::id(), 3600, true);
    let script = format!(
        r#"{init}
rolecall use dev-admin
echo "P=$AWS_PROFILE R=$ROLECALL_PROFILE G=$AWS_REGION"
echo "seg=["(__rolecall_prompt)"]"
rolecall use --unset
set -q AWS_PROFILE; or echo unset-ok
set -q AWS_REGION; or echo region-unset-ok
"#,
        init = init_line("fish")
    );
    let o = ins
        .command("fish")
        .arg("--no-config")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "P=dev-admin R=dev-admin G=eu-central-1\n\
         seg=[\x1b[31mdev-admin@Dev login needed\x1b[0m]\n\
         unset-ok\nregion-unset-ok\n"
    );
}

#[test]
fn unknown_profile_fails_cleanly_and_changes_nothing() {
    let ins = Install::new();
    for (sh, args, script) in [
        (
            "bash",
            vec!["-c"],
            format!("set -u\n{}\nexport AWS_PROFILE=keep\nrolecall use nope; echo \"rc=$? P=$AWS_PROFILE\"", init_line("bash")),
        ),
        (
            "zsh",
            vec!["-f", "-c"],
            format!("setopt nounset\n{}\nexport AWS_PROFILE=keep\nrolecall use nope; echo \"rc=$? P=$AWS_PROFILE\"", init_line("zsh")),
        ),
        (
            "fish",
            vec!["--no-config", "-c"],
            format!("{}\nset -gx AWS_PROFILE keep\nrolecall use nope; echo \"rc=$status P=$AWS_PROFILE\"", init_line("fish")),
        ),
    ] {
        let o = ins.command(sh).args(&args).arg(&script).output().unwrap();
        assert_eq!(stdout(&o), "rc=1 P=keep\n", "{sh}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{sh}: {err}");
        assert!(err.starts_with("rolecall: unknown profile 'nope'"), "{sh}: {err}");
    }
}

#[test]
fn use_without_the_shell_function_explains_the_setup() {
    let ins = Install::new();
    let o = ins.rolecall(&["use", "dev-admin"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("rolecall init"), "{}", stderr(&o));
}

#[test]
fn use_without_a_terminal_needs_a_profile() {
    let ins = Install::new();
    let o = ins.rolecall(&["use", "--shell", "bash"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("no profile given"), "{}", stderr(&o));
}

#[test]
fn bash_completion_offers_subcommands_flags_profiles_and_sources() {
    let ins = Install::new();
    let script = format!(
        r#"set -u
{init}
comp() {{ COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); __rolecall_complete; printf '%s ' "${{COMPREPLY[@]-}}"; echo; }}
comp rolecall us
comp rolecall use ''
comp rolecall use d
comp rolecall login ''
comp rolecall populate --pr
comp rolecall prompt --profile p
comp rolecall exec dev-admin ''
complete -p rolecall
"#,
        init = init_line("bash")
    );
    let o = ins.command("bash").arg("-c").arg(&script).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "use ");
    assert_eq!(lines[1], "dev-admin prod-ro ");
    assert_eq!(lines[2], "dev-admin ");
    assert_eq!(lines[3], "corp ");
    assert_eq!(lines[4], "--prefix --prune ");
    assert_eq!(lines[5], "prod-ro ");
    // After the profile: nothing from us, so bash falls back to file names (-o default).
    assert_eq!(lines[6], " ");
    assert!(lines[7].contains("-F __rolecall_complete"), "{}", lines[7]);
}

/// Names with shell syntax in them (from a hand-edited config, or printed by some other
/// `rolecall`) are completion words, never code: neither bash, zsh nor fish runs them.
#[test]
fn completion_never_runs_what_names_contain() {
    let ins = Install::new();
    let marker = ins.path().join("pwned-config");
    let fake_marker = ins.path().join("pwned-fake");
    let cfg = format!(
        "{}\n[profiles.\"$(touch {m})\"]\nsource = \"corp\"\naccount = \"111111111111\"\nrole = \"X\"\n\n[profiles.\"`touch {m}`\"]\nsource = \"corp\"\naccount = \"111111111111\"\nrole = \"X\"\n",
        shell_common::CONFIG,
        m = marker.display()
    );
    std::fs::write(ins.path().join("config.toml"), cfg).unwrap();
    // Words carry no spaces (they are split on them, as `compgen -W` did): the payload is a
    // script that leaves a marker when run.
    use std::os::unix::fs::PermissionsExt;
    let pwn = ins.path().join("pwn");
    std::fs::write(
        &pwn,
        format!("#!/bin/sh\ntouch '{}'\n", fake_marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&pwn, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fake = ins.path().join("fake-rolecall");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nprintf '%s\\n' dev-x '$({m})' '`{m}`' '*' '$HOME'\n",
            m = pwn.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();

    let bash = format!(
        r#"set -u
{init}
comp() {{ COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); __rolecall_complete; printf '%s|' "${{COMPREPLY[@]-}}"; echo; }}
comp rolecall use ''
__rolecall_bin='{fake}'
comp rolecall use ''
comp rolecall use '$'
"#,
        init = init_line("bash"),
        fake = fake.display()
    );
    let o = ins.command("bash").arg("-c").arg(&bash).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "dev-admin|prod-ro|",
        "names the daemon refuses are not offered"
    );
    let m = pwn.display();
    assert_eq!(
        lines[1],
        format!("dev-x|$({m})|`{m}`|*|$HOME|"),
        "words are offered literally"
    );
    assert_eq!(lines[2], format!("$({m})|$HOME|"));

    if which("zsh") {
        let zsh = format!(
            "{init}\n__rolecall_bin='{fake}'\nprint -rl -- ${{(f)\"$(__rolecall_names profiles)\"}}\n",
            init = init_line("zsh"),
            fake = fake.display()
        );
        let o = ins
            .command("zsh")
            .arg("-f")
            .arg("-c")
            .arg(&zsh)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    if which("fish") {
        let fish = format!(
            "{}\nset __rolecall_bin '{}'\ncomplete -C 'rolecall use '",
            init_line("fish"),
            fake.display()
        );
        let o = ins
            .command("fish")
            .arg("--no-config")
            .arg("-c")
            .arg(&fish)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("$("), "{}", stdout(&o));
    }
    assert!(!marker.exists(), "a name from the config was run");
    assert!(!fake_marker.exists(), "a completion word was run");
}

fn which(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn fish_completion_offers_profiles_and_sources() {
    let ins = Install::new();
    let script = format!(
        "{}\ncomplete -C 'rolecall use '\necho ==\ncomplete -C 'rolecall login '\necho ==\ncomplete -C 'rolecall us'\necho ==\ncomplete -C 'rolecall populate --d'",
        init_line("fish")
    );
    let o = ins
        .command("fish")
        .arg("--no-config")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let parts: Vec<Vec<&str>> = out
        .split("==\n")
        .map(|p| p.lines().map(|l| l.split('\t').next().unwrap()).collect())
        .collect();
    assert_eq!(parts[0], ["dev-admin", "prod-ro"]);
    assert_eq!(parts[1], ["corp"]);
    assert_eq!(parts[2], ["use"]);
    assert_eq!(parts[3], ["--dry-run"]);
}

fn zshrc(ins: &Install, body: &str) {
    let zdot = ins.path().join("zdot");
    std::fs::create_dir_all(&zdot).unwrap();
    std::fs::write(zdot.join(".zshrc"), body).unwrap();
}

#[test]
fn zsh_interactive_with_a_framework_style_theme() {
    let ins = Install::new();
    ins.write_snapshot(std::process::id(), 5400 + 30, false);
    // What oh-my-zsh does: compinit first, prompt_subst, a theme that rebuilds PROMPT in a
    // precmd hook; the user then adds the segment to RPROMPT and loads rolecall last.
    zshrc(
        &ins,
        &format!(
            r#"setopt nounset
autoload -Uz compinit && compinit -u -d "$ZDOTDIR/.zcompdump"
setopt prompt_subst
autoload -Uz add-zsh-hook
__theme_precmd() {{ PROMPT='theme> ' }}
add-zsh-hook precmd __theme_precmd
{init}
RPROMPT='<$(__rolecall_prompt)>'
"#,
            init = init_line("zsh")
        ),
    );
    let zdot = ins.path().join("zdot");
    let t = Tmux::start(
        ins,
        &["env", &format!("ZDOTDIR={}", zdot.display()), "zsh", "-i"],
    );
    t.wait_for("the theme prompt", |s| {
        s.contains("theme>") && s.contains("<>")
    });
    t.send(&["-l", "rolecall use dev-a"]);
    t.send(&["Tab"]);
    t.wait_for("the completed profile", |s| {
        s.contains("rolecall use dev-admin")
    });
    t.send(&["Enter"]);
    t.wait_for("the segment in RPROMPT", |s| {
        s.contains("<dev-admin@Dev 1h30m>")
    });
    t.line("echo \"[$AWS_PROFILE|$AWS_REGION]\"");
    t.wait_for("the variables", |s| s.contains("[dev-admin|eu-central-1]"));
}

#[test]
fn zsh_interactive_init_before_compinit_registers_later() {
    let ins = Install::new();
    zshrc(
        &ins,
        &format!(
            "{init}\nautoload -Uz compinit && compinit -u -d \"$ZDOTDIR/.zcompdump\"\nPROMPT='z> '\n",
            init = init_line("zsh")
        ),
    );
    let zdot = ins.path().join("zdot");
    let t = Tmux::start(
        ins,
        &["env", &format!("ZDOTDIR={}", zdot.display()), "zsh", "-i"],
    );
    t.wait_for("the prompt", |s| s.contains("z>"));
    t.send(&["-l", "rolecall use pro"]);
    t.send(&["Tab"]);
    t.wait_for("the completed profile", |s| {
        s.contains("rolecall use prod-ro")
    });
}

#[test]
fn bash_interactive_prompt_and_picker() {
    let ins = Install::new();
    ins.write_snapshot(std::process::id(), 600 + 30, false);
    let rc = ins.path().join("bashrc");
    std::fs::write(
        &rc,
        format!(
            "set -u\n{init}\nPS1='[$(__rolecall_prompt)]> '\n",
            init = init_line("bash")
        ),
    )
    .unwrap();
    let t = Tmux::start(
        ins,
        &[
            "bash",
            "--noprofile",
            "--rcfile",
            rc.to_str().unwrap(),
            "-i",
        ],
    );
    t.wait_for("the empty segment", |s| s.contains("[]>"));
    t.line("rolecall use");
    t.wait_for("the picker", |s| {
        s.contains("1) dev-admin  [corp eu-central-1]") && s.contains("2) prod-ro")
    });
    t.line("dev");
    // readline must see the colour escapes as invisible: the visible prompt is exactly this.
    let s = t.wait_for("the coloured segment", |s| {
        s.contains("[dev-admin@Dev 10m]>")
    });
    assert!(!s.contains("\\["), "{s}");
    t.line("echo \"<$AWS_PROFILE>\"");
    t.wait_for("the variable", |s| s.contains("<dev-admin>"));
}

#[test]
fn fish_interactive_right_prompt() {
    let ins = Install::new();
    ins.write_snapshot(std::process::id(), 7200 + 30, false);
    let conf = ins.path().join("home/.config/fish");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("config.fish"),
        format!(
            "{init}\nfunction fish_prompt; echo -n 'f> '; end\nfunction fish_right_prompt; echo -n '<'; __rolecall_prompt; echo -n '>'; end\nfunction fish_greeting; end\n",
            init = init_line("fish")
        ),
    )
    .unwrap();
    let t = Tmux::start(ins, &["fish", "-i"]);
    t.wait_for("the prompt", |s| s.contains("f>") && s.contains("<>"));
    t.line("rolecall use dev-admin");
    // The segment in the right prompt. Under load fish may repaint the right prompt over the
    // previous one's `<>` (seen as `<>dev-admin@Dev 2h00m`), so the brackets are not required.
    t.wait_for("the segment", |s| s.contains("dev-admin@Dev 2h00m"));
}
