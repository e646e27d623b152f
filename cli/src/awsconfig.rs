//! The managed block of `~/.aws/config` (`AWS_CONFIG_FILE` honoured): one `[profile <name>]`
//! per rolecall profile, between `# BEGIN rolecall` and `# END rolecall`, each with
//! `credential_process` and `region` and never an `sso_*` key (SDKs would prefer their own
//! SSO provider). Everything outside the block is kept byte for byte.
//!
//! The file is checked before any change: a line that is neither blank, a comment, a
//! `[section]`, a `key = value` nor an indented continuation, or unbalanced markers, make it
//! malformed; it is reported with its line number and never written.

use std::fmt;
use std::path::{Path, PathBuf};

pub const BEGIN: &str = "# BEGIN rolecall";
pub const END: &str = "# END rolecall";
const NOTE: &str = "# Written by `rolecall populate`: changes between these markers are replaced.";

/// One profile of the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockProfile {
    pub name: String,
    pub region: Option<String>,
}

/// A malformed config file: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for Malformed {}

/// The config file, split around the managed block.
#[derive(Debug, PartialEq, Eq)]
pub struct Split<'a> {
    /// Text before the block (or the whole file when there is none).
    pub before: &'a str,
    /// The block's lines, markers included; `None` when the file has no block yet.
    pub block: Option<&'a str>,
    pub after: &'a str,
    /// Section names outside the block: `default`, `profile x`, `sso-session y`, ...
    pub outside_sections: Vec<String>,
}

impl Split<'_> {
    /// Profile names defined outside the block (`[profile x]`, and `[default]` as `default`).
    pub fn outside_profiles(&self) -> Vec<String> {
        self.outside_sections
            .iter()
            .filter_map(|s| profile_name(s))
            .collect()
    }
}

/// The profile a section header names: `profile x` → `x`, `default` → `default`.
pub fn profile_name(section: &str) -> Option<String> {
    if section == "default" {
        return Some("default".into());
    }
    let rest = section.strip_prefix("profile")?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some(rest.trim().to_owned())
}

/// The path of the AWS config file: `AWS_CONFIG_FILE`, else `~/.aws/config`.
pub fn config_path() -> PathBuf {
    aws_path("AWS_CONFIG_FILE", "config")
}

/// The path of the AWS credentials file: `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
pub fn credentials_path() -> PathBuf {
    aws_path("AWS_SHARED_CREDENTIALS_FILE", "credentials")
}

fn aws_path(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return expand_home(&PathBuf::from(p));
    }
    home().join(".aws").join(name)
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn expand_home(p: &Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => home().join(rest),
        Err(_) => p.to_path_buf(),
    }
}

/// Checks `text` and splits it around the block.
pub fn split(text: &str) -> Result<Split<'_>, Malformed> {
    let mut begin: Option<(usize, usize)> = None; // (line number, byte offset)
    let mut end: Option<usize> = None; // byte offset after the END line
    let mut sections = Vec::new();
    let mut in_section = false;
    let mut offset = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches(['\n', '\r']);
        let start = offset;
        offset += raw.len();
        let trimmed = line.trim();
        if trimmed == BEGIN {
            if let Some((first, _)) = begin {
                let message = if end.is_some() {
                    "a second `# BEGIN rolecall` block; keep one".to_owned()
                } else {
                    format!("`# BEGIN rolecall` again before the `# END rolecall` of line {first}")
                };
                return Err(Malformed { line: n, message });
            }
            begin = Some((n, start));
            continue;
        }
        if trimmed == END {
            if begin.is_none() || end.is_some() {
                return Err(Malformed {
                    line: n,
                    message: "`# END rolecall` without a `# BEGIN rolecall` before it".into(),
                });
            }
            end = Some(offset);
            continue;
        }
        // Inside the block: rewritten anyway, so its content is not judged.
        if begin.is_some() && end.is_none() {
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') {
            let Some(close) = trimmed.find(']') else {
                return Err(Malformed {
                    line: n,
                    message: "section header without a closing `]`".into(),
                });
            };
            let name = trimmed[1..close].trim();
            if name.is_empty() {
                return Err(Malformed {
                    line: n,
                    message: "empty section name `[]`".into(),
                });
            }
            let tail = trimmed[close + 1..].trim();
            if !(tail.is_empty() || tail.starts_with('#') || tail.starts_with(';')) {
                return Err(Malformed {
                    line: n,
                    message: format!("unexpected text after the section header: {tail:?}"),
                });
            }
            sections.push(name.to_owned());
            in_section = true;
            continue;
        }
        // An indented line continues the previous value (nested `s3 =` settings).
        if line.starts_with([' ', '\t']) && in_section {
            continue;
        }
        if !in_section {
            return Err(Malformed {
                line: n,
                message: "a setting before any `[section]` header".into(),
            });
        }
        match trimmed.find('=') {
            Some(0) => {
                return Err(Malformed {
                    line: n,
                    message: "a setting without a name before `=`".into(),
                })
            }
            Some(_) => {}
            None => {
                return Err(Malformed {
                    line: n,
                    message: "expected `[section]` or `key = value`".into(),
                })
            }
        }
    }
    match (begin, end) {
        (Some((line, _)), None) => Err(Malformed {
            line,
            message: "`# BEGIN rolecall` without a matching `# END rolecall`".into(),
        }),
        (Some((_, b)), Some(e)) => Ok(Split {
            before: &text[..b],
            block: Some(&text[b..e]),
            after: &text[e..],
            outside_sections: sections,
        }),
        _ => Ok(Split {
            before: text,
            block: None,
            after: "",
            outside_sections: sections,
        }),
    }
}

