//! The SSO portal: role credentials for a profile, and the accounts and roles a session may
//! use.

use super::errors::{self, Failure};
use super::records::Token;
use super::{IdentityCenter, LIST_CONCURRENCY};
use crate::config::ProfileConfig;
use crate::sources::{RoleCredentials, SourceError};
use futures::stream::{self, StreamExt, TryStreamExt};
use rolecall_proto::api::AvailableRole;
use zeroize::Zeroizing;

impl IdentityCenter {
    /// Role credentials from the portal (`GetRoleCredentials`), renewing the token once when
    /// the portal refuses it before its expiry.
    pub(super) async fn role_credentials(
        &self,
        profile: &ProfileConfig,
    ) -> Result<RoleCredentials, SourceError> {
        let Some(account) = profile.account.as_deref().filter(|a| !a.is_empty()) else {
            return Err(SourceError::Config(format!(
                "a profile of identity-center source '{}' needs `account`",
                self.name
            )));
        };
        let role = profile.role.as_str();
        let mut token = self.access_token(false).await?;
        let mut renewed = false;
        let out = loop {
            match self.get_role_credentials(&token, account, role).await {
                Ok(out) => break out,
                Err(f) if f.is("UnauthorizedException") && !renewed => {
                    // The portal ended the session before the token's own expiry (sign-out
                    // elsewhere, admin action): one renewal, then give up.
                    renewed = true;
                    token = self.access_token(true).await?;
                }
                Err(f) if f.is("UnauthorizedException") => {
                    self.drop_token();
                    return Err(SourceError::NeedsLogin(format!(
                        "not signed in to source '{}' (Identity Center ended the session)",
                        self.name
                    )));
                }
                Err(f) if f.is("ForbiddenException") || f.status == Some(403) => {
                    return Err(SourceError::AccessDenied(format!(
                        "no assignment of {role} in {account} for source '{}'",
                        self.name
                    )))
                }
                Err(f) if f.is("ResourceNotFoundException") => {
                    return Err(SourceError::AccessDenied(format!(
                        "no permission set {role} in account {account} (source '{}')",
                        self.name
                    )))
                }
                Err(f) => return Err(self.upstream("GetRoleCredentials", &f)),
            }
        };
        let Some(rc) = out.role_credentials() else {
            return Err(SourceError::Upstream {
                message: format!(
                    "{}: GetRoleCredentials answered without credentials",
                    self.name
                ),
                retryable: true,
            });
        };
        let (Some(akid), Some(secret), Some(session)) = (
            rc.access_key_id(),
            rc.secret_access_key(),
            rc.session_token(),
        ) else {
            return Err(SourceError::Upstream {
                message: format!(
                    "{}: GetRoleCredentials answered incomplete credentials",
                    self.name
                ),
                retryable: true,
            });
        };
        Ok(RoleCredentials {
            access_key_id: akid.to_string(),
            secret_access_key: Zeroizing::new(secret.to_string()),
            session_token: Zeroizing::new(session.to_string()),
            // The portal answers in epoch milliseconds.
            expiration: rc.expiration().div_euclid(1000),
            account_id: account.to_string(),
            // The real role is `AWSReservedSSO_<permission set>_<random suffix>` under
            // `aws-reserved/sso.amazonaws.com/`; the portal does not say the suffix, and a guessed
            // ARN would be wrong. Left empty: whoever needs it (the container endpoint's RoleArn)
            // asks STS GetCallerIdentity with these credentials.
            role_arn: String::new(),
        })
    }

    /// Every account × permission set the session may use (`ListAccounts` × `ListAccountRoles`).
    pub(super) async fn all_roles(&self) -> Result<Vec<AvailableRole>, SourceError> {
        let token = self.access_token(false).await?;
        let mut accounts = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .sso
                .list_accounts()
                .access_token(&token.access_token)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| self.portal_error("ListAccounts", &errors::read(&e)))?;
            for a in out.account_list() {
                if let Some(id) = a.account_id() {
                    accounts.push((id.to_string(), a.account_name().map(str::to_string)));
                }
            }
            match out.next_token() {
                Some(n) if !n.is_empty() => next = Some(n.to_string()),
                _ => break,
            }
        }
        let token = &token;
        let mut roles: Vec<AvailableRole> = stream::iter(accounts)
            .map(|(id, name)| self.list_account_roles(token, id, name))
            .buffer_unordered(LIST_CONCURRENCY)
            .try_concat()
            .await?;
        roles.sort_by(|a, b| (&a.account_id, &a.role).cmp(&(&b.account_id, &b.role)));
        Ok(roles)
    }

    pub(super) async fn get_role_credentials(
        &self,
        token: &Token,
        account: &str,
        role: &str,
    ) -> Result<aws_sdk_sso::operation::get_role_credentials::GetRoleCredentialsOutput, Failure>
    {
        self.sso
            .get_role_credentials()
            .access_token(&token.access_token)
            .account_id(account)
            .role_name(role)
            .send()
            .await
            .map_err(|e| errors::read(&e))
    }

    pub(super) async fn list_account_roles(
        &self,
        token: &Token,
        account_id: String,
        account_name: Option<String>,
    ) -> Result<Vec<AvailableRole>, SourceError> {
        let mut roles = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .sso
                .list_account_roles()
                .access_token(&token.access_token)
                .account_id(&account_id)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| self.portal_error("ListAccountRoles", &errors::read(&e)))?;
            for r in out.role_list() {
                if let Some(name) = r.role_name() {
                    roles.push(AvailableRole {
                        account_id: account_id.clone(),
                        account_name: account_name.clone(),
                        role: name.to_string(),
                        principal: None,
                    });
                }
            }
            match out.next_token() {
                Some(n) if !n.is_empty() => next = Some(n.to_string()),
                _ => break,
            }
        }
        Ok(roles)
    }

    pub(super) fn portal_error(&self, what: &str, f: &Failure) -> SourceError {
        if f.is("UnauthorizedException") {
            SourceError::NeedsLogin(format!(
                "not signed in to source '{}' (the portal refused the session)",
                self.name
            ))
        } else {
            self.upstream(what, f)
        }
    }
}
