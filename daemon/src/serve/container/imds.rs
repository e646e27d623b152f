//! IMDSv2 emulation for tools that only know EC2 (off by default; `[daemon.imds]`).
//!
//! `PUT /latest/api/token` with `x-aws-ec2-metadata-token-ttl-seconds` (1–21600) gives a
//! session token; with it, `GET /latest/meta-data/iam/security-credentials/` names the role and
//! `GET …/<role>` returns the credentials. IMDS has no client authentication by design, so this
//! serves only the one profile it was configured for, on loopback, and only credentials with
//! more than [`MIN_REMAINING`] left: botocore stretches IMDS credentials near expiry instead of
//! failing, which would keep a client on dead keys.

use super::digest::{same_hash, sha256};
use super::handler::{closing, has_body};
use super::replies::Replies;
use super::{CredentialProvider, Limits};
use crate::credentials::render;
use crate::httpd::{Refusal, Reply, TcpPeer};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::Request;
use rand::RngCore as _;
use rolecall_proto::audit::Interface;
use rolecall_proto::timefmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// EC2's link-local metadata address (a Host that names it is accepted).
pub const IMDS_LINK_LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254));

/// Credentials with this little time left are not served.
pub const MIN_REMAINING: Duration = Duration::from_secs(20 * 60);

// Header names, not strings: a lookup by `&str` parses the name again on every request.
const TTL_HEADER: header::HeaderName =
    header::HeaderName::from_static("x-aws-ec2-metadata-token-ttl-seconds");
const TOKEN_HEADER: header::HeaderName =
    header::HeaderName::from_static("x-aws-ec2-metadata-token");
const CREDS_PREFIX: &str = "/latest/meta-data/iam/security-credentials/";
/// Live session tokens kept at most: bounds memory and lookup time under a flood of token
/// requests. When full, the oldest session never used for a read goes first (a flood of `PUT`s
/// only makes such sessions), and only when every session has been used, the oldest one.
pub const MAX_SESSIONS: usize = 1024;

struct Session {
    hash: [u8; 32],
    until: Instant,
    used: AtomicBool,
}

pub struct ImdsState {
    provider: Arc<dyn CredentialProvider>,
    profile: String,
    role_name: String,
    /// Read on every request without a lock; replaced whole (under `new_sessions`) by a
    /// token request.
    sessions: ArcSwap<Vec<Arc<Session>>>,
    new_sessions: Mutex<()>,
    limits: Limits,
}

impl std::fmt::Debug for ImdsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImdsState")
            .field("profile", &self.profile)
            .field("role_name", &self.role_name)
            .finish_non_exhaustive()
    }
}

/// The role name IMDS lists: the configured role's last path segment (`DeveloperAdmin`,
/// or `EntraAdmin` of `arn:aws:iam::333333333333:role/EntraAdmin`).
pub fn role_name(role: &str) -> String {
    role.rsplit(['/', ':'])
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(role)
        .to_string()
}

impl ImdsState {
    /// `None` when the profile is not configured.
    pub fn new(provider: Arc<dyn CredentialProvider>, profile: &str) -> Option<Self> {
        let info = provider.profile(profile)?;
        Some(Self {
            provider,
            profile: profile.to_string(),
            role_name: role_name(&info.role),
            sessions: ArcSwap::default(),
            new_sessions: Mutex::new(()),
            limits: Limits::default(),
        })
    }

    fn new_session(&self, ttl: Duration) -> String {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        use base64::Engine as _;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let hash = sha256(token.as_bytes());
        let now = crate::clock::monotonic();
        let _one_writer = self.new_sessions.lock().unwrap_or_else(|e| e.into_inner());
        let mut s: Vec<Arc<Session>> = self
            .sessions
            .load()
            .iter()
            .filter(|x| x.until > now)
            .cloned()
            .collect();
        if s.len() >= MAX_SESSIONS {
            let victim = s
                .iter()
                .position(|x| !x.used.load(Ordering::Relaxed))
                .unwrap_or(0);
            s.remove(victim);
        }
        s.push(Arc::new(Session {
            hash,
            until: now + ttl,
            used: AtomicBool::new(false),
        }));
        self.sessions.store(Arc::new(s));
        token
    }

    /// Session tokens currently kept.
    pub fn live_sessions(&self) -> usize {
        let now = crate::clock::monotonic();
        self.sessions
            .load()
            .iter()
            .filter(|x| x.until > now)
            .count()
    }

    fn session_valid(&self, presented: Option<&[u8]>) -> bool {
        let Some(p) = presented else { return false };
        let hash = sha256(p);
        let now = crate::clock::monotonic();
        let s = self.sessions.load();
        let mut ok = subtle::Choice::from(0);
        for x in s.iter() {
            let this = same_hash(&x.hash, &hash) & subtle::Choice::from((x.until > now) as u8);
            // Written once per session: later reads leave the shared line alone.
            if bool::from(this) && !x.used.load(Ordering::Relaxed) {
                x.used.store(true, Ordering::Relaxed);
            }
            ok |= this;
        }
        ok.into()
    }
}

