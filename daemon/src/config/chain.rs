//! Chained profiles (`via = "<profile>"` + `role_arn`): checks, and the root source filled in
//! after loading (docs/chaining.md).
//!
//! A chained profile names no source of its own: its credentials come from assuming
//! `role_arn` with its parent's credentials. After validation, `source` is set to the source at
//! the root of the chain and `role` to `role_arn`, so that everything keyed by source (logins,
//! logouts, the prompt's "needs login", the refresh scheduler's grouping) covers it unchanged.

use super::{check_name, is_iam_arn, Config, Invalid, Place, ProfileConfig};

/// AWS caps sessions of roles assumed with role credentials ("role chaining") at one hour.
pub const CHAINED_MAX_SECS: u64 = 3600;

/// A profile without `via` must name a source and may not use the chaining keys.
pub(crate) fn refuse_chain_keys<'a>(
    name: &'a str,
    profile: &'a ProfileConfig,
) -> Result<(), Invalid<'a>> {
    let p = |k: &'a str| Place::Profile(name, Some(k));
    if profile.source.is_empty() {
        return Err((
            Some(Place::Profile(name, None)),
            format!("profile '{name}' needs source (or via = \"<profile>\" with role_arn to chain from another profile)"),
        ));
    }
    let used = [
        ("role_arn", profile.role_arn.is_some()),
        ("external_id", profile.external_id.is_some()),
        ("session_tags", !profile.session_tags.is_empty()),
        ("source_identity", profile.source_identity.is_some()),
    ];
    if let Some((key, _)) = used.iter().find(|(_, set)| *set) {
        return Err((
            Some(p(key)),
            format!("profile '{name}': {key} applies to chained profiles only (with via = \"<profile>\")"),
        ));
    }
    Ok(())
}

/// Checks one chained profile: its parent exists, the chain has no cycle, the role and the
/// AssumeRole parameters are well formed.
pub(crate) fn validate_chained<'a>(
    config: &'a Config,
    name: &'a str,
    profile: &'a ProfileConfig,
) -> Result<(), Invalid<'a>> {
    let p = |k: &'a str| Place::Profile(name, Some(k));
    check_name(Place::Profile(name, None), "profile", name)?;
    let via = profile.via.as_deref().unwrap_or_default();
    if !profile.source.is_empty() {
        return Err((
            Some(p("source")),
            format!("profile '{name}': source and via exclude each other (a chained profile uses the source of '{via}')"),
        ));
    }
    if !profile.role.is_empty() {
        return Err((
            Some(p("role")),
            format!("profile '{name}': a chained profile names its role with role_arn, not role"),
        ));
    }
    if !config.profiles.contains_key(via) {
        let known: Vec<&str> = config
            .profiles
            .keys()
            .filter(|k| k.as_str() != name)
            .map(String::as_str)
            .collect();
        let known = if known.is_empty() {
            "no other profiles are configured".to_string()
        } else {
            format!("known profiles: {}", known.join(", "))
        };
        return Err((
            Some(p("via")),
            format!("profile '{name}': via names unknown profile '{via}' ({known})"),
        ));
    }
    let mut path = vec![name];
    let mut at = via;
    loop {
        if path.contains(&at) {
            path.push(at);
            return Err((
                Some(p("via")),
                format!(
                    "profile '{name}': via makes a cycle ({})",
                    path.join(" -> ")
                ),
            ));
        }
        path.push(at);
        match config.profiles.get(at).and_then(|pc| pc.via.as_deref()) {
            Some(next) => at = next,
            None => break,
        }
    }
    let Some(role_arn) = profile.role_arn.as_deref() else {
        return Err((
            Some(Place::Profile(name, None)),
            format!("profile '{name}': a chained profile needs role_arn (the role to assume with the credentials of '{via}')"),
        ));
    };
    if !is_iam_arn(role_arn, "role") {
        return Err((
            Some(p("role_arn")),
            format!("profile '{name}': role_arn must be an IAM role ARN like arn:aws:iam::123456789012:role/Name, got {role_arn:?}"),
        ));
    }
    if let Some(account) = &profile.account {
        let arn_account = role_arn.split(':').nth(4).unwrap_or_default();
        if arn_account != account {
            return Err((
                Some(p("account")),
                format!("profile '{name}': account {account} differs from the role ARN's account {arn_account}"),
            ));
        }
    }
    if profile.principal.is_some() {
        return Err((
            Some(p("principal")),
            format!("profile '{name}': principal applies to entra-saml sources only"),
        ));
    }
    if let Some(d) = profile.duration {
        if !(900..=43_200).contains(&d.as_secs()) {
            return Err((
                Some(p("duration")),
                format!(
                    "profile '{name}': duration must be between 15m and 12h, got {}s",
                    d.as_secs()
                ),
            ));
        }
    }
    // The AssumeRole model's constraints, so that a typo is a config error, not a refusal
    // at every fetch.
    if let Some(id) = &profile.external_id {
        if !(2..=1224).contains(&id.len()) || !id.chars().all(|c| is_sts_char(c, "+=,.@:/-")) {
            return Err((
                Some(p("external_id")),
                format!("profile '{name}': external_id must be 2 to 1224 characters of letters, digits and _+=,.@:/-"),
            ));
        }
    }
    if let Some(si) = &profile.source_identity {
        if !(2..=64).contains(&si.len()) || !si.chars().all(|c| is_sts_char(c, "+=,.@-")) {
            return Err((
                Some(p("source_identity")),
                format!("profile '{name}': source_identity must be 2 to 64 characters of letters, digits and _+=,.@-"),
            ));
        }
    }
    if profile.session_tags.len() > 50 {
        return Err((
            Some(p("session_tags")),
            format!("profile '{name}': at most 50 session_tags"),
        ));
    }
    for (k, v) in &profile.session_tags {
        if k.is_empty()
            || k.len() > 128
            || v.len() > 256
            || k.to_ascii_lowercase().starts_with("aws:")
        {
            return Err((
                Some(p("session_tags")),
                format!("profile '{name}': session tag {k:?}: keys are 1 to 128 characters (not starting with aws:), values at most 256"),
            ));
        }
    }
    Ok(())
}

