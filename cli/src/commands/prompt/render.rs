//! Turns one snapshot profile into the prompt text: the `--format` template, the time left,
//! and colour wrapped in the escape syntax of the shell that draws it.

use crate::cli::Shell;
use rolecall_proto::snapshot::SnapshotProfile;

/// Under this many seconds left the segment turns yellow (botocore starts refreshing at 15m).
pub const WARN_SECS: i64 = 15 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    Fine,
    /// Under 15 minutes left.
    Soon,
    /// Expired, or the source needs an interactive sign-in.
    Act,
}

/// The values a template can use.
#[derive(Debug)]
pub struct Segment<'a> {
    pub profile: &'a str,
    pub account_id: &'a str,
    pub account_name: &'a str,
    pub role: &'a str,
    pub region: &'a str,
    pub time_left: String,
    pub urgency: Urgency,
}

impl<'a> Segment<'a> {
    pub fn new(profile: &'a str, p: &'a SnapshotProfile, now: i64) -> Self {
        let left = p.expires.map(|e| e - now);
        let (time_left, urgency) = if p.needs_login {
            ("login needed".to_owned(), Urgency::Act)
        } else {
            match left {
                None => (String::new(), Urgency::Fine),
                Some(s) if s <= 0 => ("expired".to_owned(), Urgency::Act),
                Some(s) if s < WARN_SECS => (format_left(s), Urgency::Soon),
                Some(s) => (format_left(s), Urgency::Fine),
            }
        };
        Segment {
            profile,
            account_id: p.account.as_deref().unwrap_or(""),
            account_name: p.account_name.as_deref().unwrap_or(""),
            role: &p.role,
            region: p.region.as_deref().unwrap_or(""),
            time_left,
            urgency,
        }
    }

    fn value(&self, name: &str) -> Option<&str> {
        Some(match name {
            "profile" => self.profile,
            "account" if !self.account_name.is_empty() => self.account_name,
            "account" | "account_id" => self.account_id,
            "account_name" => self.account_name,
            "role" => self.role,
            "region" => self.region,
            "time_left" => &self.time_left,
            _ => return None,
        })
    }
}

