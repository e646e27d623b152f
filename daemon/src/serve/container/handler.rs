//! The container endpoint's requests: the browser/Host guard, the method and body checks, the
//! token check, and the reply (`/v1/container/<profile>`, or the Pod Identity route). Replies
//! are rendered once per profile and second and reused ([`super::replies`]).

use super::replies::Replies;
use super::{guard, peer, pod_identity, ContainerState, ECS_LINK_LOCAL, ROUTE_PREFIX};
use crate::credentials::{render, RoleCredentials};
use crate::httpd::{Refusal, Reply, TcpPeer};
use bytes::Bytes;
use http::{header, Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::Request;
use rolecall_proto::audit::{Interface, TokenRef};
use rolecall_proto::output::ContainerError;
use rolecall_proto::timefmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub(super) struct ContainerHandler {
    pub state: Arc<ContainerState>,
    /// Rendered `/v1/container/<profile>` replies.
    profile_replies: Replies,
    /// Rendered Pod Identity replies.
    pub pod_replies: Replies,
    guard: guard::Guard,
}

/// A JSON reply with the headers every answer of these endpoints carries.
pub(crate) fn json_reply(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

pub(super) fn error_reply(status: StatusCode, code: &str, message: &str) -> Reply {
    let body = serde_json::to_vec(&ContainerError {
        code: code.to_string(),
        message: message.to_string(),
    })
    .unwrap_or_default();
    json_reply(status, body)
}

/// The reply to a provider error, with the status of its code.
pub(super) fn provider_error(e: &rolecall_proto::api::ErrorBody) -> Reply {
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_reply(status, &format!("{:?}", e.code), &e.one_line())
}

/// Whether the request carries a body. Nothing here takes one; hyper would otherwise read it.
pub(crate) fn has_body(req: &Request<Incoming>) -> bool {
    !req.body().is_end_stream()
}

/// A refusal after which the connection must not be reused (an unread body may follow).
pub(crate) fn closing(mut r: Reply) -> Reply {
    r.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    r
}

impl ContainerHandler {
    pub fn new(state: Arc<ContainerState>) -> Self {
        Self {
            state,
            profile_replies: Replies::default(),
            pod_replies: Replies::default(),
            guard: guard::Guard::new(&[ECS_LINK_LOCAL, pod_identity::LINK_LOCAL]),
        }
    }

    async fn answer(&self, req: Request<Incoming>, peer: TcpPeer) -> Reply {
        if let Err(why) = self.guard.check(req.headers(), peer.local) {
            return error_reply(StatusCode::FORBIDDEN, "Forbidden", why);
        }
        if has_body(&req) {
            return closing(error_reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BadRequest",
                "request bodies are not accepted",
            ));
        }
        if req.method() != Method::GET {
            let mut r = error_reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "BadRequest",
                "only GET is served",
            );
            r.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
            return r;
        }
        if req.uri().path() == pod_identity::ROUTE {
            return pod_identity::answer(self, &req, peer).await;
        }
        let Some(profile) = req
            .uri()
            .path()
            .strip_prefix(ROUTE_PREFIX)
            .filter(|p| !p.is_empty() && !p.contains('/'))
            .and_then(profile_name)
        else {
            return error_reply(StatusCode::NOT_FOUND, "NotFound", "no such route");
        };
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let now = timefmt::now_epoch();
        // One answer for a missing, wrong, revoked or other-profile token.
        let Some(presented) = self.state.tokens.verified(&profile, token, now) else {
            return error_reply(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "missing, expired or invalid authorization token for this profile — run: rolecall container <profile>",
            );
        };
        // A scoped session's token is served its narrowed credentials only, never the
        // profile's rendered reply (which holds the unscoped keys).
        if let Some(scope) = presented.scope {
            let route = (Interface::Container, render::container_json as fn(&_) -> _);
            return self
                .answer_scoped(&profile, &scope, now, peer, presented.token, route)
                .await;
        }
        let provider = &*self.state.provider;
        match self
            .profile_replies
            .get(
                provider,
                &profile,
                Interface::Container,
                now,
                render::container_json,
            )
            .await
        {
            Ok(r) => self.hand_out(&r, now, peer, Some(presented.token)),
            Err(e) => provider_error(&e),
        }
    }

    /// Answers a rendered reply, unless its credentials have expired, and records the hand-out.
    pub(super) fn hand_out(
        &self,
        r: &super::replies::Rendered,
        now: i64,
        peer: TcpPeer,
        token: Option<Arc<TokenRef>>,
    ) -> Reply {
        if r.expiration <= now {
            // The broker never hands out expired keys; if it ever did, say so rather than
            // serve them.
            return error_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "Expired",
                "the credentials available have expired",
            );
        }
        r.hand_out(&*self.state.provider, &peer, token)
    }

    /// Answers a scoped session's credentials, fetched and rendered for this request alone
    /// (they are never kept with the profile's rendered replies), and records the hand-out.
    pub(super) async fn answer_scoped(
        &self,
        profile: &str,
        scope: &rolecall_proto::scope::SessionScope,
        now: i64,
        peer: TcpPeer,
        token: Arc<TokenRef>,
        (interface, render): (Interface, fn(&RoleCredentials) -> Vec<u8>),
    ) -> Reply {
        let provider = &*self.state.provider;
        let c = match provider.scoped_credentials(profile, scope).await {
            Ok(c) => c,
            Err(e) => return provider_error(&e),
        };
        let rendered =
            super::replies::Rendered::new(provider, profile, interface, now, &c, render(&c));
        self.hand_out(&rendered, now, peer, Some(token))
    }
}

/// A profile name from its path segment: percent-decoded, and valid UTF-8. Names without a
/// `%` (all of them, in practice) are the segment itself: no byte-by-byte decoding pass.
fn profile_name(segment: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !segment.contains('%') {
        return Some(std::borrow::Cow::Borrowed(segment));
    }
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
}

impl crate::httpd::Handler for ContainerHandler {
    type Peer = TcpPeer;

    fn handle(
        &self,
        req: Request<Incoming>,
        peer: TcpPeer,
    ) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>> {
        Box::pin(self.answer(req, peer))
    }

    fn timeout_reply(&self) -> Reply {
        error_reply(
            StatusCode::GATEWAY_TIMEOUT,
            "Upstream",
            "the credentials could not be fetched in time; try again",
        )
    }

    /// A local client must be the daemon's own user; containers arriving through the
    /// 169.254.170.2 DNAT come from their bridge address and are served on their token alone.
    fn admit(&self, mut p: TcpPeer) -> Result<TcpPeer, Refusal> {
        p.uid = peer::check_local_user(p.peer, p.local)?;
        Ok(p)
    }

    fn refused_reply(&self, why: Refusal) -> Reply {
        error_reply(StatusCode::FORBIDDEN, "Forbidden", why)
    }
}

#[cfg(test)]
mod tests {
    use super::profile_name;
    use std::borrow::Cow;

    #[test]
    fn profile_names_are_percent_decoded_only_when_encoded() {
        assert!(matches!(
            profile_name("dev-admin"),
            Some(Cow::Borrowed("dev-admin"))
        ));
        assert_eq!(profile_name("team%20a").as_deref(), Some("team a"));
        assert_eq!(profile_name("caf%C3%A9").as_deref(), Some("café"));
        // Not UTF-8 once decoded: no such profile.
        assert_eq!(profile_name("bad%FF"), None);
    }
}
