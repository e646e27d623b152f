//! The socket API's routes (`rolecall_proto::api`), in one match: the place to add one.
//!
//! Every reply is JSON with the `x-rolecall-version` and `x-rolecall-protocol` headers;
//! failures are an [`ErrorReply`] with the status of its [`ErrorCode`].

use super::Control;
mod scoped;
use crate::broker::{whoami, CredentialRequest};
use crate::shutdown::stopped;
use bytes::Bytes;
use http::{header, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use rolecall_proto::api::{
    ConsoleRequest, ErrorBody, ErrorCode, ErrorReply, LoginRequest, LogoutRequest,
    MintTokenRequest, OkReply, RenewTokenRequest, RevokeTokenRequest, VersionReply,
};
use rolecall_proto::request::{self as api, ParseError};
use rolecall_proto::{HEADER_PROTOCOL, HEADER_VERSION, PROTOCOL_VERSION, VERSION};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// Largest request body accepted (requests are small JSON documents; a pasted SAMLResponse is
/// the largest, well under this).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Longest target (path + query).
const MAX_TARGET_BYTES: usize = 2048;

type Reply = Response<Full<Bytes>>;

fn json_response(status: StatusCode, body: Vec<u8>) -> Reply {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(HEADER_VERSION, VERSION)
        .header(HEADER_PROTOCOL, PROTOCOL_VERSION.to_string())
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn ok<T: Serialize>(v: &T) -> Reply {
    match serde_json::to_vec(v) {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => error(ErrorBody::new(
            ErrorCode::Internal,
            format!("cannot encode the reply: {e}"),
        )),
    }
}

fn error_with_status(status: StatusCode, body: ErrorBody) -> Reply {
    let reply = ErrorReply { error: body };
    json_response(status, serde_json::to_vec(&reply).unwrap_or_default())
}

pub fn error(body: ErrorBody) -> Reply {
    let status =
        StatusCode::from_u16(body.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_with_status(status, body)
}

/// The answer to every request of a peer of another uid.
pub fn forbidden_peer() -> Reply {
    error(ErrorBody::new(
        ErrorCode::Forbidden,
        "this rolecalld serves only the user that runs it",
    ))
}

fn bad_request(msg: impl Into<String>) -> Reply {
    error(ErrorBody::new(ErrorCode::BadRequest, msg))
}

/// Reads a JSON body (empty means the type's default), bounded by [`MAX_BODY_BYTES`].
async fn read_json<T: DeserializeOwned + Default>(req: Request<Incoming>) -> Result<T, Reply> {
    Ok(read_json_opt(req).await?.unwrap_or_default())
}

/// Reads a JSON body that must be present.
async fn read_json_required<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, Reply> {
    read_json_opt(req)
        .await?
        .ok_or_else(|| bad_request("this request needs a JSON body"))
}

async fn read_json_opt<T: DeserializeOwned>(req: Request<Incoming>) -> Result<Option<T>, Reply> {
    let body = Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                error_with_status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorBody::new(
                        ErrorCode::BadRequest,
                        format!("request body larger than {MAX_BODY_BYTES} bytes"),
                    ),
                )
            } else {
                bad_request("cannot read the request body")
            }
        })?
        .to_bytes();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| bad_request(format!("malformed request body: {e}")))
}

