//! The scripts themselves: shellcheck and each shell's syntax check over `shell/` and over
//! what `rolecall init` prints, and snapshot tests of the init output per shell.
//!
//! Snapshots live in `cli/tests/shell_snapshots/`; after an intended change, regenerate them
//! with `UPDATE_SNAPSHOTS=1 cargo test -p rolecall --test shell_scripts` and review the diff.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod shell_common;

use shell_common::{stderr, Install, BIN};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn init_output(shell: &str) -> String {
    let o = Install::new().rolecall(&["init", shell]);
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

fn check(cmd: &mut Command, what: &str) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        o.status.success(),
        "{what}:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn shellcheck_is_clean() {
    let script = repo().join("shell/rolecall.bash");
    check(
        Command::new("shellcheck").args(["-s", "bash"]).arg(&script),
        "shellcheck shell/rolecall.bash",
    );
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("init.bash");
    std::fs::write(&generated, init_output("bash")).unwrap();
    check(
        Command::new("shellcheck")
            .args(["-s", "bash"])
            .arg(&generated),
        "shellcheck of `rolecall init bash`",
    );
}

#[test]
fn syntax_checks_pass() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, file, argv) in [
        ("bash", "rolecall.bash", vec!["bash", "-n"]),
        ("zsh", "rolecall.zsh", vec!["zsh", "-n"]),
        ("fish", "rolecall.fish", vec!["fish", "--no-execute"]),
    ] {
        check(
            Command::new(argv[0])
                .args(&argv[1..])
                .arg(repo().join("shell").join(file)),
            &format!("{} shell/{file}", argv.join(" ")),
        );
        let generated = dir.path().join(file);
        std::fs::write(&generated, init_output(shell)).unwrap();
        check(
            Command::new(argv[0]).args(&argv[1..]).arg(&generated),
            &format!("{} of `rolecall init {shell}`", argv.join(" ")),
        );
    }
}

#[test]
fn init_output_matches_the_snapshots() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let dir = repo().join("cli/tests/shell_snapshots");
    for (shell, ext) in [
        ("bash", "bash"),
        ("zsh", "zsh"),
        ("fish", "fish"),
        ("powershell", "ps1"),
    ] {
        // The binary's own path differs per checkout; the snapshot holds a fixed stand-in.
        let got = init_output(shell).replace(BIN, "/usr/local/bin/rolecall");
        let path = dir.join(format!("init.{ext}"));
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SNAPSHOTS=1 creates it)", path.display()));
        assert!(
            got == want,
            "`rolecall init {shell}` differs from {} (UPDATE_SNAPSHOTS=1 to accept)",
            path.display()
        );
    }
}

#[test]
fn completions_for_every_shell_are_generated() {
    let ins = Install::new();
    for (shell, check_argv) in [
        ("bash", Some(vec!["bash", "-n"])),
        ("zsh", Some(vec!["zsh", "-n"])),
        ("fish", Some(vec!["fish", "--no-execute"])),
        ("powershell", None),
        ("elvish", None),
    ] {
        let o = ins.rolecall(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let text = String::from_utf8(o.stdout).unwrap();
        // Every visible subcommand is offered.
        for sub in ["login", "use", "status", "populate", "credential-process"] {
            assert!(text.contains(sub), "{shell} completions lack {sub}");
        }
        if let Some(argv) = check_argv {
            let dir = tempfile::tempdir().unwrap();
            let f = dir.path().join("c");
            std::fs::write(&f, &text).unwrap();
            check(
                Command::new(argv[0]).args(&argv[1..]).arg(&f),
                &format!("{shell} completions"),
            );
        }
    }
}
