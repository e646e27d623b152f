//! The human-readable form of `rolecall status`: aligned columns, relative times, and colour
//! (on a terminal) for what needs attention.

use crate::printable::printable as p;
use rolecall_proto::api::Status;
use rolecall_proto::timefmt::rfc3339;

const WARN_SECS: i64 = 15 * 60;

pub fn render(s: &Status, now: i64, color: bool) -> String {
    let paint = |code: &str, text: String| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text
        }
    };
    let mut out = String::new();
    let d = &s.daemon;
    out.push_str(&format!(
        "rolecalld {} (protocol {}, pid {}), up {}\n",
        d.version,
        d.protocol,
        d.pid,
        ago(now - d.started_at).trim_end_matches(" ago")
    ));
    out.push_str(&format!("  socket  {}\n", p(&d.socket)));
    out.push_str(&format!("  config  {}", p(&d.config)));
    if d.config_missing {
        out.push_str(" (missing: no sources, no profiles)");
    }
    out.push('\n');
    if let Some(e) = &d.config_error {
        out.push_str(&format!(
            "  {}\n",
            paint("31", format!("config error: {}", p(e)))
        ));
    }
    if let Some(l) = &d.container_listen {
        out.push_str(&format!("  container endpoint  http://{}\n", p(l)));
    }

    out.push_str("\nSOURCES\n");
    if s.sources.is_empty() {
        out.push_str("  (none) — run: rolecall setup\n");
    } else {
        let mut rows = vec![row([
            "NAME",
            "KIND",
            "SIGNED IN",
            "SESSION ENDS",
            "LAST ERROR",
        ])];
        let mut attention = vec![None];
        for src in &s.sources {
            let signed = if src.login_in_progress {
                "login running".to_owned()
            } else if src.signed_in {
                "yes".to_owned()
            } else {
                "no".to_owned()
            };
            rows.push(row([
                &src.name,
                &src.kind,
                &signed,
                &src.session_expires.map_or("-".into(), |e| until(e, now)),
                src.last_error.as_deref().unwrap_or("-"),
            ]));
            attention.push(if !src.signed_in || src.last_error.is_some() {
                Some("31")
            } else {
                None
            });
        }
        table(&mut out, &rows, &attention, color);
        for src in s
            .sources
            .iter()
            .filter(|s| !s.signed_in && !s.login_in_progress)
        {
            out.push_str(&format!("  sign in: rolecall login {}\n", p(&src.name)));
        }
        for src in s
            .sources
            .iter()
            .filter(|s| !s.unconfigured_roles.is_empty())
        {
            out.push_str(&format!(
                "  {} offers roles no profile uses: {}\n",
                p(&src.name),
                p(&src.unconfigured_roles.join(", "))
            ));
        }
    }

    out.push_str("\nPROFILES\n");
    if s.profiles.is_empty() && s.sources.is_empty() {
        // No source to populate from yet: setup adds one, signs in and populates.
        out.push_str("  (none) — run: rolecall setup\n");
    } else if s.profiles.is_empty() {
        out.push_str("  (none) — run: rolecall populate <source>\n");
    } else {
        let mut rows = vec![row([
            "NAME",
            "SOURCE",
            "ACCOUNT",
            "ROLE",
            "REGION",
            "EXPIRES",
            "REFRESHED",
            "LAST ERROR",
        ])];
        let mut attention = vec![None];
        for p in &s.profiles {
            let account = match (&p.account_name, &p.account) {
                (Some(n), Some(id)) => format!("{n} ({id})"),
                (Some(n), None) => n.clone(),
                (None, Some(id)) => id.clone(),
                (None, None) => "-".into(),
            };
            let warm = if p.warm { " (warm)" } else { "" };
            rows.push(row([
                &format!("{}{warm}", p.name),
                &p.source,
                &account,
                &p.role,
                p.region.as_deref().unwrap_or("-"),
                &p.expires.map_or("-".into(), |e| until(e, now)),
                &p.last_refresh.map_or("-".into(), |t| ago(now - t)),
                p.last_error.as_deref().unwrap_or("-"),
            ]));
            attention.push(match p.expires.map(|e| e - now) {
                _ if p.last_error.is_some() => Some("31"),
                Some(l) if l <= 0 => Some("31"),
                Some(l) if l < WARN_SECS => Some("33"),
                _ => None,
            });
        }
        table(&mut out, &rows, &attention, color);
    }

    if !s.container_tokens.is_empty() {
        out.push_str("\nCONTAINER TOKENS\n");
        let mut rows = vec![row(["ID", "PROFILE", "CREATED", "BOUND TO PID"])];
        for t in &s.container_tokens {
            rows.push(row([
                &t.id,
                &t.profile,
                &ago(now - t.created),
                &t.bound_pid.map_or("-".into(), |p| p.to_string()),
            ]));
        }
        let attention = vec![None; rows.len()];
        table(&mut out, &rows, &attention, color);
    }
    out
}

