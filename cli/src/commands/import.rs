//! `rolecall import [--dry-run]`: turns the SSO setup of `~/.aws/config` into rolecall
//! sources and profiles. `[sso-session x]` sections become identity-center sources named `x`;
//! legacy profiles that carry `sso_start_url`/`sso_region` themselves get one source per start
//! URL. Each SSO profile (`sso_account_id` + `sso_role_name`) becomes a `[profiles.*]` entry of
//! the same name; `source_profile` + `role_arn` profiles chaining from those become chained
//! profiles (`via`, see `import/chained.rs`). Only the rolecall config is written (with toml_edit, formatting kept);
//! `~/.aws/config` is never changed here.

use crate::awsconfig::{self, Section};
use crate::cli::ImportArgs;
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use toml_edit::{value, DocumentMut, Item, Table};

mod chained;

/// An identity-center source found in the AWS config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSource {
    pub name: String,
    pub start_url: String,
    pub region: String,
}

/// An SSO profile found in the AWS config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundProfile {
    pub name: String,
    /// The [`FoundSource::name`] it signs in through.
    pub source: String,
    pub account: String,
    pub role: String,
    pub region: Option<String>,
}

pub fn run(a: &ImportArgs) -> anyhow::Result<i32> {
    let aws_path = awsconfig::config_path();
    let aws_text = std::fs::read_to_string(&aws_path)
        .with_context(|| format!("cannot read {}", aws_path.display()))?;
    awsconfig::split(&aws_text)
        .map_err(|e| anyhow::anyhow!("{}:{}: {}", aws_path.display(), e.line, e.message))?;
    let sections = awsconfig::sections(&aws_text);
    let (sources, profiles, notes) = discover(&sections);
    for n in &notes {
        eprintln!("rolecall: note: {n}");
    }
    if sources.is_empty()
        && profiles.is_empty()
        && !sections.iter().any(|s| s.get("source_profile").is_some())
    {
        bail!(
            "no IAM Identity Center (SSO) settings found in {}",
            aws_path.display()
        );
    }

    let config_path = rolecall_proto::paths::config_file();
    let config_text = match std::fs::read_to_string(&config_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", config_path.display())),
    };
    let mut doc = super::populate::parse_config(&config_text, &config_path)?;
    let mut report = merge(&mut doc, &sources, &profiles);
    // Chained profiles (source_profile + role_arn) of profiles rolecall now serves.
    let served: Vec<String> = doc
        .get("profiles")
        .and_then(Item::as_table_like)
        .map(|t| t.iter().map(|(k, _)| k.to_owned()).collect())
        .unwrap_or_default();
    let (found, chain_notes) = chained::discover(&sections, &served);
    for n in &chain_notes {
        eprintln!("rolecall: note: {n}");
    }
    if sources.is_empty() && profiles.is_empty() && found.is_empty() {
        bail!(
            "no IAM Identity Center (SSO) settings found in {}",
            aws_path.display()
        );
    }
    let (added, already, skipped) = chained::merge(&mut doc, &found);
    report.profiles_added += added;
    report.already += already;
    report.skipped.extend(skipped);
    for (name, why) in &report.skipped {
        eprintln!("rolecall: warning: skipped {name}: {why}");
    }
    let new_text = doc.to_string();
    let summary = format!(
        "{} sources and {} profiles added ({} already there)",
        report.sources_added, report.profiles_added, report.already
    );
    if a.dry_run {
        print!(
            "{}",
            super::populate::unified_diff(
                &config_text,
                &new_text,
                &config_path.display().to_string(),
                &config_path.display().to_string(),
            )
        );
        eprintln!("rolecall: dry run, nothing written: {summary}");
        return Ok(0);
    }
    if new_text != config_text {
        awsconfig::write_atomic(&config_path, &new_text)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
    }
    println!("{summary} in {}", config_path.display());
    if report.profiles_added > 0 {
        println!(
            "the SSO profiles in {} still use the SDKs' own SSO login; to serve them through rolecall, \
             remove their sso_* lines (or the profiles) and run: rolecall populate <source>",
            aws_path.display()
        );
    }
    Ok(0)
}

