//! Container tokens of scoped sessions (`rolecall exec --read-only`) over a real loopback
//! socket: such a token is served only the scoped session's credentials — on the profile route
//! and on the Pod Identity route, and still after the token store is reloaded from the vault
//! (a daemon restart) — never the profile's own. The provider hands out fixed keys; the real
//! daemon, CLI and boto3 against the sandbox are in `tests/py/test_e2e_scoped.py`.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use rolecall_daemon::serve::container::{
    serve_container, ContainerState, CredentialProvider, ProfileInfo, StoredToken, TokenStore,
    TokenVault,
};
use rolecall_daemon::sources::RoleCredentials;
use rolecall_proto::api::{ErrorBody, MintTokenRequest};
use rolecall_proto::scope::{SessionScope, READ_ONLY_POLICY_ARN};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

fn creds(key: String) -> RoleCredentials {
    RoleCredentials {
        access_key_id: key,
        secret_access_key: "S".to_string().into(),
        session_token: "T".to_string().into(),
        expiration: rolecall_proto::timefmt::now_epoch() + 3600,
        account_id: "222222222222".into(),
        role_arn: "arn:aws:iam::222222222222:role/Deployer".into(),
    }
}

/// Plain keys `ASIAPLAIN`; a scoped session's keys name its policy hash.
struct Provider;

#[async_trait::async_trait]
impl CredentialProvider for Provider {
    async fn credentials(&self, _profile: &str) -> Result<RoleCredentials, ErrorBody> {
        Ok(creds("ASIAPLAIN".into()))
    }

    async fn scoped_credentials(
        &self,
        _profile: &str,
        scope: &SessionScope,
    ) -> Result<RoleCredentials, ErrorBody> {
        Ok(creds(format!("ASIASCOPED-{}", scope.policy_hash())))
    }

    fn profile(&self, profile: &str) -> Option<ProfileInfo> {
        matches!(profile, "dev" | "prod").then(|| ProfileInfo {
            region: Some("eu-west-1".into()),
            role: "arn:aws:iam::222222222222:role/Deployer".into(),
            source: "corp".into(),
        })
    }
}

#[derive(Default)]
struct MemVault(Mutex<Vec<StoredToken>>);

impl TokenVault for MemVault {
    fn load(&self) -> Result<Vec<StoredToken>, String> {
        Ok(self.0.lock().unwrap().clone())
    }
    fn save(&self, tokens: &[StoredToken]) -> Result<(), String> {
        *self.0.lock().unwrap() = tokens.to_vec();
        Ok(())
    }
}

struct Server {
    addr: SocketAddr,
    state: Arc<ContainerState>,
    stop: oneshot::Sender<()>,
}

async fn start(vault: Arc<MemVault>) -> Server {
    let tokens = Arc::new(TokenStore::load(vault).unwrap());
    let state = Arc::new(ContainerState::new(
        tokens,
        Arc::new(Provider),
        "127.0.0.1:0",
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel();
    tokio::spawn(serve_container(listener, state.clone(), async {
        let _ = rx.await;
    }));
    Server { addr, state, stop }
}

async fn get(addr: SocketAddr, path: &str, token: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

fn key_of(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["AccessKeyId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_scoped_token_is_served_its_scoped_session_only() {
    let vault = Arc::new(MemVault::default());
    let srv = start(vault.clone()).await;
    let scope = SessionScope {
        policy_arns: vec![READ_ONLY_POLICY_ARN.into()],
        source_identity: Some("rolecall-exec@agent".into()),
        ..Default::default()
    };
    let scoped_key = format!("ASIASCOPED-{}", scope.policy_hash());
    let scoped = srv
        .state
        .mint_scoped_token("dev", Some(std::process::id()), scope.clone())
        .unwrap();
    let plain = srv
        .state
        .mint_token(&MintTokenRequest {
            profile: "dev".into(),
            bound_pid: None,
        })
        .unwrap();

    let (status, body) = get(srv.addr, "/v1/container/dev", &scoped.token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(key_of(&body), scoped_key);
    let (status, body) = get(srv.addr, "/v1/credentials", &scoped.token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(key_of(&body), scoped_key, "the Pod Identity route too");
    let (_, body) = get(srv.addr, "/v1/container/dev", &plain.token).await;
    assert_eq!(key_of(&body), "ASIAPLAIN");
    // Another profile's route: refused, as any token of another profile.
    let (status, _) = get(srv.addr, "/v1/container/prod", &scoped.token).await;
    assert_eq!(status, 401);

    // A restarted daemon loads the scope with the token.
    let _ = srv.stop.send(());
    let again = start(vault).await;
    let (status, body) = get(again.addr, "/v1/container/dev", &scoped.token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(key_of(&body), scoped_key);
    let _ = again.stop.send(());
}

#[tokio::test]
async fn scopes_are_checked_when_minted() {
    let srv = start(Arc::new(MemVault::default())).await;
    let empty = srv
        .state
        .mint_scoped_token("dev", None, SessionScope::default())
        .unwrap_err();
    assert!(
        empty.message.contains("needs a session policy"),
        "{empty:?}"
    );
    let unpacked = SessionScope {
        policy: Some("{ \"Statement\": [] }".into()),
        ..Default::default()
    };
    assert!(srv.state.mint_scoped_token("dev", None, unpacked).is_err());
    let _ = srv.stop.send(());
}