/// Answers one request: parses it into an [`api::Request`] and does what it asks.
pub async fn route(app: &Arc<dyn Control>, req: Request<Incoming>) -> Reply {
    if req.uri().to_string().len() > MAX_TARGET_BYTES {
        return error_with_status(
            StatusCode::URI_TOO_LONG,
            ErrorBody::new(ErrorCode::BadRequest, "request target too long"),
        );
    }
    let target = req.uri().path_and_query().map_or_else(
        || req.uri().path().to_string(),
        |pq| pq.as_str().to_string(),
    );
    tracing::debug!(method = %req.method(), path = %req.uri().path(), "socket request");
    let request = match api::Request::parse(req.method().as_str(), &target) {
        Ok(r) => r,
        Err(e @ ParseError::NotFound { .. }) => {
            return error(ErrorBody::new(ErrorCode::NotFound, e.to_string()))
        }
        Err(e @ ParseError::MethodNotAllowed { .. }) => {
            return error_with_status(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorBody::new(ErrorCode::BadRequest, e.to_string()),
            )
        }
        Err(e @ ParseError::BadQuery(_)) => return bad_request(e.to_string()),
    };
    let peer = req.extensions().get::<super::SocketPeer>().copied();
    match request {
        api::Request::Version => ok(&VersionReply {
            version: VERSION.to_string(),
            protocol: PROTOCOL_VERSION,
            pid: std::process::id(),
        }),
        api::Request::Credentials {
            profile,
            interactive,
            wait,
            via,
        } => {
            credentials(
                app,
                &profile,
                ask(interactive, wait),
                via.as_deref(),
                peer,
                None,
            )
            .await
        }
        api::Request::Login { source } => match read_json::<LoginRequest>(req).await {
            Ok(body) => reply(app.broker().login(&source, body).await),
            Err(reply) => reply,
        },
        api::Request::LoginState { source, wait } => login_poll(app, &source, wait).await,
        api::Request::Logout => match read_json::<LogoutRequest>(req).await {
            Ok(r) => reply(
                app.logout(r.source.as_deref())
                    .await
                    .map(|()| OkReply { ok: true }),
            ),
            Err(reply) => reply,
        },
        api::Request::Status => ok(&app.status().await),
        api::Request::Reload => match app.reload() {
            Ok(()) => ok(&OkReply { ok: true }),
            Err(e) => error(ErrorBody::new(ErrorCode::ConfigInvalid, e.to_string())),
        },
        api::Request::Shutdown => {
            tracing::info!("shutdown requested over the socket");
            app.shutdown().request();
            ok(&OkReply { ok: true })
        }
        api::Request::MintToken => {
            let Some(c) = app.container() else {
                return container_unavailable();
            };
            match read_json_required::<MintTokenRequest>(req).await {
                Ok(r) => reply(c.mint_token(&r)),
                Err(reply) => reply,
            }
        }
        api::Request::RevokeTokens => {
            let Some(c) = app.container() else {
                return container_unavailable();
            };
            match read_json::<RevokeTokenRequest>(req).await {
                Ok(r) => reply(c.revoke_tokens(&r)),
                Err(reply) => reply,
            }
        }
        api::Request::RenewTokens => {
            let Some(c) = app.container() else {
                return container_unavailable();
            };
            match read_json_required::<RenewTokenRequest>(req).await {
                Ok(r) => reply(c.renew_tokens(&r)),
                Err(reply) => reply,
            }
        }
        api::Request::Whoami { profile } => {
            reply(whoami::whoami(app.broker(), app.env(), &profile).await)
        }
        api::Request::Roles { source } => reply(app.broker().list_roles(&source).await),
        api::Request::Console => match read_json_required::<ConsoleRequest>(req).await {
            Ok(r) => reply(
                crate::console::console(app.broker(), app.env(), app.browser().as_ref(), &r).await,
            ),
            Err(reply) => reply,
        },
        api::Request::ScopedCredentials {
            profile,
            interactive,
            wait,
            via,
        } => {
            let ask = ask(interactive, wait);
            scoped::credentials(app, &profile, ask, via.as_deref(), peer, req).await
        }
        api::Request::ScopedToken { profile } => scoped::token(app, &profile, req).await,
        api::Request::SetupCheck => {
            match read_json_required::<rolecall_proto::setup::SetupCheckRequest>(req).await {
                Ok(r) => match crate::setup_check::check(&r.source_toml, app.env()).await {
                    Ok(confirmed) => ok(&rolecall_proto::setup::SetupCheckReply { confirmed }),
                    Err(e) => error(ErrorBody::new(ErrorCode::ConfigInvalid, e)),
                },
                Err(reply) => reply,
            }
        }
    }
}

/// A handler's outcome as a reply.
fn reply<T: Serialize>(r: Result<T, ErrorBody>) -> Reply {
    match r {
        Ok(v) => ok(&v),
        Err(e) => error(e),
    }
}

/// How a credentials request may wait for a login, as its query asked.
fn ask(interactive: bool, wait: Option<u64>) -> CredentialRequest {
    CredentialRequest {
        interactive,
        wait: wait.map(Duration::from_secs),
    }
}

fn container_unavailable() -> Reply {
    error(ErrorBody::new(
        ErrorCode::Unsupported,
        "the container credentials endpoint is not running (see the daemon log)",
    ))
}

/// A profile's credentials (narrowed by `scope` for a scoped session), audited, as
/// credential_process JSON.
async fn credentials(
    app: &Arc<dyn Control>,
    profile: &str,
    ask: CredentialRequest,
    via: Option<&str>,
    peer: Option<super::SocketPeer>,
    scope: Option<&rolecall_proto::scope::SessionScope>,
) -> Reply {
    let mut stop = app.shutdown().signal();
    let fetch = async {
        match scope {
            Some(scope) => app.broker().scoped_credentials(profile, scope, ask).await,
            None => app.broker().credentials(profile, ask).await,
        }
    };
    let result = tokio::select! {
        r = fetch => r,
        // A stop must not wait for a login the caller is waiting on.
        _ = stopped(&mut stop) => Err(ErrorBody::new(ErrorCode::Internal, "the daemon is stopping")),
    };
    match result {
        Ok(c) => {
            // For a scoped session the audit line names the policy hash (`audit::handout`).
            app.audit_socket(profile, via, peer, &c);
            json_response(StatusCode::OK, crate::credentials::render::process_json(&c))
        }
        Err(e) => error(e),
    }
}

async fn login_poll(app: &Arc<dyn Control>, source: &str, wait: Option<u64>) -> Reply {
    let mut stop = app.shutdown().signal();
    let wait = Duration::from_secs(wait.unwrap_or_default());
    reply(
        app.broker()
            .login_state(source, wait, stopped(&mut stop))
            .await,
    )
}
