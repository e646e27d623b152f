//! `rolecall import`, role chaining: AWS config profiles with `source_profile` + `role_arn`
//! whose source profile is (or becomes) a rolecall profile turn into chained profiles
//! (`via` + `role_arn`, docs/chaining.md). Others (a source profile with static keys, MFA) are
//! left to the SDKs, with a note.

use crate::awsconfig::{self, Section};
use toml_edit::{value, DocumentMut, Item, Table};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundChained {
    pub name: String,
    /// The rolecall profile whose credentials assume the role.
    pub via: String,
    pub role_arn: String,
    pub external_id: Option<String>,
    /// From `duration_seconds`, when within rolecall's 15m–12h.
    pub duration_secs: Option<u64>,
    pub region: Option<String>,
}

/// The chained profiles among `sections` whose `source_profile` is one of `served` (rolecall
/// profile names) or another chained profile found here, parents first.
pub fn discover(sections: &[Section], served: &[String]) -> (Vec<FoundChained>, Vec<String>) {
    let sanitize = super::super::populate::sanitize_name;
    let candidates: Vec<(String, &Section)> = sections
        .iter()
        .filter_map(|s| Some((awsconfig::profile_name(&s.name)?, s)))
        .filter(|(_, s)| s.get("role_arn").is_some() && s.get("sso_account_id").is_none())
        .collect();
    let mut found: Vec<FoundChained> = Vec::new();
    let mut notes = Vec::new();
    let mut pending: Vec<(String, &Section)> = Vec::new();
    for (pname, s) in candidates {
        if s.get("mfa_serial").is_some() {
            notes.push(format!("profile {pname}: mfa_serial is not supported for chained profiles; left to the SDKs"));
        } else if s.get("source_profile").is_none() {
            // credential_source (EC2, ECS, environment) is not rolecall's to serve.
        } else {
            pending.push((pname, s));
        }
    }
    // Parents first: a profile can chain from one found in an earlier pass.
    loop {
        let before = found.len();
        pending.retain(|(pname, s)| {
            let parent = sanitize(s.get("source_profile").unwrap_or_default());
            let name = sanitize(pname);
            let known = served.contains(&parent) || found.iter().any(|f| f.name == parent);
            if !known || name.is_empty() || name == parent {
                return true;
            }
            let duration_secs = s
                .get("duration_seconds")
                .and_then(|d| d.trim().parse::<u64>().ok())
                .filter(|d| (900..=43_200).contains(d));
            found.push(FoundChained {
                name,
                via: parent,
                role_arn: s.get("role_arn").unwrap_or_default().to_owned(),
                external_id: s.get("external_id").map(str::to_owned),
                duration_secs,
                region: s.get("region").map(str::to_owned),
            });
            false
        });
        if found.len() == before {
            break;
        }
    }
    for (pname, s) in pending {
        notes.push(format!(
            "profile {pname}: source_profile {} is not a rolecall profile; left to the SDKs",
            s.get("source_profile").unwrap_or_default()
        ));
    }
    (found, notes)
}

/// Adds the chained profiles that are new; returns (added, already there, skipped with why).
pub fn merge(
    doc: &mut DocumentMut,
    found: &[FoundChained],
) -> (usize, usize, Vec<(String, String)>) {
    let (mut added, mut already, mut skipped) = (0, 0, Vec::new());
    let Some(profiles) = doc.get_mut("profiles").and_then(Item::as_table_mut) else {
        return (0, 0, Vec::new());
    };
    for f in found {
        if let Some(t) = profiles.get(&f.name).and_then(Item::as_table_like) {
            let same = t.get("via").and_then(|v| v.as_str()) == Some(&f.via)
                && t.get("role_arn").and_then(|v| v.as_str()) == Some(&f.role_arn);
            if same {
                already += 1;
            } else {
                skipped.push((
                    format!("profile {}", f.name),
                    "a profile of that name with other settings exists".into(),
                ));
            }
            continue;
        }
        let mut t = Table::new();
        t.insert("via", value(f.via.as_str()));
        t.insert("role_arn", value(f.role_arn.as_str()));
        if let Some(x) = &f.external_id {
            t.insert("external_id", value(x.as_str()));
        }
        if let Some(d) = f.duration_secs {
            t.insert("duration", value(format!("{d}s")));
        }
        if let Some(r) = &f.region {
            t.insert("region", value(r.as_str()));
        }
        profiles.insert(&f.name, Item::Table(t));
        added += 1;
    }
    (added, already, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS: &str = "\
[profile dev]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = DeveloperAdmin

[profile audit]
source_profile = deploy
role_arn = arn:aws:iam::333333333333:role/Auditor
external_id = abc-123

[profile deploy]
source_profile = dev
role_arn = arn:aws:iam::222222222222:role/Deployer
duration_seconds = 3600
region = eu-west-1

[profile keys]
aws_access_key_id = AKIAEXAMPLE

[profile from-keys]
source_profile = keys
role_arn = arn:aws:iam::222222222222:role/Deployer

[profile with-mfa]
source_profile = dev
role_arn = arn:aws:iam::222222222222:role/Deployer
mfa_serial = arn:aws:iam::111111111111:mfa/alice
";

    #[test]
    fn chains_from_rolecall_profiles_parents_first() {
        let (found, notes) = discover(&awsconfig::sections(AWS), &["dev".to_string()]);
        let names: Vec<(&str, &str)> = found
            .iter()
            .map(|f| (f.name.as_str(), f.via.as_str()))
            .collect();
        assert_eq!(names, [("deploy", "dev"), ("audit", "deploy")]);
        assert_eq!(found[0].duration_secs, Some(3600));
        assert_eq!(found[1].external_id.as_deref(), Some("abc-123"));
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes
            .iter()
            .any(|n| n.contains("with-mfa") && n.contains("mfa_serial")));
        assert!(notes
            .iter()
            .any(|n| n.contains("from-keys") && n.contains("not a rolecall profile")));
        let mut doc: DocumentMut = "[profiles.dev]\nsource = \"corp\"\n".parse().unwrap();
        assert_eq!(merge(&mut doc, &found).0, 2);
        let text = doc.to_string();
        assert!(text.contains("[profiles.deploy]\nvia = \"dev\"\nrole_arn = \"arn:aws:iam::222222222222:role/Deployer\"\nduration = \"3600s\"\nregion = \"eu-west-1\"\n"), "{text}");
        let (added, already, _) = merge(&mut doc, &found);
        assert_eq!((added, already), (0, 2));
    }
}
