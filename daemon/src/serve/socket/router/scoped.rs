//! The socket routes of scoped sessions (docs/scoped-sessions.md), used by `rolecall exec
//! --read-only` / `--policy FILE`:
//!
//! - `POST /v1/scoped/{profile}/credentials?interactive=B&wait=S&via=V` with a
//!   [`SessionScope`]: the scoped session's credentials (signing in first for an interactive
//!   caller), as `GET /v1/credentials/{profile}` answers them;
//! - `POST /v1/scoped/{profile}/token` with a [`ScopedTokenRequest`]: a container token served
//!   only that scoped session's credentials.

use super::{bad_request, error, ok, read_json_required, CredentialRequest, Query, Reply};
use crate::app::App;
use hyper::body::Incoming;
use hyper::Request;
use rolecall_proto::api::{ErrorBody, ErrorCode};
use rolecall_proto::output::ProcessCredentials;
use rolecall_proto::scope::{ScopedTokenRequest, SessionScope};
use rolecall_proto::timefmt;
use std::sync::Arc;

pub(super) async fn route(
    app: &Arc<App>,
    profile: &str,
    what: &str,
    query: &Query,
    peer: Option<crate::serve::socket::SocketPeer>,
    req: Request<Incoming>,
) -> Reply {
    match what {
        "credentials" => match read_json_required::<SessionScope>(req).await {
            Ok(scope) => credentials(app, profile, &scope, query, peer).await,
            Err(reply) => reply,
        },
        "token" => {
            let Some(c) = app.container() else {
                return super::container_unavailable();
            };
            match read_json_required::<ScopedTokenRequest>(req).await {
                Ok(r) => match c.mint_scoped_token(profile, r.bound_pid, r.scope) {
                    Ok(reply) => ok(&reply),
                    Err(e) => error(e),
                },
                Err(reply) => reply,
            }
        }
        _ => error(ErrorBody::new(
            ErrorCode::NotFound,
            format!("no such endpoint: /v1/scoped/{profile}/{what}"),
        )),
    }
}

async fn credentials(
    app: &Arc<App>,
    profile: &str,
    scope: &SessionScope,
    query: &Query,
    peer: Option<crate::serve::socket::SocketPeer>,
) -> Reply {
    let req = match (query.flag("interactive"), query.wait()) {
        (Ok(interactive), Ok(wait)) => CredentialRequest { interactive, wait },
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    let mut stop = app.shutdown_signal();
    let fetch = app.broker().scoped_credentials(profile, scope, req);
    let result = tokio::select! {
        r = fetch => r,
        _ = crate::app::stopped(&mut stop) => Err(ErrorBody::new(ErrorCode::Internal, "the daemon is stopping")),
    };
    match result {
        Ok(c) => {
            // The audit line names the scope's policy hash (see `audit::handout`).
            app.audit_socket(profile, query.get("via"), peer, &c);
            ok(&ProcessCredentials {
                version: 1,
                access_key_id: c.access_key_id.clone(),
                secret_access_key: c.secret_access_key.to_string(),
                session_token: c.session_token.to_string(),
                expiration: timefmt::rfc3339(c.expiration),
                account_id: c.account_id.clone(),
            })
        }
        Err(e) => error(e),
    }
}