/// `42m`, `1h05m`, `<1m`: short, since it sits in a prompt.
pub fn format_left(secs: i64) -> String {
    if secs < 60 {
        "<1m".to_owned()
    } else if secs < 3600 {
        format!("{}m", secs / 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// Renders `format`, then colours the whole segment. `color` allows colour at all; `always`
/// also colours a segment that needs no attention (green), where auto mode leaves it plain.
pub fn render(
    format: &str,
    seg: &Segment<'_>,
    color: bool,
    always: bool,
    shell: Option<Shell>,
) -> String {
    let text = expand(format, seg);
    if text.is_empty() {
        return text;
    }
    let text = match shell {
        // zsh expands `%` escapes after command substitution: a literal `%` must be doubled.
        Some(Shell::Zsh) => text.replace('%', "%%"),
        _ => text,
    };
    let code = match seg.urgency {
        _ if !color => None,
        Urgency::Act => Some("31"),
        Urgency::Soon => Some("33"),
        Urgency::Fine if always => Some("32"),
        Urgency::Fine => None,
    };
    let Some(code) = code else {
        return text;
    };
    let (open, close) = invisible(shell);
    format!("{open}\x1b[{code}m{close}{text}{open}\x1b[0m{close}")
}

/// How each shell is told that escape bytes take no room on the line (else line editing
/// miscounts the prompt width). bash gets readline's raw markers \001/\002: bash decodes `\[`
/// `\]` before it runs command substitutions, so `\[` printed by `$(rolecall prompt)` would show
/// up literally, while \001/\002 work both there and inside a PS1 built by PROMPT_COMMAND.
fn invisible(shell: Option<Shell>) -> (&'static str, &'static str) {
    match shell {
        Some(Shell::Bash) => ("\x01", "\x02"),
        Some(Shell::Zsh) => ("%{", "%}"),
        _ => ("", ""),
    }
}

/// Expands `{name}` placeholders. `[...]` groups vanish when a placeholder inside is empty;
/// `{{`, `}}`, `[[` and `]]` are literal braces and brackets. Unknown placeholders stay as
/// written so that a typo is visible rather than silently dropped.
fn expand(format: &str, seg: &Segment<'_>) -> String {
    let mut out = String::with_capacity(format.len() + 32);
    // (start of the group's text in `out`, whether a placeholder in it was empty)
    let mut groups: Vec<(usize, bool)> = Vec::new();
    let mut rest = format;
    while let Some(c) = rest.chars().next() {
        let doubled = rest[c.len_utf8()..].starts_with(c);
        match c {
            '{' | '}' | '[' | ']' if doubled => {
                out.push(c);
                rest = &rest[2..];
                continue;
            }
            '{' => {
                if let Some(end) = rest.find('}') {
                    let name = &rest[1..end];
                    match seg.value(name) {
                        Some(v) => {
                            if v.is_empty() {
                                if let Some(g) = groups.last_mut() {
                                    g.1 = true;
                                }
                            }
                            // Account and role names come from upstream: no control bytes.
                            out.push_str(&crate::printable::printable(v));
                        }
                        None => out.push_str(&rest[..=end]),
                    }
                    rest = &rest[end + 1..];
                    continue;
                }
            }
            '[' => {
                groups.push((out.len(), false));
                rest = &rest[1..];
                continue;
            }
            ']' if !groups.is_empty() => {
                let (start, empty) = groups.pop().unwrap_or((out.len(), false));
                if empty {
                    out.truncate(start);
                }
                rest = &rest[1..];
                continue;
            }
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    // An unclosed `[` is plain text: put it back rather than drop it silently.
    for (start, _) in groups.into_iter().rev() {
        out.insert(start, '[');
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(expires: Option<i64>, needs_login: bool) -> SnapshotProfile {
        SnapshotProfile {
            account: Some("222222222222".into()),
            account_name: Some("Prod".into()),
            role: "Admin".into(),
            region: Some("eu-west-1".into()),
            expires,
            needs_login,
        }
    }

    const NOW: i64 = 1_795_341_600;

    #[test]
    fn default_format_shows_profile_account_and_time() {
        let p = profile(Some(NOW + 3 * 3600 + 5 * 60 + 59), false);
        let s = Segment::new("dev", &p, NOW);
        assert_eq!(
            render(super::super::DEFAULT_FORMAT, &s, true, false, None),
            "dev@Prod 3h05m"
        );
    }

    #[test]
    fn groups_vanish_when_a_value_is_missing() {
        let mut p = profile(None, false);
        p.account_name = None;
        p.account = None;
        let s = Segment::new("dev", &p, NOW);
        assert_eq!(
            render(super::super::DEFAULT_FORMAT, &s, true, false, None),
            "dev"
        );
        assert_eq!(
            render("{{{profile}}} [[x]] {bogus}", &s, false, false, None),
            "{dev} [x] {bogus}"
        );
        assert_eq!(render("[{profile}", &s, false, false, None), "[dev");
    }

    #[test]
    fn account_falls_back_to_the_id() {
        let mut p = profile(None, false);
        p.account_name = None;
        let s = Segment::new("dev", &p, NOW);
        assert_eq!(
            render(
                "{account}|{account_id}|{account_name}|{role}|{region}",
                &s,
                false,
                false,
                None
            ),
            "222222222222|222222222222||Admin|eu-west-1"
        );
    }

    #[test]
    fn colour_only_when_attention_is_needed_in_auto_mode() {
        let fine = profile(Some(NOW + 3600), false);
        let soon = profile(Some(NOW + 14 * 60), false);
        let gone = profile(Some(NOW - 1), false);
        let login = profile(Some(NOW + 3600), true);
        let r = |p: &SnapshotProfile, color, always, sh| {
            render("{time_left}", &Segment::new("d", p, NOW), color, always, sh)
        };
        assert_eq!(r(&fine, true, false, None), "1h00m");
        assert_eq!(r(&fine, true, true, None), "\x1b[32m1h00m\x1b[0m");
        assert_eq!(r(&soon, true, false, None), "\x1b[33m14m\x1b[0m");
        assert_eq!(r(&soon, false, false, None), "14m");
        assert_eq!(r(&gone, true, false, None), "\x1b[31mexpired\x1b[0m");
        assert_eq!(
            r(&login, true, false, Some(Shell::Zsh)),
            "%{\x1b[31m%}login needed%{\x1b[0m%}"
        );
        assert_eq!(
            r(&soon, true, false, Some(Shell::Bash)),
            "\x01\x1b[33m\x0214m\x01\x1b[0m\x02"
        );
        assert_eq!(
            r(&soon, true, false, Some(Shell::Fish)),
            "\x1b[33m14m\x1b[0m"
        );
    }

    #[test]
    fn zsh_percent_signs_are_literal() {
        let p = profile(None, false);
        let s = Segment::new("100%", &p, NOW);
        assert_eq!(
            render("{profile}", &s, false, false, Some(Shell::Zsh)),
            "100%%"
        );
        assert_eq!(
            render("{profile}", &s, false, false, Some(Shell::Bash)),
            "100%"
        );
    }

    #[test]
    fn upstream_values_cannot_inject_escape_sequences() {
        let mut p = profile(Some(NOW + 3600), false);
        p.account_name = Some("Prod\x1b]0;owned\x07\x1b[2J".into());
        p.role = "Admin\u{9b}1;1H".into();
        let s = Segment::new("dev", &p, NOW);
        let out = render("{account} {role}", &s, true, true, Some(Shell::Bash));
        assert_eq!(
            out,
            "\x01\x1b[32m\x02Prod]0;owned[2J Admin1;1H\x01\x1b[0m\x02"
        );
    }

    #[test]
    fn time_left_is_short() {
        assert_eq!(format_left(59), "<1m");
        assert_eq!(format_left(60), "1m");
        assert_eq!(format_left(3599), "59m");
        assert_eq!(format_left(3600), "1h00m");
        assert_eq!(format_left(12 * 3600 + 61), "12h01m");
    }
}