/// Serves IMDSv2 on `listener` until `shutdown` completes.
pub async fn serve_imds<F>(listener: TcpListener, state: Arc<ImdsState>, shutdown: F)
where
    F: Future<Output = ()> + Send,
{
    match listener.local_addr() {
        Ok(addr) if addr.ip().is_loopback() => {
            tracing::info!(%addr, profile = %state.profile, "IMDSv2 endpoint listening");
        }
        // The config refuses such an address; never serve credentials beyond loopback anyway.
        other => {
            tracing::error!(addr = ?other, "IMDS listens only on loopback; not serving");
            return;
        }
    }
    let limits = state.limits.clone();
    let handler = Arc::new(ImdsHandler {
        state,
        replies: Replies::default(),
        guard: super::guard::Guard::new(&[IMDS_LINK_LOCAL]),
    });
    crate::httpd::serve(listener, limits, handler, shutdown).await;
}

struct ImdsHandler {
    state: Arc<ImdsState>,
    /// The rendered credentials reply.
    replies: Replies,
    guard: super::guard::Guard,
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

impl ImdsHandler {
    async fn answer(&self, req: Request<Incoming>, peer: TcpPeer) -> Reply {
        if let Err(why) = self.guard.check(req.headers(), peer.local) {
            return text(StatusCode::FORBIDDEN, why);
        }
        if has_body(&req) {
            return closing(text(
                StatusCode::BAD_REQUEST,
                "request bodies are not accepted",
            ));
        }
        let path = req.uri().path();
        if req.method() == Method::PUT {
            if path != "/latest/api/token" {
                return text(StatusCode::NOT_FOUND, "not found");
            }
            // As EC2 does: a token request that went through a proxy is refused.
            if req.headers().contains_key("x-forwarded-for") {
                return text(
                    StatusCode::FORBIDDEN,
                    "forwarded token requests are refused",
                );
            }
            let ttl = req
                .headers()
                .get(&TTL_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|t| (1..=21_600).contains(t));
            let Some(ttl) = ttl else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "x-aws-ec2-metadata-token-ttl-seconds must be between 1 and 21600",
                );
            };
            let token = self.state.new_session(Duration::from_secs(ttl));
            let mut r = text(StatusCode::OK, token);
            r.headers_mut().insert(TTL_HEADER, HeaderValue::from(ttl));
            return r;
        }
        if req.method() != Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        }
        // IMDSv2 only: every read needs a session token.
        let presented = req.headers().get(&TOKEN_HEADER).map(|v| v.as_bytes());
        if !self.state.session_valid(presented) {
            return text(StatusCode::UNAUTHORIZED, "unauthorized");
        }
        match path.strip_prefix(CREDS_PREFIX) {
            Some("") => text(StatusCode::OK, self.state.role_name.clone()),
            Some(role) if role == self.state.role_name => self.credentials(peer).await,
            _ if path == "/latest/meta-data/iam/security-credentials" => {
                text(StatusCode::OK, self.state.role_name.clone())
            }
            _ => text(StatusCode::NOT_FOUND, "not found"),
        }
    }

    async fn credentials(&self, peer: TcpPeer) -> Reply {
        let now = timefmt::now_epoch();
        let state = &self.state;
        let imds_json = |c: &crate::credentials::RoleCredentials| render::imds_json(c, now);
        let r = match self
            .replies
            .get(
                &*state.provider,
                &state.profile,
                Interface::Imds,
                now,
                imds_json,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let status = StatusCode::from_u16(e.code.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return text(status, e.one_line());
            }
        };
        if r.expiration - now <= MIN_REMAINING.as_secs() as i64 {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the credentials of profile '{}' have 20 minutes or less left; IMDS serves only longer-lived ones",
                    state.profile
                ),
            );
        }
        r.hand_out(&*state.provider, &peer, None)
    }
}

impl crate::httpd::Handler for ImdsHandler {
    type Peer = TcpPeer;

    fn handle(
        &self,
        req: Request<Incoming>,
        peer: TcpPeer,
    ) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>> {
        Box::pin(self.answer(req, peer))
    }

    fn timeout_reply(&self) -> Response<Full<Bytes>> {
        text(StatusCode::GATEWAY_TIMEOUT, "timed out")
    }

    /// IMDS has no client authentication: only loopback clients of the daemon's own user.
    fn admit(&self, mut p: TcpPeer) -> Result<TcpPeer, Refusal> {
        let ip = match p.peer.ip() {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        if !ip.is_loopback() {
            return Err("IMDS answers only clients on this machine's loopback");
        }
        p.uid = super::peer::check_local_user(p.peer, p.local)?;
        Ok(p)
    }

    fn refused_reply(&self, why: Refusal) -> Reply {
        text(StatusCode::FORBIDDEN, why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_the_last_segment() {
        assert_eq!(role_name("DeveloperAdmin"), "DeveloperAdmin");
        assert_eq!(
            role_name("arn:aws:iam::333333333333:role/EntraAdmin"),
            "EntraAdmin"
        );
        assert_eq!(role_name("arn:aws:iam::3:role/path/to/R"), "R");
    }
}