/// The block for `profiles`, markers included, ending in a newline.
pub fn render_block(profiles: &[BlockProfile], rolecall_exe: &str) -> String {
    let exe = shell_word(rolecall_exe);
    let mut out = String::new();
    out.push_str(BEGIN);
    out.push('\n');
    out.push_str(NOTE);
    out.push('\n');
    for (i, p) in profiles.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("[profile {}]\n", p.name));
        out.push_str(&format!(
            "credential_process = {exe} credential-process {}\n",
            shell_word(&p.name)
        ));
        if let Some(r) = &p.region {
            out.push_str(&format!("region = {r}\n"));
        }
    }
    out.push_str(END);
    out.push('\n');
    out
}

/// `text` with its block replaced by (or, without one, appended as) `block`. Profiles that
/// the file defines outside the block must have been left out of `block` by the caller.
pub fn apply(text: &str, split: &Split<'_>, block: &str) -> String {
    match split.block {
        Some(_) => {
            // An unterminated last line before the markers cannot happen: BEGIN starts a line.
            let mut out = String::with_capacity(text.len() + block.len());
            out.push_str(split.before);
            out.push_str(block);
            out.push_str(split.after);
            out
        }
        None => {
            let mut out = String::with_capacity(text.len() + block.len() + 2);
            out.push_str(text);
            if !text.is_empty() {
                if !text.ends_with('\n') {
                    out.push('\n');
                }
                if !text.ends_with("\n\n") {
                    out.push('\n');
                }
            }
            out.push_str(block);
            out
        }
    }
}

/// One `[section]` of an AWS config file with its top-level `key = value` settings (nested
/// indented settings are skipped). Read-only: for `rolecall import`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub settings: Vec<(String, String)>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The sections of a well-formed file (check it with [`split`] first), block included.
pub fn sections(text: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(inner) = t.strip_prefix('[') {
            if let Some(close) = inner.find(']') {
                out.push(Section {
                    name: inner[..close].trim().to_owned(),
                    settings: Vec::new(),
                });
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if let (Some(sec), Some((k, v))) = (out.last_mut(), t.split_once('=')) {
            sec.settings
                .push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

/// Section names of an AWS credentials file (`[name]`), ignoring anything unparseable: it is
/// only read to warn about shadowing.
pub fn credentials_sections(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let t = l.trim();
            let inner = t.strip_prefix('[')?;
            let close = inner.find(']')?;
            Some(inner[..close].trim().to_owned())
        })
        .collect()
}

/// One word for `credential_process`, which SDKs run without a shell (botocore splits it like
/// a POSIX shell) or through `sh -c` (the JS and Rust SDKs): plain when safe, else single-quoted,
/// which both read the same way.
pub fn shell_word(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'.' | b'_' | b'-' | b'+' | b'@' | b':' | b',' | b'='
                )
        });
    if safe {
        return s.to_owned();
    }
    let mut out = String::from("'");
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Writes `text` to `path` atomically (a temporary file in the same directory, then rename),
/// keeping the existing file's permissions; creates the directory (0700) when missing.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let tmp = dir.join(format!(".{file_name}.rolecall-{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
