//! `rolecall use <profile>` / `rolecall use --unset`: prints the shell lines that the shell
//! function from `rolecall init` evaluates to make a profile active in the current shell
//! (`AWS_PROFILE`, `ROLECALL_PROFILE`, `AWS_REGION`). A child process cannot change its
//! parent's environment, hence the function; run without it, this explains how to set it up.

mod picker;
pub mod profiles;
mod quote;

use crate::cli::{Shell, UseArgs};
use anyhow::{bail, Context};
use std::io::{IsTerminal, Write};

pub use profiles::{load as load_profiles, ProfileInfo};
pub use quote::{fish as quote_fish, posix as quote_posix, powershell as quote_powershell};

/// Records the region `use` exported, so that switching to a profile without one, or
/// `--unset`, removes only a region rolecall set and never one the user set themselves.
const REGION_MARK: &str = "ROLECALL_REGION";

pub fn run(a: &UseArgs) -> anyhow::Result<i32> {
    let Some(shell) = a.shell else {
        bail!(
            "`rolecall use` changes your shell's environment and needs the shell integration — \
             run: eval \"$(rolecall init bash)\" (or zsh, fish; add it to your shell's rc file)"
        );
    };
    let env = |k: &str| std::env::var(k).ok();
    let lines = if a.unset {
        if a.profile.is_some() {
            bail!("`--unset` takes no profile — run: rolecall use --unset");
        }
        unset_lines(shell, env(REGION_MARK), env("AWS_REGION"))
    } else {
        let profiles = load_profiles()?;
        let name = match &a.profile {
            Some(p) => p.clone(),
            None => pick(&profiles)?,
        };
        let Some(info) = profiles.iter().find(|p| p.name == name) else {
            bail!(
                "unknown profile '{name}' — run: rolecall status (or rolecall populate <source>)"
            );
        };
        use_lines(shell, info, env(REGION_MARK), env("AWS_REGION"))
    };
    let mut out = std::io::stdout().lock();
    out.write_all(lines.as_bytes())
        .and_then(|_| out.flush())
        .context("cannot write to stdout")?;
    Ok(0)
}

fn pick(profiles: &[ProfileInfo]) -> anyhow::Result<String> {
    if profiles.is_empty() {
        bail!("no profiles configured — run: rolecall setup (or rolecall populate <source>)");
    }
    // The shell function captures stdout, so the picker talks to the user on stderr and reads
    // the answer from stdin, which the function leaves on the terminal.
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        bail!("no profile given — run: rolecall use <profile>");
    }
    let current = std::env::var("ROLECALL_PROFILE").ok();
    picker::pick(
        profiles,
        current.as_deref(),
        &mut std::io::stdin().lock(),
        &mut std::io::stderr(),
    )
}

/// The lines that activate `info`.
pub fn use_lines(
    shell: Shell,
    info: &ProfileInfo,
    region_mark: Option<String>,
    aws_region: Option<String>,
) -> String {
    let mut out = String::new();
    quote::set(&mut out, shell, "AWS_PROFILE", &info.name);
    quote::set(&mut out, shell, "ROLECALL_PROFILE", &info.name);
    match &info.region {
        Some(r) => {
            quote::set(&mut out, shell, "AWS_REGION", r);
            quote::set(&mut out, shell, REGION_MARK, r);
        }
        None => {
            if region_mark.is_some() && region_mark == aws_region {
                quote::unset(&mut out, shell, "AWS_REGION");
            }
            quote::unset(&mut out, shell, REGION_MARK);
        }
    }
    out
}

/// The lines that deactivate the current profile.
pub fn unset_lines(
    shell: Shell,
    region_mark: Option<String>,
    aws_region: Option<String>,
) -> String {
    let mut out = String::new();
    quote::unset(&mut out, shell, "AWS_PROFILE");
    quote::unset(&mut out, shell, "ROLECALL_PROFILE");
    if region_mark.is_some() && region_mark == aws_region {
        quote::unset(&mut out, shell, "AWS_REGION");
    }
    quote::unset(&mut out, shell, REGION_MARK);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(region: Option<&str>) -> ProfileInfo {
        ProfileInfo {
            name: "dev-admin".into(),
            source: "corp".into(),
            region: region.map(Into::into),
        }
    }

    #[test]
    fn bash_lines_export_profile_and_region() {
        assert_eq!(
            use_lines(Shell::Bash, &info(Some("eu-west-1")), None, None),
            "export AWS_PROFILE='dev-admin'\nexport ROLECALL_PROFILE='dev-admin'\n\
             export AWS_REGION='eu-west-1'\nexport ROLECALL_REGION='eu-west-1'\n"
        );
    }

    #[test]
    fn a_region_set_by_the_user_survives_switching_and_unset() {
        let user = Some("us-east-1".to_owned());
        let ours = Some("eu-west-1".to_owned());
        let l = use_lines(Shell::Bash, &info(None), None, user.clone());
        assert!(!l.contains("unset AWS_REGION"), "{l}");
        let l = unset_lines(Shell::Zsh, None, user.clone());
        assert!(!l.contains("unset AWS_REGION"), "{l}");
        // Once rolecall set it, it is rolecall's to remove.
        let l = unset_lines(Shell::Zsh, ours.clone(), ours.clone());
        assert!(l.contains("unset AWS_REGION\n"), "{l}");
        // The user changed it after `use`: theirs now.
        let l = unset_lines(Shell::Zsh, ours, user);
        assert!(!l.contains("unset AWS_REGION\n"), "{l}");
    }

    #[test]
    fn fish_and_powershell_syntax() {
        assert_eq!(
            use_lines(Shell::Fish, &info(None), None, None),
            "set -gx AWS_PROFILE 'dev-admin'\nset -gx ROLECALL_PROFILE 'dev-admin'\n\
             set -e ROLECALL_REGION\n"
        );
        assert_eq!(
            unset_lines(Shell::Powershell, None, None),
            "Remove-Item Env:AWS_PROFILE -ErrorAction SilentlyContinue\n\
             Remove-Item Env:ROLECALL_PROFILE -ErrorAction SilentlyContinue\n\
             Remove-Item Env:ROLECALL_REGION -ErrorAction SilentlyContinue\n"
        );
    }
}
