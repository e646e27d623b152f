//! `GET /v1/whoami/{profile}`: STS GetCallerIdentity with the profile's own credentials, through
//! the real AWS SDK, so that `rolecall demo` and users can prove which role they hold.

use super::{Broker, CredentialRequest};
use crate::config::SourceConfig;
use rolecall_proto::api::{CallerIdentity, ErrorBody, ErrorCode};
use std::sync::Arc;

/// The STS endpoint for a source: its `endpoint_url`, else the SDK environment variables.
fn sts_endpoint(source: Option<&SourceConfig>) -> Option<String> {
    let configured = source.and_then(|s| match s {
        SourceConfig::IdentityCenter(c) => c.endpoint_url.clone(),
        SourceConfig::EntraSaml(c) => c.endpoint_url.clone(),
        SourceConfig::EntraOidc(c) => c.endpoint_url.clone(),
    });
    configured.or_else(|| {
        ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
    })
}

fn source_region(source: Option<&SourceConfig>) -> Option<String> {
    source.and_then(|s| match s {
        SourceConfig::IdentityCenter(c) => Some(c.region.clone()),
        SourceConfig::EntraSaml(c) => c.region.clone(),
        SourceConfig::EntraOidc(c) => c.region.clone(),
    })
}

pub async fn whoami(broker: &Arc<Broker>, profile: &str) -> Result<CallerIdentity, ErrorBody> {
    let creds = broker
        .credentials(profile, CredentialRequest::default())
        .await?;
    let reg = broker.registry();
    let pc = reg.config.profiles.get(profile).cloned().ok_or_else(|| {
        ErrorBody::new(
            ErrorCode::UnknownProfile,
            format!("unknown profile '{profile}'"),
        )
    })?;
    let source_cfg = reg.config.sources.get(&pc.source);
    let region = pc
        .region
        .clone()
        .or_else(|| source_region(source_cfg))
        .unwrap_or_else(|| "us-east-1".to_string());
    let sdk_creds = aws_credential_types::Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.to_string(),
        Some(creds.session_token.to_string()),
        None,
        "rolecall",
    );
    let mut cfg = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(region))
        .credentials_provider(sdk_creds);
    if let Some(url) = sts_endpoint(source_cfg) {
        cfg = cfg.endpoint_url(url);
    }
    let client = aws_sdk_sts::Client::from_conf(cfg.build());
    let out = client.get_caller_identity().send().await.map_err(|e| {
        let detail = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
        ErrorBody::new(
            ErrorCode::Upstream,
            format!(
                "STS GetCallerIdentity failed for profile '{profile}': {}",
                detail.lines().next().unwrap_or_default()
            ),
        )
    })?;
    Ok(CallerIdentity {
        account: out.account().unwrap_or_default().to_string(),
        arn: out.arn().unwrap_or_default().to_string(),
        user_id: out.user_id().unwrap_or_default().to_string(),
    })
}
