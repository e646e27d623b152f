//! The identity-center session: the access + refresh token in the secret store, renewed one
//! caller at a time, shared with (and taken from) the AWS CLI's SSO cache.

use super::records::{refused_key, registration_key, token_key, Flow, Registration, Token};
use super::{
    aws_cli_cache, errors, IdentityCenter, GRANT_REFRESH, REFUSED_KEEP, TOKEN_RENEW_AHEAD,
};
use crate::sources::common::renew_once::JUST_RENEWED_MIN_LEFT;
use crate::sources::SourceError;
use zeroize::Zeroizing;

impl IdentityCenter {
    /// The stored session, if it belongs to the configured start URL and region.
    pub(super) fn vault_token(&self) -> Option<Token> {
        let t: Token = self.vault.get(&token_key(&self.name))?;
        (t.start_url == self.cfg.start_url && t.region == self.cfg.region).then_some(t)
    }

    /// The stored session, or else one taken from the AWS CLI's SSO cache.
    pub(super) fn stored_token(&self) -> Option<Token> {
        self.vault_token()
            .or_else(|| self.import_from_cache(i64::MIN))
    }

    /// Ends the stored session; its access token is never taken from the AWS CLI cache again.
    pub(super) fn drop_token(&self) {
        if let Some(t) = self.vault.get::<Token>(&token_key(&self.name)) {
            self.refuse(&t.access_token);
        }
        if let Err(e) = self.vault.remove(&token_key(&self.name)) {
            tracing::warn!(source = %self.name, error = %e, "could not remove the session from the secret store");
        }
    }

    pub(super) fn refuse(&self, access_token: &str) {
        let key = refused_key(&self.name);
        let mut list: Vec<String> = self.vault.get(&key).unwrap_or_default();
        let fp = aws_cli_cache::fingerprint(access_token);
        if !list.contains(&fp) {
            list.push(fp);
            let excess = list.len().saturating_sub(REFUSED_KEEP);
            list.drain(..excess);
            if let Err(e) = self.vault.put(&key, &list) {
                tracing::warn!(source = %self.name, error = %e, "could not record an ended session");
            }
        }
    }

    /// Takes the best usable token of this start URL and region from the AWS CLI's SSO cache,
    /// if one lasts longer than `better_than`, into the secret store (with the registration
    /// cached alongside it, which its renewal needs).
    pub(super) fn import_from_cache(&self, better_than: i64) -> Option<Token> {
        let dir = self.aws_cache_dir.as_deref()?;
        let refused: Vec<String> = self.vault.get(&refused_key(&self.name)).unwrap_or_default();
        let now = self.clock.now();
        let found = aws_cli_cache::find(
            dir,
            &aws_cli_cache::Wanted {
                start_url: &self.cfg.start_url,
                region: &self.cfg.region,
                preferred: &self.aws_cache_file,
                refused: &refused,
                now,
                better_than,
            },
        )?;
        let c = &found.token;
        let reg = match (&c.client_id, &c.client_secret, c.registration_expires_at) {
            (Some(id), Some(secret), Some(exp)) if c.refreshable(now) => Some(Registration {
                client_id: id.clone(),
                client_secret: secret.to_string(),
                issued_at: 0,
                expires_at: exp,
                start_url: self.cfg.start_url.clone(),
                region: self.cfg.region.clone(),
            }),
            _ => None,
        };
        let token = Token {
            access_token: c.access_token.to_string(),
            expires_at: c.expires_at,
            refresh_token: reg
                .as_ref()
                .and(c.refresh_token.as_ref())
                .map(|r| r.to_string()),
            flow: Flow::AwsCli,
            client_id: c.client_id.clone().unwrap_or_default(),
            start_url: self.cfg.start_url.clone(),
            region: self.cfg.region.clone(),
        };
        if let Some(reg) = &reg {
            if let Err(e) = self
                .vault
                .put(&registration_key(&self.name, Flow::AwsCli), reg)
            {
                tracing::warn!(source = %self.name, error = %e, "could not store the AWS CLI's registration");
                return None;
            }
        }
        if let Err(e) = self.vault.put(&token_key(&self.name), &token) {
            tracing::warn!(source = %self.name, error = %e, "could not store the AWS CLI's session");
            return None;
        }
        tracing::info!(source = %self.name, file = %found.path.display(), renewable = token.refresh_token.is_some(), "took the session from the AWS CLI's SSO cache");
        if found.path.file_name().and_then(|n| n.to_str()) != Some(self.aws_cache_file.as_str()) {
            if let Some(reg) = &reg {
                self.share(&token, reg);
            }
        }
        Some(token)
    }

