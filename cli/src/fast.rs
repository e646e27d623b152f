//! The argv fast path for the two commands that run on every prompt and every AWS call.
//!
//! Building clap's command tree (all subcommands, their help and value parsers) costs a few
//! hundred microseconds per process — more than `rolecall prompt` spends on its own work. So
//! `main` first tries this small parser, which accepts only the plain forms
//!
//! - `prompt [--format F] [--profile P] [--color C] [--shell S]` (also `--opt=value`)
//! - `credential-process <profile>`
//!
//! and produces exactly the [`Cli`] value clap would. Anything else — help, unknown or repeated
//! options, values that look like options or are empty, non-UTF-8 arguments or environment
//! values — returns `None` and goes through clap, so errors and help text never differ.

use crate::cli::{Cli, ColorChoice, Command, ProfileArg, PromptArgs, Shell};
use std::ffi::OsString;

/// The argv after the program name, or `None` for "let clap decide".
pub fn parse(args: impl Iterator<Item = OsString>) -> Option<Cli> {
    parse_with(args, |name| std::env::var_os(name))
}

fn parse_with(
    args: impl Iterator<Item = OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Option<Cli> {
    let args: Vec<String> = args.map(|a| a.into_string().ok()).collect::<Option<_>>()?;
    let (first, rest) = args.split_first()?;
    let command = match first.as_str() {
        "prompt" => Command::Prompt(prompt_args(rest, &env)?),
        "credential-process" => match rest {
            [profile] if plain_value(profile) => Command::CredentialProcess(ProfileArg {
                profile: profile.clone(),
            }),
            _ => return None,
        },
        _ => return None,
    };
    Some(Cli {
        no_autostart: no_autostart(&env)?,
        command,
    })
}

/// `ROLECALL_NO_AUTOSTART` as clap's `FalseyValueParser` reads it: unset, empty or a false
/// literal (any case) is false, anything else true. Non-UTF-8 is clap's error to report.
fn no_autostart(env: &impl Fn(&str) -> Option<OsString>) -> Option<bool> {
    let Some(v) = env("ROLECALL_NO_AUTOSTART") else {
        return Some(false);
    };
    let v = v.into_string().ok()?.to_lowercase();
    Some(!(v.is_empty() || ["n", "no", "f", "false", "off", "0"].contains(&v.as_str())))
}

fn prompt_args(rest: &[String], env: &impl Fn(&str) -> Option<OsString>) -> Option<PromptArgs> {
    let mut a = PromptArgs {
        format: None,
        profile: None,
        color: ColorChoice::Auto,
        shell: None,
    };
    let (mut seen_color, mut it) = (false, rest.iter());
    while let Some(arg) = it.next() {
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, v.to_owned()),
            _ => (arg.as_str(), it.next()?.clone()),
        };
        if !plain_value(&value) {
            return None;
        }
        match name {
            "--format" if a.format.is_none() => a.format = Some(value),
            "--profile" if a.profile.is_none() => a.profile = Some(value),
            "--color" if !seen_color => {
                seen_color = true;
                a.color = match value.as_str() {
                    "auto" => ColorChoice::Auto,
                    "always" => ColorChoice::Always,
                    "never" => ColorChoice::Never,
                    _ => return None,
                };
            }
            "--shell" if a.shell.is_none() => {
                a.shell = Some(match value.as_str() {
                    "bash" => Shell::Bash,
                    "zsh" => Shell::Zsh,
                    "fish" => Shell::Fish,
                    "powershell" => Shell::Powershell,
                    _ => return None,
                });
            }
            _ => return None,
        }
    }
    if a.format.is_none() {
        // clap's `env = "ROLECALL_PROMPT_FORMAT"`; an empty or non-UTF-8 value is left to it.
        if let Some(f) = env("ROLECALL_PROMPT_FORMAT") {
            a.format = Some(f.into_string().ok().filter(|f| !f.is_empty())?);
        }
    }
    Some(a)
}

