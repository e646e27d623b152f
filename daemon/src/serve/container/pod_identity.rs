//! The EKS Pod Identity–style route of the container endpoint: `GET /v1/credentials` with
//! `Authorization: <token>` (which the SDKs read from `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`
//! on every fetch), answering as the EKS Pod Identity Agent does:
//! `{"AccessKeyId","SecretAccessKey","Token","AccountId","Expiration"}`.
//!
//! The URL names no profile, unlike `/v1/container/<profile>`: the token does. Every token is
//! minted for one profile (`rolecall container <profile> --pod-identity`), so the token a pod
//! presents selects the profile whose credentials it gets; a missing, wrong, expired or revoked
//! token gets the one 401 the profile route gives.
//!
//! Pods reach the route at `169.254.170.23:80` (the agent's address, forwarded by
//! `rolecall container setup`); host processes at the listener itself on loopback.

use super::handler::{error_reply, provider_error, ContainerHandler};
use crate::credentials::render;
use crate::httpd::{Reply, TcpPeer};
use http::{header, Request, StatusCode};
use rolecall_proto::audit::Interface;
use rolecall_proto::timefmt;
use std::net::{IpAddr, Ipv4Addr};

/// The route, as the SDKs' Pod Identity support is configured with it.
pub const ROUTE: &str = "/v1/credentials";

/// The EKS Pod Identity Agent's link-local address, forwarded like `169.254.170.2`.
pub const LINK_LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23));

/// The URL a pod is given in `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
pub const POD_URI: &str = "http://169.254.170.23/v1/credentials";

/// Answers `GET /v1/credentials` (the caller has passed the Host/browser guard, the method and
/// body checks) with the agent's reply ([`render::pod_identity_json`]).
pub(super) async fn answer<B>(h: &ContainerHandler, req: &Request<B>, peer: TcpPeer) -> Reply {
    let now = timefmt::now_epoch();
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let Some((profile, presented)) = h.state.tokens.identify(token, now) else {
        return error_reply(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "missing, expired or invalid authorization token — run: rolecall container <profile> --pod-identity",
        );
    };
    // A scoped session's token is served its narrowed credentials only, as on the profile
    // route.
    if let Some(scope) = presented.scope {
        let route = (
            Interface::Container,
            render::pod_identity_json as fn(&_) -> _,
        );
        return h
            .answer_scoped(&profile, &scope, now, peer, presented.token, route)
            .await;
    }
    let provider = &*h.state.provider;
    match h
        .pod_replies
        .get(
            provider,
            &profile,
            Interface::Container,
            now,
            render::pod_identity_json,
        )
        .await
    {
        // Which token it was (its id, never its value), as on the profile route.
        Ok(r) => h.hand_out(&r, now, peer, Some(presented.token)),
        Err(e) => provider_error(&e),
    }
}