    /// With `share_aws_cli_cache`, writes the session to the AWS CLI's cache as the shared
    /// sso-session's token, so `aws` and the SDKs use (and renew) the same one.
    pub(super) fn share(&self, t: &Token, reg: &Registration) {
        if !self.cfg.share_aws_cli_cache {
            return;
        }
        let Some(dir) = self.aws_cache_dir.as_deref() else {
            tracing::warn!(source = %self.name, "HOME is not set: cannot share the session with the AWS CLI");
            return;
        };
        let c = aws_cli_cache::CachedToken {
            start_url: self.cfg.start_url.clone(),
            region: self.cfg.region.clone(),
            access_token: Zeroizing::new(t.access_token.clone()),
            expires_at: t.expires_at,
            refresh_token: t.refresh_token.clone().map(Zeroizing::new),
            client_id: Some(reg.client_id.clone()),
            client_secret: Some(Zeroizing::new(reg.client_secret.clone())),
            registration_expires_at: Some(reg.expires_at),
        };
        match aws_cli_cache::write(dir, &self.aws_cache_file, &c) {
            Ok(()) => {
                tracing::debug!(source = %self.name, file = %dir.join(&self.aws_cache_file).display(), "session written to the AWS CLI's SSO cache")
            }
            Err(e) => {
                tracing::warn!(source = %self.name, dir = %dir.display(), error = %e, "could not write the session to the AWS CLI's SSO cache")
            }
        }
    }

    /// A usable access token: the stored one, renewed with the refresh token when it has less
    /// than 5 minutes left (or always, with `force`, after the portal refused it), one renewal
    /// for a crowd of callers.
    pub(super) async fn access_token(&self, force: bool) -> Result<Token, SourceError> {
        let load = || {
            self.stored_token()
                .ok_or_else(|| self.needs_login("no session"))
        };
        self.renewal
            .token(force, load, |t| self.renew_token(t, force))
            .await
    }

    pub(super) fn needs_login(&self, why: &str) -> SourceError {
        SourceError::NeedsLogin(format!("not signed in to source '{}' ({why})", self.name))
    }

    /// Renews the stored token `t2` (the renewal lock held).
    pub(super) async fn renew_token(&self, t2: Token, force: bool) -> Result<Token, SourceError> {
        let needs_login = |why: &str| self.needs_login(why);
        // The AWS CLI (or a tool sharing its cache) may have renewed the same session: its
        // newer token is taken rather than renewing (and, with rotation, its refresh token is
        // the one still valid).
        // A forced renewal (the portal refused the token) takes any newer token that is still
        // valid; otherwise one that needs no renewal itself.
        let wanted_left = if force {
            JUST_RENEWED_MIN_LEFT
        } else {
            TOKEN_RENEW_AHEAD
        };
        let t = match self.import_from_cache(t2.expires_at) {
            Some(n) if n.expires_at - wanted_left > self.clock.now() => return Ok(n),
            Some(n) => n,
            None => t2,
        };
        let Some(refresh) = t.refresh_token.clone() else {
            return if !force && t.expires_at > self.clock.now() {
                Ok(t)
            } else {
                Err(needs_login("the session has ended and cannot be renewed"))
            };
        };
        let reg: Option<Registration> = self.vault.get(&registration_key(&self.name, t.flow));
        let Some(reg) =
            reg.filter(|r| r.client_id == t.client_id && r.expires_at > self.clock.now())
        else {
            self.drop_token();
            return Err(needs_login("the client registration expired"));
        };
        let res = self
            .oidc
            .create_token()
            .client_id(&reg.client_id)
            .client_secret(&reg.client_secret)
            .grant_type(GRANT_REFRESH)
            .refresh_token(&refresh)
            .send()
            .await;
        match res {
            Ok(out) => {
                tracing::debug!(source = %self.name, "access token renewed");
                self.save_token(&out, t.flow, &reg, Some(refresh))
            }
            Err(e) => {
                let f = errors::read(&e);
                let revoked = f.is("InvalidGrantException")
                    || f.is("ExpiredTokenException")
                    || f.is("InvalidClientException")
                    || f.is("UnauthorizedClientException")
                    || f.is("AccessDeniedException");
                if revoked {
                    tracing::info!(source = %self.name, reason = %f.message, "refresh token refused; the session is over");
                    self.drop_token();
                    Err(SourceError::NeedsLogin(format!(
                        "not signed in to source '{}' (refresh token revoked or expired)",
                        self.name
                    )))
                } else if !force && t.expires_at > self.clock.now() {
                    // Still valid for a few minutes: serve with it and renew next time.
                    tracing::warn!(source = %self.name, error = %f.message, "access token renewal failed; using the current one");
                    Ok(t)
                } else {
                    Err(self.upstream("CreateToken (refresh)", &f))
                }
            }
        }
    }
}
