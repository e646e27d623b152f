//! The loopback OAuth redirect listener for browser logins (identity-center PKCE, later
//! entra-oidc).
//!
//! It binds `127.0.0.1:0` before the browser opens (so the redirect URI carries a real port),
//! serves exactly one path, and accepts exactly one answer whose `state` matches (compared in
//! constant time): `?code=…&state=…`, or `?error=…&state=…` when the user or the IdP declined.
//! Anything else — another path or method, a foreign `Host` (DNS rebinding), a request with an
//! `Origin` (another web page), a wrong state — is refused and the listener keeps waiting, until
//! the login's own time bound. After the first valid answer it stops accepting.
//!
//! Connections are capped ([`MAX_CONNECTIONS`], each closed after [`CONNECTION_TIMEOUT`]): when
//! full, a new connection evicts the oldest one that has no request in progress, so sockets
//! opened and left idle (by another local user or a web page) neither exhaust the daemon's file
//! descriptors nor keep the browser's redirect out.

use crate::httpd::{Handler, Limits, Refusal, Reply, TcpPeer, WhenFull};
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

/// Open connections kept at most (a browser opens a handful).
pub const MAX_CONNECTIONS: usize = 32;
/// A connection is closed after this long, whatever it is doing: a reply is instant.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);

/// What the browser brought back on a valid redirect.
pub struct CallbackParams {
    /// The authorization code (secret: it redeems for tokens together with the verifier).
    pub code: Zeroizing<String>,
    /// Every other query parameter except `state` and `code` (e.g. `session_state`).
    pub extra: BTreeMap<String, String>,
}

impl fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &"** redacted **")
            .field("extra", &self.extra)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The IdP redirected back with `error=` (the user declined, or the IdP refused).
    #[error("sign-in was refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        error: String,
        description: Option<String>,
    },
    #[error("no answer from the browser within {}s", .0.as_secs())]
    TimedOut(Duration),
    #[error("callback listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A bound, not yet answered, callback listener.
pub struct CallbackServer {
    listener: TcpListener,
    addr: SocketAddr,
    path: String,
}