/// Reads sources and profiles out of the AWS config's sections.
pub fn discover(sections: &[Section]) -> (Vec<FoundSource>, Vec<FoundProfile>, Vec<String>) {
    let mut sources: Vec<FoundSource> = Vec::new();
    let mut notes = Vec::new();
    for s in sections {
        let Some(name) = s.name.strip_prefix("sso-session") else {
            continue;
        };
        let name = name.trim();
        match (s.get("sso_start_url"), s.get("sso_region")) {
            (Some(url), Some(region)) if !name.is_empty() => sources.push(FoundSource {
                name: super::populate::sanitize_name(name),
                start_url: url.to_owned(),
                region: region.to_owned(),
            }),
            _ => notes.push(format!(
                "[{}] lacks sso_start_url or sso_region; ignored",
                s.name
            )),
        }
    }
    let session_source: BTreeMap<String, String> = sections
        .iter()
        .filter_map(|s| {
            let n = s.name.strip_prefix("sso-session")?.trim();
            Some((n.to_owned(), super::populate::sanitize_name(n)))
        })
        .collect();

    let mut profiles = Vec::new();
    for s in sections {
        let Some(pname) = awsconfig::profile_name(&s.name) else {
            continue;
        };
        let (Some(account), Some(role)) = (s.get("sso_account_id"), s.get("sso_role_name")) else {
            continue;
        };
        let source = if let Some(sess) = s.get("sso_session") {
            match session_source.get(sess) {
                Some(src) if sources.iter().any(|x| &x.name == src) => src.clone(),
                _ => {
                    notes.push(format!(
                        "profile {pname}: sso_session {sess} is not a usable [sso-session]; ignored"
                    ));
                    continue;
                }
            }
        } else {
            let (Some(url), Some(region)) = (s.get("sso_start_url"), s.get("sso_region")) else {
                notes.push(format!(
                    "profile {pname}: no sso_session and no sso_start_url/sso_region; ignored"
                ));
                continue;
            };
            match sources.iter().find(|x| x.start_url == url) {
                Some(x) => x.name.clone(),
                None => {
                    let name = unique(&legacy_source_name(url), &sources);
                    sources.push(FoundSource {
                        name: name.clone(),
                        start_url: url.to_owned(),
                        region: region.to_owned(),
                    });
                    name
                }
            }
        };
        // rolecalld refuses `/`, spaces and control characters in profile names.
        let name = super::populate::sanitize_name(&pname);
        if name.is_empty() {
            notes.push(format!("profile {pname:?}: no usable name; ignored"));
            continue;
        }
        if name != pname {
            notes.push(format!("profile {pname} is imported as {name}"));
        }
        profiles.push(FoundProfile {
            name,
            source,
            account: account.to_owned(),
            role: role.to_owned(),
            region: s.get("region").map(str::to_owned),
        });
    }
    (sources, profiles, notes)
}

/// `https://d-1234567890.awsapps.com/start` → `d-1234567890`; other hosts → their first label.
fn legacy_source_name(start_url: &str) -> String {
    let host = start_url
        .split("://")
        .nth(1)
        .unwrap_or(start_url)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    let label = host.split('.').next().unwrap_or("");
    let name = super::populate::sanitize_name(label);
    if name.is_empty() {
        "sso".into()
    } else {
        name
    }
}

