//! The socket routes of scoped sessions (docs/scoped-sessions.md), used by `rolecall exec
//! --read-only` / `--policy FILE`:
//!
//! - `POST /v1/scoped/{profile}/credentials?interactive=B&wait=S&via=V` with a
//!   [`SessionScope`]: the scoped session's credentials (signing in first for an interactive
//!   caller), as `GET /v1/credentials/{profile}` answers them;
//! - `POST /v1/scoped/{profile}/token` with a [`ScopedTokenRequest`]: a container token served
//!   only that scoped session's credentials.

use super::{container_unavailable, read_json_required, reply, Reply};
use crate::broker::CredentialRequest;
use crate::serve::socket::{Control, SocketPeer};
use hyper::body::Incoming;
use hyper::Request;
use rolecall_proto::scope::{ScopedTokenRequest, SessionScope};
use std::sync::Arc;

pub(super) async fn token(app: &Arc<dyn Control>, profile: &str, req: Request<Incoming>) -> Reply {
    let Some(c) = app.container() else {
        return container_unavailable();
    };
    match read_json_required::<ScopedTokenRequest>(req).await {
        Ok(r) => reply(c.mint_scoped_token(profile, r.bound_pid, r.scope)),
        Err(reply) => reply,
    }
}

pub(super) async fn credentials(
    app: &Arc<dyn Control>,
    profile: &str,
    ask: CredentialRequest,
    via: Option<&str>,
    peer: Option<SocketPeer>,
    req: Request<Incoming>,
) -> Reply {
    match read_json_required::<SessionScope>(req).await {
        Ok(scope) => super::credentials(app, profile, ask, via, peer, Some(&scope)).await,
        Err(reply) => reply,
    }
}
