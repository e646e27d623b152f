//! `GET /v1/whoami/{profile}`: STS GetCallerIdentity with the profile's own credentials, through
//! the real AWS SDK, so that `rolecall demo` and users can prove which role they hold.

use super::{Broker, CredentialRequest};
use crate::config::SourceConfig;
use crate::endpoints::{self, EnvSnapshot, Service};
use rolecall_proto::api::{CallerIdentity, ErrorBody, ErrorCode};
use std::sync::Arc;

/// The source's own `endpoint_url` setting (it covers every AWS call of the source).
pub(crate) fn source_endpoint(source: Option<&SourceConfig>) -> Option<&str> {
    source.and_then(|s| match s {
        SourceConfig::IdentityCenter(c) => c.endpoint_url.as_deref(),
        SourceConfig::EntraSaml(c) => c.endpoint_url.as_deref(),
        SourceConfig::EntraOidc(c) => c.endpoint_url.as_deref(),
        SourceConfig::AwsLogin(_) => None,
    })
}

pub(crate) fn source_region(source: Option<&SourceConfig>) -> Option<String> {
    source.and_then(|s| match s {
        SourceConfig::IdentityCenter(c) => Some(c.region.clone()),
        SourceConfig::EntraSaml(c) => c.region.clone(),
        SourceConfig::EntraOidc(c) => c.region.clone(),
        SourceConfig::AwsLogin(c) => c.region.clone(),
    })
}

pub async fn whoami(
    broker: &Arc<Broker>,
    env: &EnvSnapshot,
    profile: &str,
) -> Result<CallerIdentity, ErrorBody> {
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
    let endpoint = endpoints::resolve(Service::Sts, source_endpoint(source_cfg), env)
        .map_err(|e| ErrorBody::new(ErrorCode::ConfigInvalid, e))?;
    let sdk_creds = aws_credential_types::Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.to_string(),
        Some(creds.session_token.to_string()),
        None,
        "rolecall",
    );
    let client = endpoints::sts_client(
        &region,
        endpoint.as_deref(),
        Some(aws_credential_types::provider::SharedCredentialsProvider::new(sdk_creds)),
    );
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
