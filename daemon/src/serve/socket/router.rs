//! The socket API's routes (`rolecall_proto::api`), in one match: the place to add one.
//!
//! Every reply is JSON with the `x-rolecall-version` and `x-rolecall-protocol` headers;
//! failures are an [`ErrorReply`] with the status of its [`ErrorCode`].

use crate::app::App;
use crate::broker::{whoami, CredentialRequest};
use crate::login::Trigger;
use crate::sources::LoginOptions;
use bytes::Bytes;
use http::{header, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use rolecall_proto::api::{
    AvailableRoles, ConsoleRequest, ErrorBody, ErrorCode, ErrorReply, LoginRequest, LogoutRequest,
    MintTokenRequest, OkReply, RenewTokenRequest, RevokeTokenRequest, VersionReply,
};
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
/// Longest long-poll a client may ask for.
const MAX_WAIT: Duration = Duration::from_secs(600);

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

fn method_not_allowed(method: &Method, path: &str) -> Reply {
    error_with_status(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorBody::new(
            ErrorCode::BadRequest,
            format!("{method} is not supported on {path}"),
        ),
    )
}

/// The query string's parameters.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(false),
            Some("1" | "true" | "yes") => Ok(true),
            Some("0" | "false" | "no" | "") => Ok(false),
            Some(v) => Err(format!("{key} must be 1 or 0, got {v:?}")),
        }
    }

    fn wait(&self) -> Result<Option<Duration>, String> {
        match self.get("wait") {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(|s| Some(Duration::from_secs(s).min(MAX_WAIT)))
                .map_err(|_| format!("wait must be a number of seconds, got {v:?}")),
        }
    }
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

/// Splits `/v1/a/b` into decoded segments after `v1`.
fn segments(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix("/v1/")?;
    rest.split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        })
        .collect()
}

pub async fn route(app: &Arc<App>, req: Request<Incoming>) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if req.uri().to_string().len() > MAX_TARGET_BYTES {
        return error_with_status(
            StatusCode::URI_TOO_LONG,
            ErrorBody::new(ErrorCode::BadRequest, "request target too long"),
        );
    }
    let query = Query::parse(req.uri().query());
    let Some(segs) = segments(&path) else {
        return error(ErrorBody::new(
            ErrorCode::NotFound,
            format!("no such endpoint: {path}"),
        ));
    };
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    tracing::debug!(%method, %path, "socket request");
    match (segs.as_slice(), &method) {
        (["version"], &Method::GET) => ok(&VersionReply {
            version: VERSION.to_string(),
            protocol: PROTOCOL_VERSION,
            pid: std::process::id(),
        }),
        (["credentials", profile], &Method::GET) => {
            let peer = req.extensions().get::<super::SocketPeer>().copied();
            credentials(app, profile, &query, peer).await
        }
        (["login", source], &Method::POST) => login_start(app, source, req).await,
        (["login", source], &Method::GET) => login_poll(app, source, &query).await,
        (["logout"], &Method::POST) => match read_json::<LogoutRequest>(req).await {
            Ok(r) => match app.logout(r.source.as_deref()).await {
                Ok(()) => ok(&OkReply { ok: true }),
                Err(e) => error(e),
            },
            Err(reply) => reply,
        },
        (["status"], &Method::GET) => ok(&app.status().await),
        (["reload"], &Method::POST) => match app.reload() {
            Ok(()) => ok(&OkReply { ok: true }),
            Err(e) => error(ErrorBody::new(ErrorCode::ConfigInvalid, e.to_string())),
        },
        (["shutdown"], &Method::POST) => {
            tracing::info!("shutdown requested over the socket");
            app.request_shutdown();
            ok(&OkReply { ok: true })
        }
        (["container", "tokens"], &Method::POST) => {
            let Some(c) = app.container() else {
                return container_unavailable();
            };
            match read_json_required::<MintTokenRequest>(req).await {
                Ok(r) => match c.mint_token(&r) {
                    Ok(reply) => ok(&reply),
                    Err(e) => error(e),
                },
                Err(reply) => reply,
            }
        }
        (["container", "tokens"], &Method::DELETE) => {
            let Some(c) = app.container() else {
                return container_unavailable();
            };
            match read_json::<RevokeTokenRequest>(req).await {
                Ok(r) => match c.revoke_tokens(&r) {
                    Ok(reply) => ok(&reply),
                    Err(e) => error(e),
                },
                Err(reply) => reply,
            }
        }
        (["container", "tokens", "renew"], &Method::POST) => {
            let Some(c) = app.container() else {
                return container_unavailable();
            };
            match read_json_required::<RenewTokenRequest>(req).await {
                Ok(r) => match c.renew_tokens(&r) {
                    Ok(reply) => ok(&reply),
                    Err(e) => error(e),
                },
                Err(reply) => reply,
            }
        }
        (["whoami", profile], &Method::GET) => {
            match whoami::whoami(app.broker(), app.env(), profile).await {
                Ok(id) => ok(&id),
                Err(e) => error(e),
            }
        }
        (["sources", source, "roles"], &Method::GET) => roles(app, source).await,
        (["console"], &Method::POST) => match read_json_required::<ConsoleRequest>(req).await {
            Ok(r) => match crate::console::console(app.broker(), app.env(), &r).await {
                Ok(reply) => ok(&reply),
                Err(e) => error(e),
            },
            Err(reply) => reply,
        },
        (
            ["version"]
            | ["credentials", _]
            | ["login", _]
            | ["logout"]
            | ["status"]
            | ["reload"]
            | ["shutdown"]
            | ["container", "tokens"]
            | ["container", "tokens", "renew"]
            | ["whoami", _]
            | ["sources", _, "roles"]
            | ["console"],
            _,
        ) => method_not_allowed(&method, &path),
        _ => error(ErrorBody::new(
            ErrorCode::NotFound,
            format!("no such endpoint: {path}"),
        )),
    }
}

