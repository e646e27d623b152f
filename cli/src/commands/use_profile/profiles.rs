//! The profile names and regions `use` needs, read leniently from the rolecall config: the
//! daemon owns validation, this only has to find a profile and its region.

use anyhow::Context;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInfo {
    pub name: String,
    pub source: String,
    /// The profile's region, else its source's.
    pub region: Option<String>,
}

/// Profiles of the config file at `paths::config_file()`, sorted by name. A missing file means
/// no profiles.
pub fn load() -> anyhow::Result<Vec<ProfileInfo>> {
    load_from(&rolecall_proto::paths::config_file())
}

pub fn load_from(path: &Path) -> anyhow::Result<Vec<ProfileInfo>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    parse(&text).with_context(|| format!("invalid config {}", path.display()))
}

pub fn parse(text: &str) -> anyhow::Result<Vec<ProfileInfo>> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| {
        // toml's message spans several lines (with a source excerpt); keep the first.
        anyhow::anyhow!("{}", e.to_string().lines().next().unwrap_or("parse error"))
    })?;
    let str_of = |t: &toml::Table, k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let sources = doc.get("sources").and_then(|v| v.as_table());
    let mut out = Vec::new();
    if let Some(profiles) = doc.get("profiles").and_then(|v| v.as_table()) {
        for (name, p) in profiles {
            let Some(p) = p.as_table() else { continue };
            let source = str_of(p, "source").unwrap_or_default();
            let region = str_of(p, "region").or_else(|| {
                sources
                    .and_then(|s| s.get(&source))
                    .and_then(|s| s.as_table())
                    .and_then(|s| str_of(s, "region"))
            });
            out.push(ProfileInfo {
                name: name.clone(),
                source,
                region,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_falls_back_to_the_source() {
        let p = parse(
            r#"
            [sources.corp]
            kind = "identity-center"
            region = "eu-west-1"
            [profiles.b]
            source = "corp"
            role = "R"
            region = "us-east-2"
            [profiles.a]
            source = "corp"
            role = "R"
            [profiles.c]
            source = "gone"
            role = "R"
            "#,
        )
        .unwrap();
        let got: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.region.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", Some("eu-west-1")),
                ("b", Some("us-east-2")),
                ("c", None)
            ]
        );
    }

    #[test]
    fn bad_toml_is_one_line_with_a_position() {
        let e = parse("[profiles.a\nsource=1").unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains("line 1"), "{e}");
    }
}