/// One table row. Every cell passes through [`p`]: names, roles and errors come from upstream.
fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| p(c).into_owned()).collect()
}

/// Left-aligned columns two spaces apart; the header and rows needing attention coloured.
fn table(out: &mut String, rows: &[Vec<String>], attention: &[Option<&str>], color: bool) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, r) in rows.iter().enumerate() {
        let mut line = String::from("  ");
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                let pad = widths[c] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let code = if i == 0 {
            Some("1")
        } else {
            attention.get(i).copied().flatten()
        };
        match code {
            Some(code) if color => out.push_str(&format!("\x1b[{code}m{line}\x1b[0m\n")),
            _ => {
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
}

/// `in 52m (2026-11-22T10:00:00Z)` or `expired 3m ago`.
fn until(at: i64, now: i64) -> String {
    let left = at - now;
    if left <= 0 {
        format!("expired {}", ago(-left))
    } else {
        format!("in {} ({})", span(left), rfc3339(at))
    }
}

fn ago(secs: i64) -> String {
    format!("{} ago", span(secs.max(0)))
}

fn span(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rolecall_proto::api::*;

    const NOW: i64 = 1_795_341_600;

    fn status() -> Status {
        Status {
            daemon: DaemonStatus {
                version: "0.1.0".into(),
                protocol: 1,
                pid: 42,
                started_at: NOW - 7200,
                socket: "/run/user/1000/rolecall/rolecalld.sock".into(),
                config: "/home/u/.config/rolecall/config.toml".into(),
                config_error: None,
                config_missing: false,
                container_listen: Some("127.0.0.1:9911".into()),
            },
            sources: vec![
                SourceStatus {
                    name: "corp".into(),
                    kind: "identity-center".into(),
                    signed_in: true,
                    session_expires: Some(NOW + 8 * 3600),
                    login_in_progress: false,
                    last_error: None,
                    unconfigured_roles: vec![],
                },
                SourceStatus {
                    name: "legacy".into(),
                    kind: "entra-saml".into(),
                    signed_in: false,
                    session_expires: None,
                    login_in_progress: false,
                    last_error: Some("the Entra session ended".into()),
                    unconfigured_roles: vec!["arn:aws:iam::3:role/X".into()],
                },
            ],
            profiles: vec![
                ProfileStatus {
                    name: "dev-admin".into(),
                    source: "corp".into(),
                    account: Some("111111111111".into()),
                    account_name: Some("Dev".into()),
                    role: "DeveloperAdmin".into(),
                    region: Some("eu-west-1".into()),
                    expires: Some(NOW + 52 * 60),
                    last_refresh: Some(NOW - 180),
                    last_error: None,
                    warm: true,
                },
                ProfileStatus {
                    name: "old".into(),
                    source: "legacy".into(),
                    account: None,
                    account_name: None,
                    role: "arn:aws:iam::3:role/Y".into(),
                    region: None,
                    expires: Some(NOW - 60),
                    last_refresh: None,
                    last_error: None,
                    warm: false,
                },
            ],
            container_tokens: vec![ContainerTokenStatus {
                id: "t1".into(),
                profile: "dev-admin".into(),
                created: NOW - 30,
                bound_pid: Some(99),
                expires: None,
            }],
        }
    }

    #[test]
    fn plain_table() {
        let t = render(&status(), NOW, false);
        let expected = "\
rolecalld 0.1.0 (protocol 1, pid 42), up 2h00m
  socket  /run/user/1000/rolecall/rolecalld.sock
  config  /home/u/.config/rolecall/config.toml
  container endpoint  http://127.0.0.1:9911

SOURCES
  NAME    KIND             SIGNED IN  SESSION ENDS                     LAST ERROR
  corp    identity-center  yes        in 8h00m (2026-11-22T18:00:00Z)  -
  legacy  entra-saml       no         -                                the Entra session ended
  sign in: rolecall login legacy
  legacy offers roles no profile uses: arn:aws:iam::3:role/X

PROFILES
  NAME              SOURCE  ACCOUNT             ROLE                   REGION     EXPIRES                        REFRESHED  LAST ERROR
  dev-admin (warm)  corp    Dev (111111111111)  DeveloperAdmin         eu-west-1  in 52m (2026-11-22T10:52:00Z)  3m ago     -
  old               legacy  -                   arn:aws:iam::3:role/Y  -          expired 1m ago                 -          -

CONTAINER TOKENS
  ID  PROFILE    CREATED  BOUND TO PID
  t1  dev-admin  30s ago  99
";
        assert_eq!(t, expected);
    }

    #[test]
    fn colour_marks_what_needs_attention() {
        let t = render(&status(), NOW, true);
        assert!(t.contains("\x1b[31m  legacy  entra-saml"), "{t}");
        assert!(t.contains("\x1b[31m  old "), "{t}");
        assert!(!t.contains("\x1b[31m  dev-admin"), "{t}");
    }

    #[test]
    fn upstream_text_cannot_inject_escape_sequences() {
        let mut s = status();
        s.profiles[0].account_name = Some("Dev\x1b]0;owned\x07".into());
        s.profiles[0].role = "Admin\u{9b}2J".into();
        s.sources[1].last_error = Some("denied\x1b[8m hidden\r\nfake line".into());
        s.sources[1].unconfigured_roles = vec!["arn:x\x1b[1A".into()];
        s.daemon.config_error = Some("bad\x1b[2Jconfig".into());
        for color in [false, true] {
            let t = render(&s, NOW, color);
            let ours = t.replace("\x1b[0m", "").replace("\x1b[1m", "");
            let ours = ours.replace("\x1b[31m", "").replace("\x1b[33m", "");
            assert!(!ours.contains('\x1b') && !ours.contains('\u{9b}'), "{t:?}");
            assert!(!ours.contains('\x07') && !ours.contains('\r'), "{t:?}");
            assert!(t.contains("Dev]0;owned (111111111111)"), "{t}");
            assert!(t.contains("denied[8m hiddenfake line"), "{t}");
        }
    }

    #[test]
    fn empty_daemon() {
        let mut s = status();
        s.sources.clear();
        s.profiles.clear();
        s.container_tokens.clear();
        s.daemon.config_missing = true;
        let t = render(&s, NOW, false);
        assert!(t.contains("(missing: no sources, no profiles)"));
        assert!(
            t.contains("SOURCES\n  (none) — run: rolecall setup\n"),
            "{t}"
        );
        assert!(
            t.contains("PROFILES\n  (none) — run: rolecall setup\n"),
            "{t}"
        );
        assert!(!t.contains("rolecall populate"), "{t}");
        assert!(!t.contains("CONTAINER TOKENS"));
    }

    #[test]
    fn a_source_without_profiles_points_at_populate() {
        let mut s = status();
        s.profiles.clear();
        let t = render(&s, NOW, false);
        assert!(
            t.contains("PROFILES\n  (none) — run: rolecall populate <source>\n"),
            "{t}"
        );
    }
}
