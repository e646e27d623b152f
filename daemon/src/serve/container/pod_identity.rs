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

use super::{error_reply, json_reply, ContainerState};
use crate::sources::RoleCredentials;
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use rolecall_proto::timefmt;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The route, as the SDKs' Pod Identity support is configured with it.
pub const ROUTE: &str = "/v1/credentials";

/// The EKS Pod Identity Agent's link-local address, forwarded like `169.254.170.2`.
pub const LINK_LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23));

/// The URL a pod is given in `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
pub const POD_URI: &str = "http://169.254.170.23/v1/credentials";

/// The agent's reply. `RoleArn` is not part of it (the agent does not send one); `AccountId`
/// is, and lets the SDKs use account-based endpoints.
#[derive(Serialize)]
struct PodIdentityCredentials<'a> {
    #[serde(rename = "AccessKeyId")]
    access_key_id: &'a str,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: &'a str,
    #[serde(rename = "Token")]
    token: &'a str,
    #[serde(rename = "AccountId")]
    account_id: &'a str,
    #[serde(rename = "Expiration")]
    expiration: String,
}

/// Answers `GET /v1/credentials` (the caller has passed the Host/browser guard, the method and
/// body checks).
pub(super) async fn answer<B>(
    state: &ContainerState,
    req: &Request<B>,
    local: SocketAddr,
) -> Response<Full<Bytes>> {
    let now = timefmt::now_epoch();
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let Some(profile) = state.tokens.profile_of(token, now) else {
        return error_reply(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "missing, expired or invalid authorization token — run: rolecall container <profile> --pod-identity",
        );
    };
    // Which token it was (its id, never its value), as on the profile route; a scoped
    // session's token is served its scoped credentials only.
    let token_ref = state.tokens.verified(&profile, token, now);
    let fetched = match &token_ref {
        Some(t) => state.credentials_for(&profile, t).await,
        None => state.provider.credentials(&profile).await,
    };
    match fetched {
        Ok(c) => {
            let response = reply(&c);
            if response.status() == StatusCode::OK {
                state.provider.audit(crate::audit::handout(
                    rolecall_proto::audit::Interface::Container,
                    &profile,
                    &c,
                    crate::audit::caller::tcp_request(req, local),
                    token_ref,
                ));
            }
            response
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error_reply(status, &format!("{:?}", e.code), &e.one_line())
        }
    }
}

fn reply(c: &RoleCredentials) -> Response<Full<Bytes>> {
    if c.expiration <= timefmt::now_epoch() {
        // As on the profile route: never serve keys that have already expired.
        return error_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "Expired",
            "the credentials available have expired",
        );
    }
    let body = PodIdentityCredentials {
        access_key_id: &c.access_key_id,
        secret_access_key: &c.secret_access_key,
        token: &c.session_token,
        account_id: &c.account_id,
        expiration: timefmt::rfc3339(c.expiration),
    };
    json_reply(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_has_exactly_the_agents_fields() {
        let c = RoleCredentials {
            access_key_id: "ASIAX".into(),
            secret_access_key: "S".to_string().into(),
            session_token: "T".to_string().into(),
            expiration: timefmt::now_epoch() + 900,
            account_id: "111111111111".into(),
            role_arn: "arn:aws:sts::111111111111:assumed-role/Dev/me".into(),
        };
        let r = reply(&c);
        assert_eq!(r.status(), StatusCode::OK);
        let body = futures_body(r);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "AccessKeyId",
                "AccountId",
                "Expiration",
                "SecretAccessKey",
                "Token"
            ]
        );
        assert_eq!(v["AccountId"], "111111111111");
        assert_eq!(v["Token"], "T");
    }

    fn futures_body(r: Response<Full<Bytes>>) -> Bytes {
        use http_body_util::BodyExt as _;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(r.into_body().collect()).unwrap().to_bytes()
    }
}