/// A value clap would take as-is: not empty and not something that looks like an option.
fn plain_value(v: &str) -> bool {
    !v.is_empty() && !v.starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn os(args: &[&str]) -> impl Iterator<Item = OsString> {
        args.iter()
            .map(OsString::from)
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    /// What clap makes of the same argv, with no environment variables that matter set
    /// (`Cli::try_parse_from` still reads the real environment; tests do not set these).
    fn clap(args: &[&str]) -> Option<String> {
        let mut argv = vec!["rolecall"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).ok().map(|c| format!("{c:?}"))
    }

    #[test]
    fn accepted_forms_parse_exactly_as_clap_does() {
        for args in [
            &["prompt"][..],
            &["prompt", "--format", "{profile} {time_left}"],
            &["prompt", "--format={profile}"],
            &["prompt", "--profile", "dev-admin", "--color", "never"],
            &["prompt", "--color=always", "--shell=zsh", "--profile=a=b"],
            &["prompt", "--shell", "bash", "--color", "auto"],
            &["prompt", "--shell", "fish"],
            &["prompt", "--shell", "powershell", "--format", "[{account}]"],
            &["credential-process", "dev-admin"],
            &["credential-process", "weird name/with%chars"],
        ] {
            let fast = parse_with(os(args), no_env).map(|c| format!("{c:?}"));
            assert!(fast.is_some(), "{args:?} should take the fast path");
            if std::env::var_os("ROLECALL_PROMPT_FORMAT").is_none()
                && std::env::var_os("ROLECALL_NO_AUTOSTART").is_none()
            {
                assert_eq!(fast, clap(args), "{args:?}");
            }
        }
    }

    #[test]
    fn anything_unusual_is_left_to_clap() {
        for args in [
            &[][..],
            &["--help"],
            &["--no-autostart", "credential-process", "p"],
            &["credential-process"],
            &["credential-process", "a", "b"],
            &["credential-process", "--help"],
            &["credential-process", "--", "p"],
            &["credential-process", "-p"],
            &["credential-process", ""],
            &["credential-process", "p", "--no-autostart"],
            &["prompt", "--help"],
            &["prompt", "-h"],
            &["prompt", "--format"],
            &["prompt", "--format", ""],
            &["prompt", "--format="],
            &["prompt", "--format", "-x"],
            &["prompt", "--format", "a", "--format", "b"],
            &["prompt", "--color", "sometimes"],
            &["prompt", "--color", "Always"],
            &["prompt", "--color", "never", "--color", "never"],
            &["prompt", "--shell", "tcsh"],
            &["prompt", "--shell", "zsh", "--shell", "zsh"],
            &["prompt", "--frobnicate", "x"],
            &["prompt", "extra"],
            &["prompt", "--no-autostart"],
            &["status"],
            &["Prompt"],
        ] {
            assert!(parse_with(os(args), no_env).is_none(), "{args:?}");
        }
        let bad = [OsString::from("prompt"), OsString::from("--profile"), {
            use std::os::unix::ffi::OsStringExt;
            OsString::from_vec(vec![0xff])
        }];
        assert!(parse_with(bad.into_iter(), no_env).is_none());
    }

    #[test]
    fn environment_is_read_as_clap_reads_it() {
        let with = |k: &'static str, v: &'static str| {
            move |name: &str| (name == k).then(|| OsString::from(v))
        };
        let cp = || os(&["credential-process", "p"]);
        for (v, off) in [
            ("1", true),
            ("yes", true),
            ("anything", true),
            ("0", false),
            ("FALSE", false),
            ("Off", false),
            ("n", false),
            ("", false),
        ] {
            let c = parse_with(cp(), with("ROLECALL_NO_AUTOSTART", v)).unwrap();
            assert_eq!(c.no_autostart, off, "ROLECALL_NO_AUTOSTART={v:?}");
        }

        let fmt = |args: &[&str], v: &'static str| match parse_with(
            os(args),
            with("ROLECALL_PROMPT_FORMAT", v),
        ) {
            Some(Cli {
                command: Command::Prompt(a),
                ..
            }) => Some(a.format),
            _ => None,
        };
        assert_eq!(fmt(&["prompt"], "{role}"), Some(Some("{role}".into())));
        // The flag wins over the variable.
        assert_eq!(
            fmt(&["prompt", "--format", "{account}"], "{role}"),
            Some(Some("{account}".into()))
        );
        assert_eq!(fmt(&["prompt"], ""), None);
    }
}