fn container_unavailable() -> Reply {
    error(ErrorBody::new(
        ErrorCode::Unsupported,
        "the container credentials endpoint is not running (see the daemon log)",
    ))
}

async fn credentials(
    app: &Arc<App>,
    profile: &str,
    query: &Query,
    peer: Option<super::SocketPeer>,
) -> Reply {
    let req = match (query.flag("interactive"), query.wait()) {
        (Ok(interactive), Ok(wait)) => CredentialRequest { interactive, wait },
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    let mut stop = app.shutdown_signal();
    let fetch = app.broker().credentials(profile, req);
    let result = tokio::select! {
        r = fetch => r,
        // A stop must not wait for a login the caller is waiting on.
        _ = crate::app::stopped(&mut stop) => Err(ErrorBody::new(ErrorCode::Internal, "the daemon is stopping")),
    };
    match result {
        Ok(c) => {
            app.audit_socket(profile, query.get("via"), peer, &c);
            json_response(StatusCode::OK, crate::credentials::render::process_json(&c))
        }
        Err(e) => error(e),
    }
}

async fn login_start(app: &Arc<App>, source_name: &str, req: Request<Incoming>) -> Reply {
    let body: LoginRequest = match read_json(req).await {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let source = match app.broker().source(source_name) {
        Ok(s) => s,
        Err(e) => return error(e),
    };
    let opts = LoginOptions {
        no_browser: body.no_browser,
        saml_response: body.saml_response,
    };
    // The paste flow is a login of its own: it never joins one running in a browser.
    let force = body.force || opts.saml_response.is_some();
    match app
        .broker()
        .logins()
        .request(source, opts, Trigger::Explicit, force)
        .await
    {
        Ok(rx) => {
            let state = rx.borrow().clone();
            ok(&state)
        }
        // Explicit logins ignore the back-off; kept for completeness.
        Err(b) => error(ErrorBody::new(
            ErrorCode::LoginBackoff,
            format!("try again in {}s", b.remaining.as_secs()),
        )),
    }
}

async fn login_poll(app: &Arc<App>, source_name: &str, query: &Query) -> Reply {
    if let Err(e) = app.broker().source(source_name) {
        return error(e);
    }
    let wait = match query.wait() {
        Ok(w) => w.unwrap_or_default(),
        Err(e) => return bad_request(e),
    };
    let logins = app.broker().logins();
    let mut stop = app.shutdown_signal();
    let state = tokio::select! {
        st = logins.wait(source_name, wait) => st,
        _ = crate::app::stopped(&mut stop) => logins.state(source_name),
    };
    ok(&state)
}

async fn roles(app: &Arc<App>, source_name: &str) -> Reply {
    let source = match app.broker().source(source_name) {
        Ok(s) => s,
        Err(e) => return error(e),
    };
    match source.list_roles().await {
        Ok(roles) => ok(&AvailableRoles {
            source: source_name.to_string(),
            roles,
        }),
        Err(e) => error(crate::broker::fetch_error_body(source_name, &e)),
    }
}
