//! Setting and removing environment variables in each shell's syntax, with values quoted so
//! that no profile name or region can inject shell code into the evaluated lines.

use crate::cli::Shell;

pub fn set(out: &mut String, shell: Shell, var: &str, value: &str) {
    match shell {
        Shell::Bash | Shell::Zsh => {
            out.push_str("export ");
            out.push_str(var);
            out.push('=');
            posix(out, value);
        }
        Shell::Fish => {
            out.push_str("set -gx ");
            out.push_str(var);
            out.push(' ');
            fish(out, value);
        }
        Shell::Powershell => {
            out.push_str("$env:");
            out.push_str(var);
            out.push_str(" = ");
            powershell(out, value);
        }
    }
    out.push('\n');
}

pub fn unset(out: &mut String, shell: Shell, var: &str) {
    match shell {
        Shell::Bash | Shell::Zsh => {
            out.push_str("unset ");
            out.push_str(var);
        }
        Shell::Fish => {
            out.push_str("set -e ");
            out.push_str(var);
        }
        Shell::Powershell => {
            out.push_str("Remove-Item Env:");
            out.push_str(var);
            out.push_str(" -ErrorAction SilentlyContinue");
        }
    }
    out.push('\n');
}

/// POSIX single quotes: nothing inside is special; a `'` closes, is escaped, and reopens.
pub fn posix(out: &mut String, value: &str) {
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
}

/// fish single quotes: only `\'` and `\\` are escapes.
pub fn fish(out: &mut String, value: &str) {
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
}

/// PowerShell single quotes: a quote is doubled. PowerShell also treats the typographic
/// quotes U+2018/U+2019/U+201A/U+201B as single quotes, so those are doubled too.
pub fn powershell(out: &mut String, value: &str) {
    out.push('\'');
    for c in value.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(f: fn(&mut String, &str), v: &str) -> String {
        let mut s = String::new();
        f(&mut s, v);
        s
    }

    #[test]
    fn quotes_are_escaped_per_shell() {
        assert_eq!(q(posix, "a'b$(x)"), "'a'\\''b$(x)'");
        assert_eq!(q(fish, "a'b\\c$x"), "'a\\'b\\\\c$x'");
        assert_eq!(q(powershell, "a'b\u{2019}$x"), "'a''b\u{2019}\u{2019}$x'");
    }

    #[test]
    fn hostile_values_round_trip_through_real_shells() {
        let nasty = "it's $(touch /nonexistent/x) `id` \\ \" ; \u{e9}";
        for (sh, args, line) in [
            ("bash", vec!["-c"], {
                let mut s = String::new();
                set(&mut s, Shell::Bash, "V", nasty);
                s + "printf %s \"$V\""
            }),
            ("zsh", vec!["-f", "-c"], {
                let mut s = String::new();
                set(&mut s, Shell::Zsh, "V", nasty);
                s + "printf %s \"$V\""
            }),
            ("fish", vec!["--no-config", "-c"], {
                let mut s = String::new();
                set(&mut s, Shell::Fish, "V", nasty);
                s + "printf %s \"$V\""
            }),
        ] {
            // A missing shell fails (it used to be skipped silently, a pass that checked less).
            let out = crate::spawn::command(sh)
                .args(&args)
                .arg(&line)
                .output()
                .unwrap_or_else(|e| {
                    panic!("cannot run {sh} ({e}): tests/setup-system.sh installs it")
                });
            assert_eq!(String::from_utf8_lossy(&out.stdout), nasty, "{sh}");
        }
    }

    /// Characters that quoting gets wrong when it goes wrong, mixed with arbitrary ones.
    fn value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let special = prop::sample::select(vec![
            '\'',
            '"',
            '\\',
            '$',
            '`',
            '\n',
            '\r',
            '\t',
            ' ',
            ';',
            '&',
            '|',
            '(',
            ')',
            '{',
            '}',
            '*',
            '?',
            '[',
            ']',
            '~',
            '#',
            '!',
            '%',
            '^',
            '\u{2018}',
            '\u{2019}',
            '\u{201A}',
            '\u{201B}',
            '\u{e9}',
            '\u{1F600}',
            '\u{7f}',
            '\u{1b}',
        ]);
        let ch = prop_oneof![
            3 => special,
            1 => any::<char>().prop_filter("no NUL (not a valid variable value)", |c| *c != '\0'),
        ];
        prop::collection::vec(ch, 0..24).prop_map(|v| v.into_iter().collect())
    }

    /// Runs one script that sets `V` to each value in turn, in `shell`'s syntax, and prints it
    /// NUL-terminated; returns what the shell printed, split at the NULs.
    fn through_shell(shell: Shell, values: &[String]) -> Vec<String> {
        let mut script = String::new();
        for v in values {
            set(&mut script, shell, "V", v);
            script.push_str("printf '%s\\0' \"$V\"\n");
        }
        let (sh, args): (&str, &[&str]) = match shell {
            Shell::Bash => ("bash", &["--norc", "--noprofile", "-c"]),
            Shell::Zsh => ("zsh", &["-f", "-c"]),
            Shell::Fish => ("fish", &["--no-config", "-c"]),
            Shell::Powershell => unreachable!("pwsh is not installed here"),
        };
        let out = crate::spawn::command(sh)
            .args(args)
            .arg(&script)
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {sh} ({e}): tests/setup-system.sh installs it"));
        assert!(
            out.status.success(),
            "{sh} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut printed: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .map(|b| String::from_utf8(b.to_vec()).expect("the shell printed valid UTF-8"))
            .collect();
        assert_eq!(
            printed.pop().as_deref(),
            Some(""),
            "{sh}: output ends with NUL"
        );
        printed
    }

    proptest::proptest! {
        // Each case starts three shells (a few ms each): 64 cases of up to 40 values take
        // under half a second.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever the value, evaluating what `rolecall use`/`env` print in the real shell
        /// sets the variable to exactly that value.
        #[test]
        fn any_value_round_trips_through_bash_zsh_and_fish(
            values in proptest::collection::vec(value(), 1..40)
        ) {
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                proptest::prop_assert_eq!(&through_shell(shell, &values), &values, "{:?}", shell);
            }
        }
    }
}
