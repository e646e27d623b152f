//! `[sources.NAME] kind = "aws-login"`: a session the AWS CLI's `aws login` keeps
//! (docs/interop.md). Experimental: the cache format and the Sign-In token call follow the AWS
//! CLI and botocore, not a published specification.

use crate::config::ProfileConfig;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AwsLoginConfig {
    /// The profile's `login_session` in `~/.aws/config`: the ARN of the signed-in principal.
    /// The cache file is `<cache_dir>/<sha256(login_session)>.json`.
    pub login_session: String,
    /// Default: `AWS_LOGIN_CACHE_DIRECTORY` (as the daemon was started), else
    /// `~/.aws/login/cache`.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// The Sign-In region when the cache file names none (`signInRegion`); default us-east-1.
    #[serde(default)]
    pub region: Option<String>,
    /// The Sign-In endpoint (wins over `AWS_ENDPOINT_URL_SIGNIN`).
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

/// The source's own rules: `(key, message)` for the first broken one.
pub fn validate(name: &str, c: &AwsLoginConfig) -> Result<(), (&'static str, String)> {
    let arn: Vec<&str> = c.login_session.splitn(6, ':').collect();
    let account_ok = arn.get(4).is_some_and(|a| crate::config::is_account_id(a));
    if arn.len() != 6 || arn[0] != "arn" || !account_ok {
        return Err((
            "login_session",
            format!(
                "source '{name}': login_session must be the ARN `aws login` signed in as (the profile's login_session in ~/.aws/config, like arn:aws:iam::123456789012:user/alice), got {:?}",
                c.login_session
            ),
        ));
    }
    if c.region.as_deref().is_some_and(|r| r.trim().is_empty()) {
        return Err(("region", format!("source '{name}': region is empty")));
    }
    Ok(())
}

/// A profile of an aws-login source serves the session's own credentials: it names no role
/// (chain a profile with `via` to assume one), and an `account`, if given, is the session's.
pub fn validate_profile(
    name: &str,
    c: &AwsLoginConfig,
    p: &ProfileConfig,
) -> Result<(), (&'static str, String)> {
    if !p.role.trim().is_empty() {
        return Err((
            "role",
            format!("profile '{name}': an aws-login source serves the signed-in session's own credentials; leave role out (to assume a role, add a profile with via = \"{name}\" and role_arn)"),
        ));
    }
    let session_account = c.login_session.split(':').nth(4).unwrap_or_default();
    if let Some(a) = &p.account {
        if a != session_account {
            return Err((
                "account",
                format!("profile '{name}': account {a} is not the aws login session's account {session_account}"),
            ));
        }
    }
    if p.duration.is_some() {
        return Err((
            "duration",
            format!("profile '{name}': duration does not apply to aws-login (Sign-In gives 15-minute credentials)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    fn parse(extra: &str) -> Result<crate::config::Config, String> {
        let text = format!(
            "[sources.console]\nkind = \"aws-login\"\nlogin_session = \"arn:aws:iam::111111111111:user/alice\"\n\n[profiles.c]\nsource = \"console\"\n{extra}"
        );
        crate::config::parse(&text, std::path::Path::new("c.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn profiles_serve_the_session_itself() {
        assert!(parse("").is_ok());
        assert!(parse("account = \"111111111111\"\n").is_ok());
        let e = parse("role = \"Admin\"\n").unwrap_err();
        assert!(e.contains("c.toml:7:1") && e.contains("via"), "{e}");
        let e = parse("account = \"222222222222\"\n").unwrap_err();
        assert!(e.contains("not the aws login session's account"), "{e}");
        let bad = "[sources.x]\nkind = \"aws-login\"\nlogin_session = \"alice\"\n";
        let e = crate::config::parse(bad, std::path::Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("login_session must be the ARN"), "{e}");
    }
}
