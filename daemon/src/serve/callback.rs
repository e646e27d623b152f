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

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use super::container::limits::{BusyGuard, Tracker};

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
        let (tx, mut rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            state: Zeroizing::new(expected_state.to_string()),
            path: self.path,
            port: self.addr.port(),
            done: Mutex::new(Some(tx)),
        });
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let tracker = Arc::new(Tracker::default());
        loop {
            tokio::select! {
                res = &mut rx => {
                    // The sender lives in `shared` until a valid answer takes it.
                    return res.unwrap_or(Err(CallbackError::TimedOut(timeout)));
                }
                _ = &mut deadline => return Err(CallbackError::TimedOut(timeout)),
                acc = self.listener.accept() => {
                    let (stream, _) = match acc {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::debug!(error = %e, "callback accept failed");
                            continue;
                        }
                    };
                    let Some((id, busy, evict)) = tracker.admit(MAX_CONNECTIONS, None) else {
                        // Every slot is answering a request right now.
                        drop(stream);
                        continue;
                    };
                    let shared = shared.clone();
                    let tracker = tracker.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            let shared = shared.clone();
                            let guard = BusyGuard::new(busy.clone());
                            async move {
                                let _busy = guard;
                                Ok::<_, std::convert::Infallible>(shared.handle(req))
                            }
                        });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(Duration::from_secs(10))
                            .max_buf_size(16 * 1024)
                            .keep_alive(false)
                            .serve_connection(TokioIo::new(stream), svc);
                        tokio::select! {
                            r = tokio::time::timeout(CONNECTION_TIMEOUT, conn) => {
                                if let Ok(Err(e)) = r {
                                    tracing::debug!(error = %e, "callback connection ended with an error");
                                }
                            }
                            // Evicted for a newer connection: drop this one.
                            _ = evict.notified() => {}
                        }
                        tracker.release(id);
                    });
                }
            }
        }
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
    fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
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

fn page(status: StatusCode, title: &str, body: &str) -> Response<Full<Bytes>> {
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
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A raw HTTP/1.1 request, so that tests control every header (Host, Origin).
    async fn raw(port: u16, req: String) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, text)
    }

    fn get(port: u16, target: &str, extra_headers: &str) -> String {
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra_headers}Connection: close\r\n\r\n")
    }

    #[tokio::test]
    async fn valid_code_is_delivered_once_and_refusals_keep_waiting() {
        let srv = CallbackServer::bind("/oauth/callback").await.unwrap();
        let port = srv.port();
        assert_eq!(
            srv.redirect_uri(),
            format!("http://127.0.0.1:{port}/oauth/callback")
        );
        let waiter = tokio::spawn(async move { srv.wait("st-123", Duration::from_secs(10)).await });

        // Each of these is refused without ending the wait.
        let (s, _) = raw(port, get(port, "/oauth/callback?code=c&state=wrong", "")).await;
        assert_eq!(s, 400);
        let (s, _) = raw(port, get(port, "/oauth/callback?code=c", "")).await;
        assert_eq!(s, 400);
        let (s, _) = raw(port, get(port, "/other?code=c&state=st-123", "")).await;
        assert_eq!(s, 404);
        let (s, _) = raw(
            port,
            get(
                port,
                "/oauth/callback?code=c&state=st-123",
                "Origin: http://evil.example\r\n",
            ),
        )
        .await;
        assert_eq!(s, 403);
        let (s, _) = raw(
            port,
            format!("GET /oauth/callback?code=c&state=st-123 HTTP/1.1\r\nHost: evil.example:{port}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(s, 403);
        let (s, _) = raw(
            port,
            format!("POST /oauth/callback?code=c&state=st-123 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(s, 405);
        assert!(!waiter.is_finished());

        let (s, body) = raw(
            port,
            get(
                port,
                "/oauth/callback?code=the-code&state=st-123&session_state=x",
                "",
            ),
        )
        .await;
        assert_eq!(s, 200);
        assert!(body.contains("Signed in"), "{body}");
        let got = waiter.await.unwrap().unwrap();
        assert_eq!(got.code.as_str(), "the-code");
        assert_eq!(
            got.extra.get("session_state").map(String::as_str),
            Some("x")
        );
        assert!(!format!("{got:?}").contains("the-code"));

        // The listener is gone after the first valid answer.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_connections_are_capped_and_the_redirect_still_gets_in() {
        let srv = CallbackServer::bind("/cb").await.unwrap();
        let port = srv.port();
        let waiter = tokio::spawn(async move { srv.wait("s", Duration::from_secs(30)).await });
        // Sockets opened and left silent.
        let mut idle = Vec::new();
        for _ in 0..(MAX_CONNECTIONS * 8) {
            idle.push(
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap(),
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut open = 0;
        for s in &idle {
            let mut b = [0u8; 1];
            match s.try_read(&mut b) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open += 1,
                _ => {}
            }
        }
        assert!(
            open <= MAX_CONNECTIONS,
            "{open} idle connections held open (cap {MAX_CONNECTIONS})"
        );
        let (s, _) = raw(port, get(port, "/cb?code=k&state=s", "")).await;
        assert_eq!(s, 200);
        assert_eq!(waiter.await.unwrap().unwrap().code.as_str(), "k");
    }

    #[tokio::test]
    async fn localhost_host_is_accepted() {
        let srv = CallbackServer::bind("/cb").await.unwrap();
        let port = srv.port();
        let waiter = tokio::spawn(async move { srv.wait("s", Duration::from_secs(10)).await });
        let (s, _) = raw(
            port,
            format!("GET /cb?code=k&state=s HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(waiter.await.unwrap().unwrap().code.as_str(), "k");
    }

    #[tokio::test]
    async fn error_redirect_with_valid_state_is_a_denial_and_is_escaped() {
        let srv = CallbackServer::bind("/cb").await.unwrap();
        let port = srv.port();
        let waiter = tokio::spawn(async move { srv.wait("s", Duration::from_secs(10)).await });
        let (s, body) = raw(
            port,
            get(
                port,
                "/cb?error=access_denied&error_description=%3Cscript%3Ex&state=s",
                "",
            ),
        )
        .await;
        assert_eq!(s, 200);
        assert!(body.contains("&lt;script&gt;") && !body.contains("<script>"));
        match waiter.await.unwrap() {
            Err(CallbackError::Denied { error, description }) => {
                assert_eq!(error, "access_denied");
                assert_eq!(description.as_deref(), Some("<script>x"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn times_out() {
        let srv = CallbackServer::bind("/cb").await.unwrap();
        let e = srv.wait("s", Duration::from_millis(100)).await.unwrap_err();
        assert!(matches!(e, CallbackError::TimedOut(_)));
    }

    #[tokio::test]
    async fn oversized_request_is_refused() {
        let srv = CallbackServer::bind("/cb").await.unwrap();
        let port = srv.port();
        let waiter = tokio::spawn(async move { srv.wait("s", Duration::from_secs(5)).await });
        let big = "a".repeat(64 * 1024);
        let (s, _) = raw(port, get(port, &format!("/cb?state=s&code={big}"), "")).await;
        assert_eq!(
            s, 431,
            "one defined answer for a request head over the limit"
        );
        assert!(!waiter.is_finished());
        waiter.abort();
    }
}
