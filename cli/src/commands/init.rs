//! `rolecall init <shell>`: prints the shell integration from `shell/` (embedded at build
//! time), with the absolute path of this binary and the command table filled in.
//!
//! The table (subcommands, which ones take a profile or a source first, each one's flags) is
//! derived from the clap definition, so completions cannot drift from the real command line.

use crate::cli::{Cli, InitArgs, Shell};
use anyhow::Context;
use clap::CommandFactory;
use std::io::Write;

const BASH: &str = include_str!("../../../shell/rolecall.bash");
const ZSH: &str = include_str!("../../../shell/rolecall.zsh");
const FISH: &str = include_str!("../../../shell/rolecall.fish");
const POWERSHELL: &str = include_str!("../../../shell/rolecall.ps1");

pub fn run(a: &InitArgs) -> anyhow::Result<i32> {
    let exe = std::env::current_exe().context("cannot find the path of this rolecall binary")?;
    let exe = exe
        .to_str()
        .context("the path of this rolecall binary is not valid UTF-8")?;
    let script = script(a.shell, exe);
    let mut out = std::io::stdout().lock();
    out.write_all(script.as_bytes())
        .and_then(|_| out.flush())
        .context("cannot write to stdout")?;
    Ok(0)
}

/// The integration script for `shell`, calling the binary at `exe`.
pub fn script(shell: Shell, exe: &str) -> String {
    let t = CommandTable::from_clap();
    let (template, bin) = match shell {
        Shell::Bash => (BASH, quote_posix(exe)),
        Shell::Zsh => (ZSH, quote_posix(exe)),
        Shell::Fish => (FISH, quote_fish(exe)),
        Shell::Powershell => (POWERSHELL, quote_powershell(exe)),
    };
    // The table holds only clap identifiers ([a-z-]), so it is safe inside single quotes.
    template
        .replace("@ROLECALL_BIN@", &bin)
        .replace("@SUBCOMMANDS@", &t.subcommands.join(" "))
        .replace("@PROFILE_CMDS@", &t.profile_cmds.join(" "))
        .replace("@SOURCE_CMDS@", &t.source_cmds.join(" "))
        .replace("@FLAGS@", &t.flag_lines().join("\n"))
}

/// What completions need to know about the command line.
#[derive(Debug, Default)]
pub struct CommandTable {
    /// Visible subcommands.
    pub subcommands: Vec<String>,
    /// Subcommands whose first positional argument is a profile name.
    pub profile_cmds: Vec<String>,
    /// Subcommands whose first positional argument is a source name.
    pub source_cmds: Vec<String>,
    /// Each subcommand's visible long flags.
    pub flags: Vec<(String, Vec<String>)>,
}

impl CommandTable {
    pub fn from_clap() -> Self {
        let cmd = Cli::command();
        let mut t = CommandTable::default();
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = sub.get_name().to_owned();
            let first_positional = sub.get_positionals().next().map(|a| a.get_id().as_str());
            match first_positional {
                Some("profile") => t.profile_cmds.push(name.clone()),
                Some("source") => t.source_cmds.push(name.clone()),
                _ => {}
            }
            let flags: Vec<String> = sub
                .get_arguments()
                .filter(|a| !a.is_hide_set() && !a.is_global_set())
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .collect();
            t.flags.push((name.clone(), flags));
            t.subcommands.push(name);
        }
        t
    }

    /// `sub --flag --flag` lines; subcommands without flags are left out.
    pub fn flag_lines(&self) -> Vec<String> {
        self.flags
            .iter()
            .filter(|(_, f)| !f.is_empty())
            .map(|(s, f)| format!("{s} {}", f.join(" ")))
            .collect()
    }
}

fn quote_posix(s: &str) -> String {
    let mut out = String::new();
    super::use_profile::quote_posix(&mut out, s);
    out
}

fn quote_fish(s: &str) -> String {
    let mut out = String::new();
    super::use_profile::quote_fish(&mut out, s);
    out
}

fn quote_powershell(s: &str) -> String {
    let mut out = String::new();
    super::use_profile::quote_powershell(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_follows_the_command_line() {
        let t = CommandTable::from_clap();
        for s in ["login", "use", "status", "prompt", "populate", "exec"] {
            assert!(t.subcommands.iter().any(|x| x == s), "{s}");
        }
        // Hidden helpers stay out of completions.
        assert!(!t.subcommands.iter().any(|x| x == "names" || x == "man"));
        for s in ["use", "credential-process", "exec", "env"] {
            assert!(t.profile_cmds.iter().any(|x| x == s), "{s}");
        }
        for s in ["login", "logout", "populate"] {
            assert!(t.source_cmds.iter().any(|x| x == s), "{s}");
        }
        let lines = t.flag_lines();
        assert!(lines.iter().any(|l| l == "use --unset"), "{lines:?}");
        assert!(lines
            .iter()
            .any(|l| l.starts_with("populate --dry-run --prefix")));
        // `use --shell` is for the shell function, not for people.
        assert!(lines
            .iter()
            .all(|l| !l.starts_with("use ") || !l.contains("--shell")));
    }

    #[test]
    fn every_placeholder_is_filled() {
        for sh in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Powershell] {
            let s = script(sh, "/opt/it's here/rolecall");
            for ph in [
                "@ROLECALL_BIN@",
                "@SUBCOMMANDS@",
                "@PROFILE_CMDS@",
                "@SOURCE_CMDS@",
                "@FLAGS@",
            ] {
                assert!(!s.contains(ph), "{sh:?}: {ph}");
            }
        }
        assert!(script(Shell::Bash, "/opt/it's/rolecall")
            .contains("__rolecall_bin='/opt/it'\\''s/rolecall'\n"));
        assert!(script(Shell::Fish, "/opt/it's/rolecall")
            .contains("set -g __rolecall_bin '/opt/it\\'s/rolecall'\n"));
    }
}
