//! Redeeming an assertion with STS `AssumeRoleWithSAML` for a profile's role.

use super::{duration_seconds, stored, sts, EntraSaml};
use crate::config::ProfileConfig;
use crate::endpoints;
use crate::saml::response::{Checked, CheckedAssertion, RolePair};
use crate::saml::SamlResponse;
use crate::sources::{RoleCredentials, SourceError};

impl EntraSaml {
    /// Role credentials for a profile: stored ones while fresh, else the held assertion (or a
    /// silent capture) redeemed with STS `AssumeRoleWithSAML`.
    pub(super) async fn role_credentials(
        &self,
        profile: &ProfileConfig,
    ) -> Result<RoleCredentials, SourceError> {
        let lease = match self.current_assertion(profile).await? {
            Ok(l) => l,
            Err(stored) => return Ok(stored),
        };
        match self.redeem(profile, &lease.response, &lease.checked).await {
            Ok(c) => {
                self.mark_redeemed(lease.generation);
                Ok(c)
            }
            // STS refuses a second use of an assertion it accepted before: each remaining role
            // gets a fresh silent capture of its own.
            Err(sts::Refusal::Assertion(e)) if lease.redeemed => {
                tracing::info!(source = %self.name, role = %profile.role, error = %e, "STS refused a second use of the SAML assertion; capturing a fresh one for this role");
                self.drop_held(lease.generation);
                let _one = self.capturing.lock().await;
                // A fresh response another caller captured meanwhile serves if still unused.
                let fresh = match self.held_usable() {
                    Some(l) if !l.redeemed => l,
                    _ => {
                        self.silent_capture().await?;
                        self.held_usable().ok_or_else(|| {
                            SourceError::NeedsLogin(
                                "the silent sign-in's assertion expired at once (check the clock)"
                                    .into(),
                            )
                        })?
                    }
                };
                let c = self
                    .redeem(profile, &fresh.response, &fresh.checked)
                    .await
                    .map_err(sts::Refusal::into_error)?;
                self.mark_redeemed(fresh.generation);
                Ok(c)
            }
            Err(e) => Err(e.into_error()),
        }
    }

    pub(super) fn sts_client(&self) -> aws_sdk_sts::Client {
        endpoints::sts_client(&self.region, self.sts_endpoint.as_deref(), None)
    }

    pub(super) async fn redeem(
        &self,
        profile: &ProfileConfig,
        response: &SamlResponse,
        checked: &Checked,
    ) -> Result<RoleCredentials, sts::Refusal> {
        let (principal, sd, snooa) = match checked {
            Checked::Assertion(a) => (
                principal_for(profile, a).map_err(sts::Refusal::Other)?,
                a.session_duration,
                a.session_not_on_or_after,
            ),
            Checked::Encrypted => (
                profile.principal.clone().ok_or_else(|| {
                    sts::Refusal::Other(SourceError::Config(format!(
                        "source '{}' sends an encrypted assertion: profiles need `principal` (the SAML provider ARN) as well as `role`",
                        self.name
                    )))
                })?,
                None,
                None,
            ),
        };
        let duration = duration_seconds(
            profile.duration.map(|d| d.as_secs() as i64),
            sd,
            snooa,
            self.clock.now(),
        );
        let creds = sts::assume(
            &self.sts_client(),
            &profile.role,
            &principal,
            response,
            duration,
        )
        .await?;
        // Only a browser gets these again: kept for a restart.
        self.keep(
            &stored::creds_key(&self.name, &profile.role),
            &stored::StoredCreds::new(&creds, &principal),
        );
        Ok(creds)
    }
}

/// The principal for the profile's role: the configured one (when the assertion offers that
/// pair), else the one the assertion pairs with the role.
pub(super) fn principal_for(
    profile: &ProfileConfig,
    a: &CheckedAssertion,
) -> Result<String, SourceError> {
    let pairs: Vec<&RolePair> = a
        .roles
        .iter()
        .filter(|p| p.role_arn == profile.role)
        .collect();
    let chosen = match &profile.principal {
        Some(p) => pairs.iter().find(|r| &r.principal_arn == p),
        None => pairs.first(),
    };
    match chosen {
        Some(r) => Ok(r.principal_arn.clone()),
        None => Err(SourceError::AccessDenied(format!(
            "the SAML assertion does not grant {} (it grants: {})",
            profile.role,
            a.roles
                .iter()
                .map(|r| r.role_arn.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
