//! The `[profiles.*]` tables: which source, account and role a profile serves, and the checks
//! every profile passes whatever its source's kind.

use super::units::duration_str;
use super::{check_name, Config, Invalid, Place};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// The login source. A chained profile (`via`) leaves it out; loading fills in the source
    /// at the root of its chain (its sessions, logins and logouts are that source's).
    #[serde(default)]
    pub source: String,
    /// Account id (identity-center; optional for entra-* where the role ARN names it).
    #[serde(default)]
    pub account: Option<String>,
    /// Friendly account name, shown by `status` and the prompt (written by `populate`).
    #[serde(default)]
    pub account_name: Option<String>,
    /// Permission set name (identity-center) or role ARN (entra-*). A chained profile leaves
    /// it out; loading fills in its `role_arn`.
    #[serde(default)]
    pub role: String,
    /// SAML provider ARN (entra-saml; required for encrypted assertions).
    #[serde(default)]
    pub principal: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub warm: bool,
    /// entra-* and chained profiles; clamped to what the assertion/role allows (1h when
    /// chained: AWS's role-chaining limit).
    #[serde(default, with = "duration_str::option")]
    pub duration: Option<Duration>,
    /// Role chaining (docs/chaining.md): the served profile whose credentials assume `role_arn`.
    #[serde(default)]
    pub via: Option<String>,
    #[serde(default)]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub session_tags: BTreeMap<String, String>,
    #[serde(default)]
    pub source_identity: Option<String>,
    /// Scoped sessions (docs/scoped-sessions.md): every credential of the profile is narrowed
    /// by this inline session policy (packed JSON once loaded; `session_policy_file` read in).
    #[serde(default)]
    pub session_policy: Option<String>,
    #[serde(default)]
    pub session_policy_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub managed_session_policies: Vec<String>,
}

/// `arn:<partition>:iam::<12 digits>:<kind>/<name>`.
pub(crate) fn is_iam_arn(s: &str, kind: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iam" || !parts[3].is_empty() {
        return false;
    }
    let partition_ok =
        parts[1].starts_with("aws") && parts[1].chars().all(|c| c.is_ascii_lowercase() || c == '-');
    let name = parts[5]
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('/'));
    partition_ok && is_account_id(parts[4]) && name.is_some_and(|n| !n.is_empty())
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Checks a profile that names a source (a chained one is checked in `chain`): its name, its
/// source, account and role, then what its source's kind asks of it.
pub(super) fn validate<'a>(
    config: &'a Config,
    name: &'a str,
    profile: &'a ProfileConfig,
) -> Result<(), Invalid<'a>> {
    let p = |k: &'a str| Place::Profile(name, Some(k));
    check_name(Place::Profile(name, None), "profile", name)?;
    let Some(source) = config.sources.get(&profile.source) else {
        let known: Vec<&str> = config.sources.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "no sources are configured".to_string()
        } else {
            format!("known sources: {}", known.join(", "))
        };
        return Err((
            Some(p("source")),
            format!(
                "profile '{name}' names unknown source '{}' ({known})",
                profile.source
            ),
        ));
    };
    if let Some(account) = &profile.account {
        if !is_account_id(account) {
            return Err((
                Some(p("account")),
                format!(
                    "profile '{name}': account must be a 12-digit AWS account id, got {account:?}"
                ),
            ));
        }
    }
    // An aws-login profile names no role: it serves the signed-in session's own credentials.
    let names_role = !matches!(source, super::SourceConfig::AwsLogin(_));
    if names_role && profile.role.trim().is_empty() {
        return Err((Some(p("role")), format!("profile '{name}': role is empty")));
    }
    source.validate_profile(name, profile)?;
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
    Ok(())
}
/// entra-* profiles: `role` is a role ARN, and `account`, when given, is its account.
pub(crate) fn check_role_arn<'a>(
    kind: &str,
    name: &'a str,
    profile: &'a ProfileConfig,
) -> Result<(), Invalid<'a>> {
    let p = |k: &'a str| Place::Profile(name, Some(k));
    if !is_iam_arn(&profile.role, "role") {
        return Err((
            Some(p("role")),
            format!(
                "profile '{name}': role must be an IAM role ARN like arn:aws:iam::123456789012:role/Name for {kind} source '{}', got {:?}",
                profile.source,
                profile.role
            ),
        ));
    }
    if let Some(account) = &profile.account {
        let arn_account = profile.role.split(':').nth(4).unwrap_or_default();
        if arn_account != account {
            return Err((
                Some(p("account")),
                format!("profile '{name}': account {account} differs from the role ARN's account {arn_account}"),
            ));
        }
    }
    Ok(())
}

/// `principal` names a SAML provider: only entra-saml profiles have one.
pub(crate) fn refuse_principal<'a>(
    name: &'a str,
    profile: &'a ProfileConfig,
) -> Result<(), Invalid<'a>> {
    if profile.principal.is_none() {
        return Ok(());
    }
    Err((
        Some(Place::Profile(name, Some("principal"))),
        format!("profile '{name}': principal applies to entra-saml sources only"),
    ))
}
