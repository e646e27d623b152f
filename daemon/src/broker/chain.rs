//! Role chaining: a profile with `via = "<parent>"` gets its credentials by STS `AssumeRole`
//! of its `role_arn`, signed with the parent's served credentials (docs/chaining.md).
//!
//! This is the broker's own fetch, not a [`crate::sources::Source`]: it needs another profile's
//! credentials, which only the broker has (cached, refreshed, single-flighted). A chained
//! profile's `source` is the root of its chain (filled in by the config loader), so logins,
//! logouts and "needs login" of that source cover it; its cache key's role names the whole chain
//! and every AssumeRole parameter, so that two profiles differing in any of them never share
//! credentials, and a changed chain is a new key.

use super::Registry;
use crate::config::{ProfileConfig, CHAINED_MAX_SECS};
use crate::endpoints::{self, Service};
use crate::sources::transport::transport;
use crate::sources::{RoleCredentials, SourceError};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use zeroize::Zeroizing;

/// The cache key's role part for a chained profile: its role and parameters, then its
/// parent's, up to the root profile's role.
pub(super) fn key_role(reg: &Registry, pc: &ProfileConfig) -> String {
    let mut out = String::new();
    let mut at = pc;
    // Bounded: the loader refused cycles, but a key must never loop.
    for _ in 0..=reg.config.profiles.len() {
        let Some(parent) = at.via.as_deref() else {
            out.push_str(&format!(
                "{}|{}",
                super::cache::profile_account(at),
                at.role
            ));
            return out;
        };
        out.push_str(&format!(
            "{}|ext={:?}|si={:?}|dur={:?}|tags={:?} via {parent}: ",
            at.role,
            at.external_id,
            at.source_identity,
            at.duration.map(|d| d.as_secs()),
            at.session_tags,
        ));
        match reg.config.profiles.get(parent) {
            Some(p) => at = p,
            None => break,
        }
    }
    out
}

/// The duration to request: the profile's, at most the one hour AWS allows a chained session.
pub(super) fn requested_duration(pc: &ProfileConfig) -> u64 {
    pc.duration
        .map_or(CHAINED_MAX_SECS, |d| d.as_secs())
        .min(CHAINED_MAX_SECS)
}

/// The session name AWS shows in the assumed-role ARN: `rolecall-<profile>`, within the
/// model's 64 characters (profile names use only characters it allows).
fn session_name(profile: &str) -> String {
    let mut s = format!("rolecall-{profile}");
    s.truncate(64);
    s
}

/// AssumeRole of the profile's `role_arn` with the parent's credentials, through the STS
/// endpoint the root source uses (its `endpoint_url`, else the environment's override, else
/// AWS's regional endpoint).
pub(super) async fn assume(
    reg: &Registry,
    profile: &str,
    pc: &ProfileConfig,
    parent: &RoleCredentials,
) -> Result<RoleCredentials, SourceError> {
    let role_arn = pc.role_arn.as_deref().unwrap_or(&pc.role);
    let client = sts_client_as(reg, pc, parent, "rolecall-chain")?;
    let call = client
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name(profile))
        .duration_seconds(requested_duration(pc) as i32)
        .set_external_id(pc.external_id.clone())
        .set_source_identity(pc.source_identity.clone())
        .set_tags(session_tags(profile, pc)?);
    let out = call
        .send()
        .await
        .map_err(|e| failure(profile, role_arn, &e))?;
    let arn = out
        .assumed_role_user()
        .map(|u| u.arn().to_string())
        .unwrap_or_default();
    tracing::debug!(profile, role = role_arn, assumed = %arn, "assumed a chained role");
    assumed_credentials(&out, profile, role_arn)
}

/// An STS client signing with `signer`, through the STS endpoint the profile's root source uses
/// (its `endpoint_url`, else the environment's override, else AWS's regional endpoint).
pub(super) fn sts_client_as(
    reg: &Registry,
    pc: &ProfileConfig,
    signer: &RoleCredentials,
    label: &'static str,
) -> Result<aws_sdk_sts::Client, SourceError> {
    let source_cfg = reg.config.sources.get(&pc.source);
    let region = pc
        .region
        .clone()
        .or_else(|| super::whoami::source_region(source_cfg))
        .unwrap_or_else(|| "us-east-1".to_string());
    let endpoint = endpoints::resolve(
        Service::Sts,
        super::whoami::source_endpoint(source_cfg),
        &reg.env,
    )
    .map_err(SourceError::Config)?;
    let signing = aws_credential_types::Credentials::new(
        signer.access_key_id.clone(),
        signer.secret_access_key.to_string(),
        Some(signer.session_token.to_string()),
        None,
        label,
    );
    Ok(endpoints::sts_client(
        &region,
        endpoint.as_deref(),
        Some(aws_credential_types::provider::SharedCredentialsProvider::new(signing)),
    ))
}