impl CallbackServer {
    /// Binds `127.0.0.1:0` for `path` (e.g. `/oauth/callback`).
    pub async fn bind(path: &str) -> std::io::Result<CallbackServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        Ok(CallbackServer {
            listener,
            addr,
            path: path.to_string(),
        })
    }

    #[cfg(test)]
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port><path>`: the redirect URI to send in the authorize request.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.addr.port(), self.path)
    }

    /// Serves until one request carries `expected_state` (answering it with a small page) or
    /// `timeout` passes.
    pub async fn wait(
        self,
        expected_state: &str,
        timeout: Duration,
    ) -> Result<CallbackParams, CallbackError> {
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            state: Zeroizing::new(expected_state.to_string()),
            path: self.path,
            port: self.addr.port(),
            done: Mutex::new(Some(tx)),
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        // The loop runs on until the answer is in (it then drops the listener at once and
        // lets the browser's page finish in the background).
        tokio::spawn(crate::httpd::serve(
            self.listener,
            limits(),
            shared,
            async move {
                let _ = stop_rx.await;
            },
        ));
        let outcome = tokio::select! {
            // The sender lives in `shared` until a valid answer takes it.
            res = rx => res.unwrap_or(Err(CallbackError::TimedOut(timeout))),
            _ = tokio::time::sleep(timeout) => Err(CallbackError::TimedOut(timeout)),
        };
        let _ = stop_tx.send(());
        outcome
    }
}

/// One request per connection, each connection closed after [`CONNECTION_TIMEOUT`] whatever
/// it does, [`MAX_CONNECTIONS`] of them with the oldest idle one evicted for a newcomer.
fn limits() -> Limits {
    Limits {
        max_connections: MAX_CONNECTIONS,
        max_header_bytes: 16 * 1024,
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::MAX,
        request_timeout: Duration::MAX,
        when_full: WhenFull::EvictIdle,
        max_headers: None,
        keep_alive: false,
        connection_timeout: CONNECTION_TIMEOUT,
        drain: Duration::from_secs(2),
    }
}

impl Handler for Shared {
    type Peer = TcpPeer;

    fn handle(
        &self,
        req: Request<Incoming>,
        _peer: TcpPeer,
    ) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>> {
        let reply = self.answer(req);
        Box::pin(async move { reply })
    }

    fn refused_reply(&self, why: Refusal) -> Reply {
        page(StatusCode::FORBIDDEN, "Refused", why)
    }

    fn timeout_reply(&self) -> Reply {
        page(StatusCode::GATEWAY_TIMEOUT, "Timed out", "Try again.")
    }
}

type Outcome = Result<CallbackParams, CallbackError>;

struct Shared {
    state: Zeroizing<String>,
    path: String,
    port: u16,
    done: Mutex<Option<oneshot::Sender<Outcome>>>,
}

impl Shared {
    fn answer(&self, req: Request<Incoming>) -> Reply {
        if req.headers().contains_key(header::ORIGIN) {
            return page(
                StatusCode::FORBIDDEN,
                "Refused",
                "Requests from web pages are not accepted here.",
            );
        }
        let host_ok = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| {
                h == format!("127.0.0.1:{}", self.port) || h == format!("localhost:{}", self.port)
            });
        if !host_ok {
            return page(
                StatusCode::FORBIDDEN,
                "Refused",
                "This address only answers as 127.0.0.1.",
            );
        }
        if req.uri().path() != self.path {
            return page(StatusCode::NOT_FOUND, "Not found", "Nothing here.");
        }
        if req.method() != Method::GET {
            let mut r = page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Not allowed",
                "Only GET is accepted.",
            );
            r.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
            return r;
        }
        let mut state = None;
        let mut code = None;
        let mut error = None;
        let mut description = None;
        let mut extra = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "state" => state = Some(Zeroizing::new(v.into_owned())),
                "code" => code = Some(Zeroizing::new(v.into_owned())),
                "error" => error = Some(v.into_owned()),
                "error_description" => description = Some(v.into_owned()),
                _ => {
                    extra.insert(k.into_owned(), v.into_owned());
                }
            }
        }
        let state_ok = state
            .as_ref()
            .is_some_and(|s| bool::from(s.as_bytes().ct_eq(self.state.as_bytes())));
        if !state_ok {
            tracing::warn!("OAuth callback with a missing or wrong state refused");
            return page(
                StatusCode::BAD_REQUEST,
                "Sign-in link not valid",
                "This answer does not belong to the sign-in rolecall started (state mismatch). Start the sign-in again from rolecall.",
            );
        }
        let Some(tx) = self.done.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return page(
                StatusCode::GONE,
                "Already used",
                "This sign-in has already been completed.",
            );
        };
        let (outcome, resp) = match (code, error) {
            (_, Some(error)) => {
                let body = format!(
                    "The sign-in was not completed: {}{}. You can close this tab.",
                    error,
                    description
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                );
                let resp = page(StatusCode::OK, "Sign-in failed", &body);
                (Err(CallbackError::Denied { error, description }), resp)
            }
            (Some(code), None) if !code.is_empty() => (
                Ok(CallbackParams { code, extra }),
                page(
                    StatusCode::OK,
                    "Signed in",
                    "Signed in \u{2014} you can close this tab and return to your terminal.",
                ),
            ),
            _ => (
                Err(CallbackError::Denied {
                    error: "invalid_response".into(),
                    description: Some("the redirect carried neither a code nor an error".into()),
                }),
                page(
                    StatusCode::BAD_REQUEST,
                    "Sign-in failed",
                    "The answer carried no authorization code.",
                ),
            ),
        };
        let _ = tx.send(outcome);
        resp
    }
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn page(status: StatusCode, title: &str, body: &str) -> Reply {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>rolecall: {t}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:4em auto;max-width:36em;color:#222}}</style>\
         </head><body><h1>{t}</h1><p>{b}</p></body></html>",
        t = html_escape(title),
        b = html_escape(body)
    );
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header("referrer-policy", "no-referrer")
        .header("x-content-type-options", "nosniff")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        )
        .header(header::CONNECTION, "close")
        .body(Full::new(Bytes::from(html)))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests;
