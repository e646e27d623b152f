//! The entra-oidc session: the web identity token and its refresh token in the secret store,
//! renewed one caller at a time until Entra refuses the refresh token.

use super::claims::{self, is_graph_audience};
use super::entra::TokenResponse;
use super::records::{token_key, Session};
use super::{token_kind_name, EntraOidc};
use crate::config::OidcTokenKind;
use crate::sources::SourceError;

impl EntraOidc {
    pub(super) fn stored(&self) -> Option<Session> {
        let s: Session = self.vault.get(&token_key(&self.name))?;
        (s.binding == self.binding).then_some(s)
    }

    pub(super) fn drop_session(&self) {
        if let Err(e) = self.vault.remove(&token_key(&self.name)) {
            tracing::warn!(source = %self.name, error = %e, "could not remove the session from the secret store");
        }
    }

    /// Turns a token answer into the stored session (checked, saved). `previous` supplies the
    /// refresh token and user when the answer leaves them out.
    pub(super) fn save(
        &self,
        resp: TokenResponse,
        flow: &str,
        previous: Option<&Session>,
    ) -> Result<Session, SourceError> {
        let kind = self.cfg.token;
        let token = match kind {
            OidcTokenKind::IdToken => resp.id_token.clone(),
            OidcTokenKind::AccessToken => resp.access_token.clone(),
        };
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(SourceError::Upstream {
                message: format!(
                    "{}: Entra answered without {} (scope {:?})",
                    self.name,
                    match kind {
                        OidcTokenKind::IdToken => "an ID token",
                        OidcTokenKind::AccessToken => "an access token",
                    },
                    self.scope
                ),
                retryable: false,
            });
        };
        let c = claims::decode(&token).map_err(|e| SourceError::Upstream {
            message: format!("{}: Entra's {}: {e}", self.name, token_kind_name(kind)),
            retryable: false,
        })?;
        if let Some(a) = c.aud.iter().find(|a| is_graph_audience(a)) {
            return Err(SourceError::Config(format!(
                "source '{}': Entra issued a Microsoft Graph token (aud {a}), which AWS cannot use: set scope = \"api://<App ID URI>/.default\" of an API exposed by the app registration, or use token = \"id_token\"",
                self.name
            )));
        }
        // The ID token names the user even when the access token is the one used.
        let user = c
            .user
            .clone()
            .or_else(|| {
                resp.id_token
                    .as_deref()
                    .and_then(|t| claims::decode(t).ok())
                    .and_then(|c| c.user)
            })
            .or_else(|| previous.and_then(|p| p.user.clone()));
        let expires_at = c
            .exp
            .or_else(|| resp.expires_in_secs().map(|s| self.clock.now() + s))
            .unwrap_or_else(|| self.clock.now() + 3600);
        let s = Session {
            web_identity_token: token,
            expires_at,
            // Entra rotates refresh tokens; without a new one the old one stays valid.
            refresh_token: resp
                .refresh_token
                .clone()
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            user,
            flow: flow.to_string(),
            binding: self.binding.clone(),
        };
        self.vault
            .put(&token_key(&self.name), &s)
            .map_err(|e| self.vault_err(e))?;
        Ok(s)
    }

    /// A usable web identity token: the stored one, renewed with the refresh token when it has
    /// less than 5 minutes left (or always, with `force`, after STS called it expired), one
    /// renewal for a crowd of callers.
    pub(super) async fn web_token(&self, force: bool) -> Result<Session, SourceError> {
        let load = || self.stored().ok_or_else(|| self.needs_login("no session"));
        self.renewal
            .token(force, load, |t| self.renew(t, force))
            .await
    }

    pub(super) fn needs_login(&self, why: &str) -> SourceError {
        SourceError::NeedsLogin(format!("not signed in to source '{}' ({why})", self.name))
    }

    /// Renews the stored session `t` with its refresh token (the renewal lock held).
    pub(super) async fn renew(&self, t: Session, force: bool) -> Result<Session, SourceError> {
        let needs_login = |why: &str| self.needs_login(why);
        let Some(refresh) = t.refresh_token.clone() else {
            return if !force && t.expires_at > self.clock.now() {
                Ok(t)
            } else {
                self.drop_session();
                Err(needs_login(
                    "the token expired and there is no refresh token",
                ))
            };
        };
        match self
            .entra
            .refresh(self.client_id(), &refresh, &self.scope)
            .await
        {
            Ok(resp) => {
                tracing::debug!(source = %self.name, "web identity token renewed with the refresh token");
                self.save(resp, &t.flow.clone(), Some(&t))
            }
            Err(f)
                if matches!(
                    f.error(),
                    Some(
                        "invalid_grant"
                            | "interaction_required"
                            | "invalid_client"
                            | "unauthorized_client"
                    )
                ) =>
            {
                tracing::info!(source = %self.name, reason = %f, "Entra refused the refresh token; the session is over");
                self.drop_session();
                let why = match f.aadsts() {
                    Some(50_173) => "Entra revoked the session",
                    Some(700_082) => "the Entra session expired",
                    Some(7_000_218) => "the app registration no longer allows public client flows",
                    _ => "Entra refused the refresh token",
                };
                Err(needs_login(why))
            }
            Err(f) if !force && f.retryable() && t.expires_at > self.clock.now() => {
                tracing::warn!(source = %self.name, error = %f, "token renewal failed; using the current token");
                Ok(t)
            }
            Err(f) => Err(self.entra_error("renewing the token", &f, &t.flow)),
        }
    }
}
