//! What setup writes: the source table in the rolecall config (a backup of an existing file
//! first), and the shell integration line in a shell's startup file.

use crate::cli::Shell;
use anyhow::Context;
use std::path::{Path, PathBuf};
use toml_edit::{value, DocumentMut, Item, Table};

/// A source as setup writes it: kind and keys, in order.
pub struct NewSource {
    pub name: String,
    pub keys: Vec<(&'static str, String)>,
}

impl NewSource {
    /// The source alone as a config document (`[sources.NAME]` …): what the daemon checks.
    pub fn table_toml(&self) -> String {
        let mut doc = DocumentMut::new();
        self.insert_into(&mut doc);
        doc.to_string()
    }

    /// Puts the source into `doc`, replacing a source of the same name.
    pub fn insert_into(&self, doc: &mut DocumentMut) {
        if !doc.contains_key("sources") {
            let mut t = Table::new();
            // `[sources.x]` headers only, no empty `[sources]` line.
            t.set_implicit(true);
            doc.insert("sources", Item::Table(t));
        }
        let mut t = Table::new();
        for (k, v) in &self.keys {
            t.insert(k, value(v.as_str()));
        }
        if let Some(sources) = doc["sources"].as_table_mut() {
            sources.insert(&self.name, Item::Table(t));
        }
    }
}

/// Adds `[profiles.NAME]` for `role_arn` on `source` unless a profile of that name exists.
/// Returns the profile's name, or `None` when the name is taken.
pub fn add_role_profile(
    doc: &mut DocumentMut,
    name: &str,
    source: &str,
    role_arn: &str,
    region: Option<&str>,
) -> Option<String> {
    if !doc.contains_key("profiles") {
        let mut t = Table::new();
        t.set_implicit(true);
        doc.insert("profiles", Item::Table(t));
    }
    let profiles = doc["profiles"].as_table_mut()?;
    if profiles.contains_key(name) {
        return None;
    }
    let mut t = Table::new();
    t.insert("source", value(source));
    t.insert("role", value(role_arn));
    if let Some(r) = region {
        t.insert("region", value(r));
    }
    profiles.insert(name, Item::Table(t));
    Some(name.to_string())
}

/// Whether the config document already has a source called `name`.
pub fn has_source(doc: &DocumentMut, name: &str) -> bool {
    doc.get("sources")
        .and_then(|s| s.as_table_like())
        .is_some_and(|s| s.contains_key(name))
}

/// Copies `path` to `<path>.<unix time>.bak` (0600) and returns the backup's path.
pub fn backup(path: &Path) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let now = crate::clock::system_now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut n = 0;
    loop {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!(".{n}")
        };
        let bak = PathBuf::from(format!("{}.{now}{suffix}.bak", path.display()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&bak)
        {
            Ok(mut f) => {
                f.write_all(&text)
                    .and_then(|_| f.sync_all())
                    .with_context(|| format!("cannot write {}", bak.display()))?;
                return Ok(bak);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", bak.display())),
        }
    }
}

/// The startup file of `shell` under `home` and the line that loads rolecall's integration.
pub fn shell_rc(shell: Shell, home: &Path) -> Option<(PathBuf, &'static str)> {
    match shell {
        Shell::Bash => Some((home.join(".bashrc"), r#"eval "$(rolecall init bash)""#)),
        Shell::Zsh => {
            let dir = std::env::var_os("ZDOTDIR")
                .filter(|d| !d.is_empty())
                .map_or_else(|| home.to_path_buf(), PathBuf::from);
            Some((dir.join(".zshrc"), r#"eval "$(rolecall init zsh)""#))
        }
        Shell::Fish => Some((
            home.join(".config/fish/config.fish"),
            "rolecall init fish | source",
        )),
        // $PROFILE lives where PowerShell says; print the line instead.
        Shell::Powershell => None,
    }
}

/// Appends `line` to `rc` unless it is there already. Returns whether it was added.
pub fn add_line(rc: &Path, line: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    let current = match std::fs::read_to_string(rc) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", rc.display())),
    };
    if current.lines().any(|l| l.trim() == line) {
        return Ok(false);
    }
    if let Some(dir) = rc.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(rc)
        .with_context(|| format!("cannot open {}", rc.display()))?;
    let sep = if current.is_empty() || current.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    write!(
        f,
        "{sep}# rolecall shell integration (added by rolecall setup)\n{line}\n"
    )
    .with_context(|| format!("cannot write {}", rc.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> NewSource {
        NewSource {
            name: "corp".into(),
            keys: vec![
                ("kind", "identity-center".into()),
                ("start_url", "https://d-1.awsapps.com/start".into()),
                ("region", "eu-west-1\"\n[x]".into()),
            ],
        }
    }

    #[test]
    fn the_table_is_quoted_and_keeps_the_rest_of_the_file() {
        let t = src().table_toml();
        assert!(
            t.starts_with("[sources.corp]\nkind = \"identity-center\"\n"),
            "{t}"
        );
        let parsed: toml::Value = toml::from_str(&t).unwrap();
        assert_eq!(
            parsed["sources"]["corp"]["region"].as_str(),
            Some("eu-west-1\"\n[x]")
        );

        let mut doc: DocumentMut = "# mine\n[daemon]\nsecret_store = \"file\" # keep\n\n[sources.old]\nkind = \"entra-saml\"\n".parse().unwrap();
        assert!(has_source(&doc, "old") && !has_source(&doc, "corp"));
        src().insert_into(&mut doc);
        let out = doc.to_string();
        assert!(
            out.starts_with("# mine\n[daemon]\nsecret_store = \"file\" # keep\n"),
            "{out}"
        );
        assert!(
            out.contains("[sources.old]") && out.contains("[sources.corp]"),
            "{out}"
        );
    }

    #[test]
    fn backups_never_overwrite_and_shell_lines_are_added_once() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.toml");
        std::fs::write(&cfg, "a").unwrap();
        let b1 = backup(&cfg).unwrap();
        let b2 = backup(&cfg).unwrap();
        assert_ne!(b1, b2);
        assert_eq!(std::fs::read_to_string(&b2).unwrap(), "a");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&b1).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let (rc, line) = shell_rc(Shell::Bash, dir.path()).unwrap();
        std::fs::write(&rc, "alias x=y").unwrap();
        assert!(add_line(&rc, line).unwrap());
        assert!(!add_line(&rc, line).unwrap());
        let text = std::fs::read_to_string(&rc).unwrap();
        assert_eq!(text.matches(line).count(), 1, "{text}");
        assert!(text.starts_with("alias x=y\n# rolecall"), "{text}");
    }
}
