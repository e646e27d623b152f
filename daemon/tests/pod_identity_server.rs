//! The EKS Pod Identity–style route of the container endpoint (`GET /v1/credentials`) over a
//! real loopback socket: the token alone selects the profile, the reply has the agent's fields,
//! and the Host check takes the agent's forwarded address `169.254.170.23`. The provider hands
//! out fixed keys per profile; the SDKs against the real daemon are in
//! `tests/py/test_e2e_container.py` and `tests/js/pod_identity.test.mjs`.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use rolecall_daemon::serve::container::{
    serve_container, ContainerState, CredentialProvider, ProfileInfo, TokenStore,
};
use rolecall_daemon::sources::RoleCredentials;
use rolecall_proto::api::{ErrorBody, ErrorCode, MintTokenRequest, RevokeTokenRequest};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

struct PerProfile {
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl CredentialProvider for PerProfile {
    async fn credentials(&self, profile: &str) -> Result<RoleCredentials, ErrorBody> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let account = match profile {
            "dev" => "111111111111",
            "prod" => "333333333333",
            _ => {
                return Err(ErrorBody::new(
                    ErrorCode::NotSignedIn,
                    "not signed in to source 'corp'",
                )
                .with_hint("rolecall login corp"))
            }
        };
        Ok(RoleCredentials {
            access_key_id: format!("ASIA{}", profile.to_uppercase()),
            secret_access_key: format!("SECRET-{profile}").into(),
            session_token: format!("SESSION-{profile}").into(),
            expiration: rolecall_proto::timefmt::now_epoch() + 3600,
            account_id: account.into(),
            role_arn: format!("arn:aws:sts::{account}:assumed-role/Dev/me"),
        })
    }

    fn profile(&self, profile: &str) -> Option<ProfileInfo> {
        matches!(profile, "dev" | "prod" | "cold").then(|| ProfileInfo {
            region: Some("eu-west-1".into()),
            role: "DeveloperAdmin".into(),
            source: "corp".into(),
        })
    }
}

struct Server {
    addr: SocketAddr,
    state: Arc<ContainerState>,
    provider: Arc<PerProfile>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(token_ttl: Duration) -> Server {
    let provider = Arc::new(PerProfile {
        calls: AtomicUsize::new(0),
    });
    let state = Arc::new(
        ContainerState::new(
            Arc::new(TokenStore::in_memory()),
            provider.clone(),
            "127.0.0.1:0",
        )
        .with_token_ttl(token_ttl),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel();
    let task = tokio::spawn(serve_container(listener, state.clone(), async {
        let _ = rx.await;
    }));
    Server {
        addr,
        state,
        provider,
        stop,
        task,
    }
}

impl Server {
    fn mint(&self, profile: &str) -> String {
        self.state
            .mint_token(&MintTokenRequest {
                profile: profile.into(),
                bound_pid: None,
            })
            .unwrap()
            .token
    }

    async fn get(&self, path: &str, host: &str, token: Option<&str>) -> (u16, String) {
        let auth = token
            .map(|t| format!("Authorization: {t}\r\n"))
            .unwrap_or_default();
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf).to_string();
        let status = text[9..12].parse().unwrap();
        let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
        (status, body.to_string())
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

#[tokio::test]
async fn the_token_selects_the_profile_and_the_reply_is_the_agents() {
    let srv = start(Duration::from_secs(3600)).await;
    let host = srv.addr.to_string();
    let dev = srv.mint("dev");
    let prod = srv.mint("prod");

    let (status, body) = srv.get("/v1/credentials", &host, Some(&dev)).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
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
    assert_eq!(v["AccessKeyId"], "ASIADEV");
    assert_eq!(v["Token"], "SESSION-dev");
    assert_eq!(v["AccountId"], "111111111111");
    assert!(v["Expiration"].as_str().unwrap().ends_with('Z'));

    let (status, body) = srv.get("/v1/credentials", &host, Some(&prod)).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["AccessKeyId"], "ASIAPROD");
    assert_eq!(v["AccountId"], "333333333333");

    // The profile route still wants its own profile's token.
    let (status, _) = srv.get("/v1/container/dev", &host, Some(&prod)).await;
    assert_eq!(status, 401);
    srv.stop().await;
}

#[tokio::test]
async fn missing_wrong_and_revoked_tokens_get_one_401_without_a_fetch() {
    let srv = start(Duration::from_secs(3600)).await;
    let host = srv.addr.to_string();
    let dev = srv.mint("dev");
    for (what, token) in [
        ("no token", None),
        ("wrong token", Some("rct_wrong")),
        ("empty token", Some("")),
        ("bearer prefix", Some(&*format!("Bearer {dev}"))),
    ] {
        let (status, body) = srv.get("/v1/credentials", &host, token).await;
        assert_eq!(status, 401, "{what}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["Code"], "Unauthorized", "{what}");
        assert!(v["Message"].as_str().unwrap().contains("--pod-identity"));
    }
    srv.state
        .revoke_tokens(&RevokeTokenRequest {
            id: None,
            profile: Some("dev".into()),
        })
        .unwrap();
    assert_eq!(srv.get("/v1/credentials", &host, Some(&dev)).await.0, 401);
    assert_eq!(srv.provider.calls.load(Ordering::SeqCst), 0);

    // A profile whose source needs a login answers that at once, as the profile route does.
    let cold = srv.mint("cold");
    let (status, body) = srv.get("/v1/credentials", &host, Some(&cold)).await;
    assert!(
        status >= 400 && body.contains("rolecall login corp"),
        "{status} {body}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn tokens_expire_on_this_route_too() {
    let srv = start(Duration::from_secs(1)).await;
    let host = srv.addr.to_string();
    let dev = srv.mint("dev");
    assert_eq!(srv.get("/v1/credentials", &host, Some(&dev)).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(srv.get("/v1/credentials", &host, Some(&dev)).await.0, 401);
    srv.stop().await;
}

#[tokio::test]
async fn the_forwarded_pod_identity_address_passes_the_host_check() {
    let srv = start(Duration::from_secs(3600)).await;
    let dev = srv.mint("dev");
    for host in ["169.254.170.23", "169.254.170.23:80", "169.254.170.2"] {
        let (status, body) = srv.get("/v1/credentials", host, Some(&dev)).await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    for host in ["169.254.170.23:8080", "169.254.170.24", "evil.example"] {
        let (status, body) = srv.get("/v1/credentials", host, Some(&dev)).await;
        assert_eq!(status, 403, "{host}: {body}");
    }
    srv.stop().await;
}
