//! The unit files and the agent, rendered from the very files shipped in `packaging/` (so the
//! packages, the Homebrew formula and `rolecall service install` cannot drift apart), with the
//! daemon's path filled in and quoted for the format that reads it.

use anyhow::bail;
use std::path::Path;

pub const SYSTEMD_SERVICE: &str = include_str!("../../../../packaging/systemd/rolecalld.service");
pub const SYSTEMD_SOCKET: &str = include_str!("../../../../packaging/systemd/rolecalld.socket");
pub const LAUNCHD_PLIST: &str =
    include_str!("../../../../packaging/launchd/com.rolecall.rolecalld.plist");

pub const SERVICE_NAME: &str = "rolecalld.service";
pub const SOCKET_NAME: &str = "rolecalld.socket";
pub const LAUNCHD_LABEL: &str = "com.rolecall.rolecalld";

const DAEMON_MARK: &str = "@ROLECALLD@";
const LOG_DIR_MARK: &str = "@LOG_DIR@";

/// Paths that cannot be written safely into a unit or a plist (and would be a strange install).
fn check_path(p: &Path) -> anyhow::Result<&str> {
    let Some(s) = p.to_str() else {
        bail!(
            "the path {} is not UTF-8; install rolecall under a plain path",
            p.display()
        );
    };
    if !p.is_absolute() || s.chars().any(char::is_control) {
        bail!("the path {s:?} cannot be used in a service definition (it must be absolute, without control characters)");
    }
    Ok(s)
}

/// One word of a systemd `ExecStart=`: `%` starts a specifier and `$` a variable, so both are
/// doubled; a path with spaces or quotes is double-quoted with C-style escapes.
pub fn systemd_word(p: &Path) -> anyhow::Result<String> {
    let s = check_path(p)?;
    let escaped = s.replace('%', "%%").replace('$', "$$");
    let plain = escaped
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._+-@%$:,".contains(c));
    if plain {
        return Ok(escaped);
    }
    let mut out = String::from("\"");
    for c in escaped.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

fn xml_text(p: &Path) -> anyhow::Result<String> {
    let s = check_path(p)?;
    Ok(s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;"))
}

pub fn systemd_service(daemon: &Path) -> anyhow::Result<String> {
    Ok(SYSTEMD_SERVICE.replace(DAEMON_MARK, &systemd_word(daemon)?))
}

pub fn launchd_plist(daemon: &Path, log_dir: &Path) -> anyhow::Result<String> {
    Ok(LAUNCHD_PLIST
        .replace(DAEMON_MARK, &xml_text(daemon)?)
        .replace(LOG_DIR_MARK, &xml_text(log_dir)?))
}

/// The daemon path an installed unit or plist starts (for `status`), if it can be read back.
pub fn daemon_in_service(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("ExecStart="))?;
    let cmd = line.strip_prefix("ExecStart=")?;
    let word = cmd.strip_suffix(" --foreground").unwrap_or(cmd);
    let word = word
        .strip_prefix('"')
        .and_then(|w| w.strip_suffix('"'))
        .map(|w| w.replace("\\\"", "\"").replace("\\\\", "\\"))
        .unwrap_or_else(|| word.to_string());
    Some(word.replace("%%", "%").replace("$$", "$"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_carry_the_markers_they_are_rendered_with() {
        assert_eq!(SYSTEMD_SERVICE.matches(DAEMON_MARK).count(), 1);
        assert!(SYSTEMD_SERVICE.contains("ExecStart=@ROLECALLD@ --foreground\n"));
        assert!(SYSTEMD_SOCKET.contains("ListenStream=%t/rolecall/rolecalld.sock\n"));
        assert_eq!(LAUNCHD_PLIST.matches(DAEMON_MARK).count(), 1);
        assert_eq!(LAUNCHD_PLIST.matches(LOG_DIR_MARK).count(), 2);
        assert!(LAUNCHD_PLIST.contains(LAUNCHD_LABEL));
    }

    #[test]
    fn plain_paths_stay_plain_and_round_trip() {
        let unit = systemd_service(Path::new("/usr/bin/rolecalld")).unwrap();
        assert!(unit.contains("\nExecStart=/usr/bin/rolecalld --foreground\n"));
        assert!(!unit.contains(DAEMON_MARK));
        assert_eq!(
            daemon_in_service(&unit).as_deref(),
            Some("/usr/bin/rolecalld")
        );
    }

    #[test]
    fn odd_paths_are_quoted_for_systemd_and_round_trip() {
        for p in [
            "/home/a b/.local/bin/rolecalld",
            "/opt/100%/rolecalld",
            "/opt/$HOME/rolecalld",
            "/opt/q\"uote\\/rolecalld",
        ] {
            let unit = systemd_service(Path::new(p)).unwrap();
            assert!(!unit.contains(DAEMON_MARK));
            assert_eq!(daemon_in_service(&unit).as_deref(), Some(p), "{unit}");
        }
        assert_eq!(systemd_word(Path::new("/a b/%i")).unwrap(), "\"/a b/%%i\"");
    }

    #[test]
    fn unusable_paths_are_refused() {
        assert!(systemd_word(Path::new("relative/rolecalld")).is_err());
        assert!(systemd_word(Path::new("/a\nb/rolecalld")).is_err());
    }

    #[test]
    fn the_plist_gets_escaped_paths() {
        let plist = launchd_plist(
            Path::new("/Users/a&b/bin/rolecalld"),
            Path::new("/Users/a&b/Library/Application Support/rolecall"),
        )
        .unwrap();
        assert!(plist.contains("<string>/Users/a&amp;b/bin/rolecalld</string>"));
        assert!(plist.contains(
            "<string>/Users/a&amp;b/Library/Application Support/rolecall/rolecalld.stderr.log</string>"
        ));
        assert!(!plist.contains(DAEMON_MARK) && !plist.contains(LOG_DIR_MARK));
    }
}