fn unique(base: &str, taken: &[FoundSource]) -> String {
    let mut name = base.to_owned();
    let mut n = 2;
    while taken.iter().any(|s| s.name == name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    pub sources_added: usize,
    pub profiles_added: usize,
    pub already: usize,
    pub skipped: Vec<(String, String)>,
}

/// Adds what is new to the rolecall config. A source whose start URL is already configured
/// is reused under its existing name; a taken name with other settings is skipped.
pub fn merge(
    doc: &mut DocumentMut,
    sources: &[FoundSource],
    profiles: &[FoundProfile],
) -> MergeReport {
    let mut r = MergeReport::default();
    for key in ["sources", "profiles"] {
        if !doc.contains_key(key) {
            let mut t = Table::new();
            t.set_implicit(true);
            doc.insert(key, Item::Table(t));
        }
    }
    // Found source name → the name it has in the rolecall config.
    let mut rename: BTreeMap<String, String> = BTreeMap::new();
    if let Some(cfg_sources) = doc["sources"].as_table_mut() {
        for s in sources {
            let existing = cfg_sources.iter().find_map(|(name, item)| {
                let t = item.as_table_like()?;
                (t.get("start_url")?.as_str()? == s.start_url).then(|| name.to_owned())
            });
            if let Some(name) = existing {
                r.already += 1;
                rename.insert(s.name.clone(), name);
                continue;
            }
            if cfg_sources.contains_key(&s.name) {
                r.skipped.push((
                    format!("source {}", s.name),
                    "a source of that name with another start URL exists".into(),
                ));
                continue;
            }
            let mut t = Table::new();
            t.insert("kind", value("identity-center"));
            t.insert("start_url", value(s.start_url.as_str()));
            t.insert("region", value(s.region.as_str()));
            cfg_sources.insert(&s.name, Item::Table(t));
            rename.insert(s.name.clone(), s.name.clone());
            r.sources_added += 1;
        }
    }
    if let Some(cfg_profiles) = doc["profiles"].as_table_mut() {
        for p in profiles {
            let Some(source) = rename.get(&p.source) else {
                r.skipped.push((
                    format!("profile {}", p.name),
                    format!("its source {} was skipped", p.source),
                ));
                continue;
            };
            if let Some(t) = cfg_profiles.get(&p.name).and_then(Item::as_table_like) {
                let same = t.get("source").and_then(|v| v.as_str()) == Some(source)
                    && t.get("account").and_then(|v| v.as_str()) == Some(&p.account)
                    && t.get("role").and_then(|v| v.as_str()) == Some(&p.role);
                if same {
                    r.already += 1;
                } else {
                    r.skipped.push((
                        format!("profile {}", p.name),
                        "a profile of that name with other settings exists".into(),
                    ));
                }
                continue;
            }
            let mut t = Table::new();
            t.insert("source", value(source.as_str()));
            t.insert("account", value(p.account.as_str()));
            t.insert("role", value(p.role.as_str()));
            if let Some(reg) = &p.region {
                t.insert("region", value(reg.as_str()));
            }
            cfg_profiles.insert(&p.name, Item::Table(t));
            r.profiles_added += 1;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS: &str = "\
[default]
region = us-east-1

[sso-session corp]
sso_start_url = https://d-1234567890.awsapps.com/start
sso_region = eu-west-1
sso_registration_scopes = sso:account:access

[profile dev]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = DeveloperAdmin
region = eu-central-1

[profile old-style]
sso_start_url = https://d-9999999999.awsapps.com/start
sso_region = us-east-1
sso_account_id = 222222222222
sso_role_name = ReadOnly

[profile broken]
sso_session = nowhere
sso_account_id = 3
sso_role_name = X

[profile team/ops]
sso_session = corp
sso_account_id = 444444444444
sso_role_name = Ops

[profile plain]
role_arn = arn:aws:iam::1:role/x
source_profile = default
";

    #[test]
    fn discovers_sessions_and_legacy_profiles() {
        let (s, p, notes) = discover(&awsconfig::sections(AWS));
        assert_eq!(
            s,
            [
                FoundSource {
                    name: "corp".into(),
                    start_url: "https://d-1234567890.awsapps.com/start".into(),
                    region: "eu-west-1".into()
                },
                FoundSource {
                    name: "d-9999999999".into(),
                    start_url: "https://d-9999999999.awsapps.com/start".into(),
                    region: "us-east-1".into()
                },
            ]
        );
        let names: Vec<(&str, &str)> = p
            .iter()
            .map(|p| (p.name.as_str(), p.source.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("dev", "corp"),
                ("old-style", "d-9999999999"),
                ("team-ops", "corp")
            ]
        );
        assert_eq!(p[0].region.as_deref(), Some("eu-central-1"));
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("broken"));
        assert!(notes[1].contains("imported as team-ops"));
    }

    #[test]
    fn merge_is_idempotent_and_reuses_configured_start_urls() {
        let (s, p, _) = discover(&awsconfig::sections(AWS));
        let existing = "# mine\n[sources.work]\nkind = \"identity-center\"\nstart_url = \"https://d-1234567890.awsapps.com/start\"\nregion = \"eu-west-1\"\n";
        let mut doc: DocumentMut = existing.parse().unwrap();
        let r = merge(&mut doc, &s, &p);
        assert_eq!((r.sources_added, r.profiles_added, r.already), (1, 3, 1));
        let text = doc.to_string();
        assert!(text.starts_with(existing), "{text}");
        assert!(text.contains("[profiles.dev]\nsource = \"work\"\naccount = \"111111111111\"\nrole = \"DeveloperAdmin\"\nregion = \"eu-central-1\"\n"), "{text}");
        assert!(text.contains("[sources.d-9999999999]"), "{text}");
        let mut again: DocumentMut = text.parse().unwrap();
        let r = merge(&mut again, &s, &p);
        assert_eq!((r.sources_added, r.profiles_added), (0, 0));
        assert_eq!(again.to_string(), text);
    }

    #[test]
    fn legacy_names() {
        assert_eq!(
            legacy_source_name("https://d-1234567890.awsapps.com/start"),
            "d-1234567890"
        );
        assert_eq!(legacy_source_name("https://sso.example.com:443/x"), "sso");
        assert_eq!(legacy_source_name(""), "sso");
    }
}
