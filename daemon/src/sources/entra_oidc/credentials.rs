//! Role credentials: STS `AssumeRoleWithWebIdentity` with the session's token, a role session
//! name from the user's UPN, and the profile's duration (1 hour when the role allows less).

use super::records::Session;
use super::{
    claims, role_account, session_name, sts, token_kind_name, EntraOidc, DEFAULT_REGION,
    FALLBACK_DURATION,
};
use crate::config::ProfileConfig;
use crate::endpoints;
use crate::sources::{RoleCredentials, SourceError};

impl EntraOidc {
    /// Role credentials from STS `AssumeRoleWithWebIdentity` with the session's token,
    /// renewing it once when STS calls it expired.
    pub(super) async fn role_credentials(
        &self,
        profile: &ProfileConfig,
    ) -> Result<RoleCredentials, SourceError> {
        let role = profile.role.trim();
        let Some(account) = role_account(role) else {
            return Err(SourceError::Config(format!(
                "a profile of entra-oidc source '{}' needs `role` = a role ARN (like \"arn:aws:iam::111111111111:role/Name\"), not {role:?}",
                self.name
            )));
        };
        if let Some(a) = profile.account.as_deref().filter(|a| !a.is_empty()) {
            if a != account {
                return Err(SourceError::Config(format!(
                    "profile of source '{}': account {a} does not match the role ARN's account {account}",
                    self.name
                )));
            }
        }
        let region = self
            .cfg
            .region
            .as_deref()
            .or(profile.region.as_deref())
            .filter(|r| !r.is_empty())
            .unwrap_or(DEFAULT_REGION)
            .to_string();
        let client = self.sts_client(&region);
        let mut duration = profile
            .duration
            .map(|d| i32::try_from(d.as_secs().clamp(900, 43_200)).unwrap_or(FALLBACK_DURATION));
        let mut session = self.web_token(false).await?;
        let mut renewed = false;
        let mut shortened = false;
        let out = loop {
            let name = self.role_session_name(&session);
            match sts::assume(&client, role, &name, &session.web_identity_token, duration).await {
                Ok(out) => break out,
                Err(f) if f.exceeds_max_session() && !shortened && duration != Some(FALLBACK_DURATION) => {
                    tracing::info!(source = %self.name, role, "the role allows less than the requested duration; asking for 1 hour");
                    shortened = true;
                    duration = Some(FALLBACK_DURATION);
                }
                Err(f) if f.is("ExpiredTokenException") && !renewed => {
                    // STS's clock says the token is over before ours does: renew once.
                    renewed = true;
                    session = self.web_token(true).await?;
                }
                Err(f) if f.is("ExpiredTokenException") => {
                    return Err(SourceError::Upstream {
                        message: format!(
                            "{}: STS says the freshly renewed token is expired ({}); check this machine's clock",
                            self.name, f.message
                        ),
                        retryable: true,
                    })
                }
                Err(f) if f.is("InvalidIdentityToken") => {
                    let c = claims::decode(&session.web_identity_token).ok();
                    let iss = c.as_ref().and_then(|c| c.iss.clone()).unwrap_or_default();
                    let aud = c.map(|c| c.aud.join(",")).unwrap_or_default();
                    return Err(SourceError::Config(format!(
                        "source '{}': STS refused the {} ({}): account {account} needs an IAM OIDC provider with issuer {iss} and audience {aud} that {role} trusts",
                        self.name,
                        token_kind_name(self.cfg.token).replace('_', " "),
                        f.message
                    )));
                }
                Err(f) if f.is("AccessDenied") => {
                    return Err(SourceError::AccessDenied(format!(
                        "{role} does not let source '{}' assume it with web identity ({})",
                        self.name, f.message
                    )))
                }
                Err(f) => {
                    return Err(SourceError::Upstream {
                        message: format!(
                            "{} (entra-oidc): AssumeRoleWithWebIdentity failed: {}{}",
                            self.name,
                            f.code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default(),
                            f.message
                        ),
                        retryable: f.retryable,
                    })
                }
            }
        };
        Ok(RoleCredentials {
            access_key_id: out.access_key_id,
            secret_access_key: out.secret_access_key,
            session_token: out.session_token,
            expiration: out.expiration,
            account_id: account.to_string(),
            role_arn: role.to_string(),
        })
    }

    pub(super) fn sts_client(&self, region: &str) -> aws_sdk_sts::Client {
        let mut m = self.sts.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(region.to_string())
            .or_insert_with(|| endpoints::sts_client(region, self.sts_endpoint.as_deref(), None))
            .clone()
    }

    pub(super) fn role_session_name(&self, s: &Session) -> String {
        let upn = s
            .user
            .clone()
            .unwrap_or_else(|| format!("rolecall-{}", self.hostname));
        session_name(
            self.cfg.role_session_name.as_deref().unwrap_or("{upn}"),
            &upn,
        )
    }
}