/// The profile's `session_tags` as STS tags; `None` when it has none (the request then carries
/// no `Tags` parameter at all, as before).
pub(super) fn session_tags(
    profile: &str,
    pc: &ProfileConfig,
) -> Result<Option<Vec<aws_sdk_sts::types::Tag>>, SourceError> {
    if pc.session_tags.is_empty() {
        return Ok(None);
    }
    pc.session_tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_sts::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| {
                    SourceError::Config(format!("profile '{profile}': session tag {k:?}: {e}"))
                })
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// The credentials an AssumeRole of `role_arn` answered.
pub(super) fn assumed_credentials(
    out: &aws_sdk_sts::operation::assume_role::AssumeRoleOutput,
    profile: &str,
    role_arn: &str,
) -> Result<RoleCredentials, SourceError> {
    let c = out.credentials().ok_or_else(|| SourceError::Upstream {
        message: format!(
            "profile '{profile}': AssumeRole of {role_arn} answered without credentials"
        ),
        retryable: true,
    })?;
    Ok(RoleCredentials {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: Zeroizing::new(c.secret_access_key().to_string()),
        session_token: Zeroizing::new(c.session_token().to_string()),
        expiration: c.expiration().secs(),
        account_id: role_arn.split(':').nth(4).unwrap_or_default().to_string(),
        role_arn: role_arn.to_string(),
    })
}

/// What an AssumeRole failure means for the user; the message names the profile and the role
/// and never holds a credential.
pub(super) fn failure<R>(
    profile: &str,
    role_arn: &str,
    e: &SdkError<AssumeRoleError, R>,
) -> SourceError {
    let what = format!("profile '{profile}': AssumeRole of {role_arn} failed");
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let code = err.code().unwrap_or("error").to_string();
            let message = err
                .message()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            let text = format!("{what}: {code}: {message}");
            match code.as_str() {
                "AccessDenied" | "AccessDeniedException" => SourceError::AccessDenied(text),
                "ValidationError"
                | "MalformedPolicyDocument"
                | "PackedPolicyTooLarge"
                | "RegionDisabledException" => SourceError::Config(text),
                _ => SourceError::Upstream {
                    retryable: matches!(
                        code.as_str(),
                        "Throttling"
                            | "ThrottlingException"
                            | "InternalFailure"
                            | "ServiceUnavailable"
                    ),
                    message: text,
                },
            }
        }
        _ => {
            let t = transport(e);
            SourceError::Upstream {
                message: format!("{what}: {}", t.message),
                retryable: t.retryable,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn chained_sessions_request_at_most_one_hour() {
        let mut pc = ProfileConfig::default();
        assert_eq!(requested_duration(&pc), 3600);
        pc.duration = Some(Duration::from_secs(4 * 3600));
        assert_eq!(requested_duration(&pc), 3600);
        pc.duration = Some(Duration::from_secs(900));
        assert_eq!(requested_duration(&pc), 900);
    }

    #[test]
    fn keys_name_the_whole_chain_and_every_parameter() {
        let text = r#"
[sources.corp]
kind = "identity-center"
start_url = "https://d-1234567890.awsapps.com/start"
region = "eu-west-1"

[profiles.a]
source = "corp"
account = "111111111111"
role = "Admin"

[profiles.b]
source = "corp"
account = "111111111111"
role = "ReadOnly"

[profiles.via-a]
via = "a"
role_arn = "arn:aws:iam::222222222222:role/Deployer"

[profiles.via-b]
via = "b"
role_arn = "arn:aws:iam::222222222222:role/Deployer"

[profiles.via-a-ext]
via = "a"
role_arn = "arn:aws:iam::222222222222:role/Deployer"
external_id = "xyz-1"

[profiles.via-a-again]
via = "a"
role_arn = "arn:aws:iam::222222222222:role/Deployer"
"#;
        let config = crate::config::parse(text, std::path::Path::new("x")).unwrap();
        let reg = Registry {
            config,
            ..Registry::default()
        };
        let key = |n: &str| super::super::CacheKey::of(&reg, &reg.config.profiles[n]);
        assert_ne!(
            key("via-a"),
            key("via-b"),
            "another parent, other credentials"
        );
        assert_ne!(key("via-a"), key("via-a-ext"), "another external id");
        assert_eq!(key("via-a"), key("via-a-again"), "the same chain shares");
        assert_ne!(key("via-a"), key("a"));
        assert_eq!(key("via-a").source, "corp");
        assert_eq!(key("via-a").account, "222222222222");
    }

    #[test]
    fn session_names_fit_the_model() {
        assert_eq!(session_name("deploy"), "rolecall-deploy");
        assert_eq!(session_name(&"x".repeat(80)).len(), 64);
    }
}
