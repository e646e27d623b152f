//! Container tokens of scoped sessions (`rolecall exec --read-only` / `--policy FILE`,
//! docs/scoped-sessions.md): minted with the scope they were asked with, kept with the token
//! (in the vault too, so a restarted daemon still serves them narrowed), and served only the
//! scoped session's credentials, on the profile route and the Pod Identity route alike.

use super::{ContainerState, MintTokenReply};
use rolecall_proto::api::{ErrorBody, ErrorCode, MintTokenRequest};
use rolecall_proto::scope::SessionScope;

impl ContainerState {
    /// `POST /v1/scoped/<profile>/token`: a token bound like `rolecall exec`'s, served only
    /// credentials narrowed by `scope`.
    pub fn mint_scoped_token(
        &self,
        profile: &str,
        bound_pid: Option<u32>,
        scope: SessionScope,
    ) -> Result<MintTokenReply, ErrorBody> {
        scope
            .check()
            .map_err(|e| ErrorBody::new(ErrorCode::BadRequest, e))?;
        let hash = scope.policy_hash();
        let reply = self.mint_token_scoped(
            &MintTokenRequest {
                profile: profile.to_string(),
                bound_pid,
            },
            Some(scope),
        )?;
        tracing::info!(id = %reply.id, profile, policy = %hash, "container token of a scoped session minted");
        Ok(reply)
    }
}