fn is_sts_char(c: char, extra: &str) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || extra.contains(c)
}

/// Sets each chained profile's `source` to its chain's root source and `role` to its
/// `role_arn`. Runs after validation (no cycles, every parent exists).
pub(crate) fn fill_in_roots(config: &mut Config) {
    let roots: Vec<(String, String)> = config
        .profiles
        .iter()
        .filter(|(_, pc)| pc.via.is_some())
        .filter_map(|(name, _)| {
            let mut at = config.profiles.get(name)?;
            for _ in 0..=config.profiles.len() {
                match at.via.as_deref() {
                    Some(parent) => at = config.profiles.get(parent)?,
                    None => return Some((name.clone(), at.source.clone())),
                }
            }
            None
        })
        .collect();
    for (name, root) in roots {
        if let Some(pc) = config.profiles.get_mut(&name) {
            pc.source = root;
            pc.role = pc.role_arn.clone().unwrap_or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    const BASE: &str = r#"
[sources.corp]
kind = "identity-center"
start_url = "https://d-1234567890.awsapps.com/start"
region = "eu-west-1"

[profiles.dev-admin]
source = "corp"
account = "111111111111"
role = "DeveloperAdmin"
"#;

    fn err(extra: &str) -> String {
        let text = format!("{BASE}{extra}");
        parse(&text, Path::new("/c/config.toml"))
            .expect_err("config should be refused")
            .to_string()
    }

    fn line_of(extra: &str, needle: &str) -> usize {
        let text = format!("{BASE}{extra}");
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn chained_profiles_take_their_root_source_and_role() {
        let text = format!(
            "{BASE}\n[profiles.deploy]\nvia = \"dev-admin\"\nrole_arn = \"arn:aws:iam::222222222222:role/Deploy\"\nduration = \"2h\"\nsource_identity = \"alice\"\nsession_tags = {{ team = \"infra\" }}\n\n[profiles.deeper]\nvia = \"deploy\"\nrole_arn = \"arn:aws:iam::333333333333:role/Audit\"\n"
        );
        let c = parse(&text, Path::new("x")).unwrap();
        assert_eq!(c.profiles["deploy"].source, "corp");
        assert_eq!(
            c.profiles["deploy"].role,
            "arn:aws:iam::222222222222:role/Deploy"
        );
        assert_eq!(c.profiles["deeper"].source, "corp");
        assert_eq!(c.profiles["deeper"].via.as_deref(), Some("deploy"));
        assert_eq!(c.profiles["deploy"].session_tags["team"], "infra");
    }

    #[test]
    fn unknown_parent_is_located() {
        let extra = "\n[profiles.deploy]\nvia = \"dev-admn\"\nrole_arn = \"arn:aws:iam::222222222222:role/Deploy\"\n";
        let line = line_of(extra, "dev-admn");
        assert_eq!(
            err(extra),
            format!("/c/config.toml:{line}:1: profile 'deploy': via names unknown profile 'dev-admn' (known profiles: dev-admin)")
        );
    }

    #[test]
    fn cycles_are_located() {
        let extra = "\n[profiles.a]\nvia = \"b\"\nrole_arn = \"arn:aws:iam::222222222222:role/A\"\n\n[profiles.b]\nvia = \"a\"\nrole_arn = \"arn:aws:iam::222222222222:role/B\"\n";
        let line = line_of(extra, "via = \"b\"");
        assert_eq!(
            err(extra),
            format!("/c/config.toml:{line}:1: profile 'a': via makes a cycle (a -> b -> a)")
        );
        let own = "\n[profiles.a]\nvia = \"a\"\nrole_arn = \"arn:aws:iam::222222222222:role/A\"\n";
        assert!(
            err(own).ends_with("profile 'a': via makes a cycle (a -> a)"),
            "{}",
            err(own)
        );
    }

    #[test]
    fn chained_keys_are_checked() {
        let no_arn = "\n[profiles.deploy]\nvia = \"dev-admin\"\n";
        assert!(err(no_arn).contains("needs role_arn"), "{}", err(no_arn));
        let bad_arn = "\n[profiles.deploy]\nvia = \"dev-admin\"\nrole_arn = \"Deploy\"\n";
        assert!(err(bad_arn).contains("role_arn must be an IAM role ARN"));
        let both = "\n[profiles.deploy]\nvia = \"dev-admin\"\nsource = \"corp\"\nrole_arn = \"arn:aws:iam::222222222222:role/Deploy\"\n";
        assert!(err(both).contains("source and via exclude each other"));
        let stray = "\n[profiles.x]\nsource = \"corp\"\naccount = \"111111111111\"\nrole = \"R\"\nexternal_id = \"abc\"\n";
        let line = line_of(stray, "external_id");
        assert_eq!(
            err(stray),
            format!("/c/config.toml:{line}:1: profile 'x': external_id applies to chained profiles only (with via = \"<profile>\")")
        );
        let bad_si = "\n[profiles.deploy]\nvia = \"dev-admin\"\nrole_arn = \"arn:aws:iam::222222222222:role/Deploy\"\nsource_identity = \"a b\"\n";
        assert!(err(bad_si).contains("source_identity must be"));
        let nothing = "\n[profiles.x]\nrole = \"R\"\n";
        assert!(err(nothing).contains("needs source (or via"));
    }
}
