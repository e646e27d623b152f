//! Edits the `[profiles.*]` of the rolecall config with toml_edit, so that the user's
//! formatting, comments and ordering survive: only the profiles that change are touched.

use rolecall_proto::api::AvailableRole;
use toml_edit::{value, DocumentMut, Item, Table};

/// What an update did (or, in a dry run, would do), by profile name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    /// Existing profiles whose account name changed upstream.
    pub renamed_account: Vec<String>,
    pub removed: Vec<String>,
    /// Profiles of this source whose account or role is gone, kept because `--prune` is off.
    pub gone: Vec<String>,
    /// Listed roles left out, with the reason (their name belongs to another profile).
    pub skipped: Vec<(String, String)>,
    /// Listed roles that already had a profile.
    pub unchanged: usize,
}

/// Brings the profiles of `source` in `doc` in line with `roles` (name, role).
pub fn apply(
    doc: &mut DocumentMut,
    source: &str,
    roles: &[(String, AvailableRole)],
    prune: bool,
) -> Changes {
    let mut ch = Changes::default();
    if !doc.contains_key("profiles") {
        let mut t = Table::new();
        // `[profiles.x]` headers only, no empty `[profiles]` line.
        t.set_implicit(true);
        doc.insert("profiles", Item::Table(t));
    }
    let Some(profiles) = doc["profiles"].as_table_mut() else {
        // `profiles = 1` or an inline table: not something to rewrite behind the user's back.
        ch.skipped.extend(
            roles
                .iter()
                .map(|(n, _)| (n.clone(), "`profiles` is not a table in the config".into())),
        );
        return ch;
    };

    // Existing profiles of this source, by (account, role).
    let existing: Vec<(String, String, String)> = profiles
        .iter()
        .filter_map(|(name, item)| {
            let t = item.as_table_like()?;
            let s = t.get("source")?.as_str()?;
            (s == source).then(|| {
                let account = t.get("account").and_then(|v| v.as_str()).unwrap_or("");
                let role = t.get("role").and_then(|v| v.as_str()).unwrap_or("");
                (name.to_owned(), account.to_owned(), role.to_owned())
            })
        })
        .collect();

    for (name, r) in roles {
        let same = existing
            .iter()
            .find(|(_, a, ro)| *a == r.account_id && *ro == r.role);
        if let Some((have, _, _)) = same {
            let Some(t) = profiles.get_mut(have).and_then(Item::as_table_like_mut) else {
                continue;
            };
            let current = t.get("account_name").and_then(|v| v.as_str());
            match &r.account_name {
                Some(n) if current != Some(n.as_str()) => {
                    t.insert("account_name", value(n.as_str()));
                    ch.renamed_account.push(have.clone());
                }
                _ => ch.unchanged += 1,
            }
            continue;
        }
        if profiles.contains_key(name) {
            ch.skipped.push((
                name.clone(),
                "a profile of that name exists for another account or role".into(),
            ));
            continue;
        }
        let mut t = Table::new();
        t.insert("source", value(source));
        t.insert("account", value(r.account_id.as_str()));
        if let Some(n) = &r.account_name {
            t.insert("account_name", value(n.as_str()));
        }
        t.insert("role", value(r.role.as_str()));
        if let Some(p) = &r.principal {
            t.insert("principal", value(p.as_str()));
        }
        profiles.insert(name, Item::Table(t));
        ch.added.push(name.clone());
    }

    for (name, account, role) in &existing {
        let listed = roles
            .iter()
            .any(|(_, r)| r.account_id == *account && r.role == *role);
        if listed {
            continue;
        }
        if prune {
            profiles.remove(name);
            ch.removed.push(name.clone());
        } else {
            ch.gone.push(name.clone());
        }
    }
    ch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(id: &str, name: &str, role: &str) -> AvailableRole {
        AvailableRole {
            account_id: id.into(),
            account_name: Some(name.into()),
            role: role.into(),
            principal: None,
        }
    }

    const CONFIG: &str = r#"# my rolecall config
[daemon]
refresh_ahead = "25m"   # longer than the default

[sources.corp]
kind = "identity-center"
start_url = "https://d-1234567890.awsapps.com/start"
region = "eu-west-1"

# hand-written, renamed by me
[profiles.my-prod]
source = "corp"
account = "111111111111"
role    = "Admin"     # aligned on purpose

[profiles.other]
source = "elsewhere"
role = "arn:aws:iam::1:role/X"
"#;

    fn run(text: &str, roles: &[(&str, AvailableRole)], prune: bool) -> (String, Changes) {
        let mut doc: DocumentMut = text.parse().unwrap();
        let roles: Vec<(String, AvailableRole)> = roles
            .iter()
            .map(|(n, r)| ((*n).to_owned(), r.clone()))
            .collect();
        let ch = apply(&mut doc, "corp", &roles, prune);
        (doc.to_string(), ch)
    }

    #[test]
    fn adds_new_profiles_after_the_existing_ones_and_keeps_formatting() {
        let roles = [
            ("Prod.Admin", role("111111111111", "Prod", "Admin")),
            ("Dev.ReadOnly", role("222222222222", "Dev", "ReadOnly")),
        ];
        let (out, ch) = run(CONFIG, &roles, false);
        assert_eq!(ch.added, ["Dev.ReadOnly"]);
        assert_eq!(ch.renamed_account, ["my-prod"]);
        // Everything the user wrote is still there, in place.
        assert!(out.starts_with(
            "# my rolecall config\n[daemon]\nrefresh_ahead = \"25m\"   # longer than the default\n"
        ));
        assert!(out.contains("# hand-written, renamed by me\n[profiles.my-prod]\nsource = \"corp\"\naccount = \"111111111111\"\nrole    = \"Admin\"     # aligned on purpose\n"), "{out}");
        assert!(out.ends_with(
            "\n[profiles.\"Dev.ReadOnly\"]\nsource = \"corp\"\naccount = \"222222222222\"\naccount_name = \"Dev\"\nrole = \"ReadOnly\"\n"
        ), "{out}");
        // Idempotent.
        let (again, ch) = run(&out, &roles, false);
        assert_eq!(again, out);
        assert_eq!(
            ch.added.len() + ch.renamed_account.len() + ch.removed.len(),
            0
        );
        assert_eq!(ch.unchanged, 2);
    }

    #[test]
    fn prune_removes_only_this_sources_missing_roles() {
        let roles = [("Dev.ReadOnly", role("222222222222", "Dev", "ReadOnly"))];
        let (out, ch) = run(CONFIG, &roles, false);
        assert_eq!(ch.gone, ["my-prod"]);
        assert!(out.contains("[profiles.my-prod]"));
        let (out, ch) = run(&out, &roles, true);
        assert_eq!(ch.removed, ["my-prod"]);
        assert!(!out.contains("my-prod"));
        assert!(out.contains("[profiles.other]"));
        assert!(out.contains("[sources.corp]"));
    }

    #[test]
    fn a_taken_name_is_skipped_not_overwritten() {
        let roles = [("other", role("333333333333", "X", "Admin"))];
        let (out, ch) = run(CONFIG, &roles, false);
        assert_eq!(ch.skipped.len(), 1);
        assert!(out.contains("role = \"arn:aws:iam::1:role/X\""));
    }

    #[test]
    fn an_empty_config_gets_profile_headers_only() {
        let roles = [("a/b", role("1", "a", "b"))];
        let (out, _) = run("", &roles, false);
        assert_eq!(
            out,
            "[profiles.\"a/b\"]\nsource = \"corp\"\naccount = \"1\"\naccount_name = \"a\"\nrole = \"b\"\n"
        );
    }
}
