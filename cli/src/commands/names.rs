//! `rolecall names profiles|sources`: one name per line, for shell completions.
//!
//! Completion must be instant and must never print an error into the user's command line, so
//! this reads the config file directly (no daemon) and prints nothing when anything is wrong.

use crate::cli::{NameKind, NamesArgs};
use std::io::Write;

pub fn run(a: &NamesArgs) -> anyhow::Result<i32> {
    let names = std::fs::read_to_string(rolecall_proto::paths::config_file())
        .ok()
        .map(|text| names(&text, a.kind))
        .unwrap_or_default();
    let mut out = String::new();
    for n in names {
        out.push_str(&n);
        out.push('\n');
    }
    // A closed pipe (the completion gave up) is not worth a message.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(0)
}

/// The keys of the `[profiles]` or `[sources]` table, sorted; none when the file is not
/// valid TOML. Names the daemon would refuse are left out: they are not usable anyway, and a
/// completion word must never carry shell syntax.
fn names(text: &str, kind: NameKind) -> Vec<String> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let key = match kind {
        NameKind::Profiles => "profiles",
        NameKind::Sources => "sources",
    };
    match table.get(key) {
        Some(toml::Value::Table(t)) => t
            .keys()
            .filter(|k| rolecall_proto::names::is_valid_name(k))
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_table_keys_and_nothing_on_bad_toml() {
        let cfg = r#"
[sources.corp]
kind = "identity-center"
[profiles.dev-admin]
source = "corp"
[profiles."prod.read"]
source = "corp"
"#;
        assert_eq!(names(cfg, NameKind::Profiles), ["dev-admin", "prod.read"]);
        assert_eq!(names(cfg, NameKind::Sources), ["corp"]);
        assert!(names("[profiles\n", NameKind::Profiles).is_empty());
        assert!(names("profiles = 3", NameKind::Profiles).is_empty());
        let hostile =
            "[profiles.ok]\n[profiles.\"$(touch x)\"]\n[profiles.\"`id`\"]\n[profiles.\"../up\"]\n";
        assert_eq!(names(hostile, NameKind::Profiles), ["ok"]);
    }
}
