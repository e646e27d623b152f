//! The entra-oidc source with `moto` (tests/.venv/bin/moto_server, a second, independent STS
//! implementation) as its STS: the sandbox issues the Entra ID token, moto answers
//! `AssumeRoleWithWebIdentity`, and moto's `GetCallerIdentity`, signed with the returned
//! credentials by the AWS SDK, names the assumed role and the UPN session.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod rig;

use aws_credential_types::Credentials;
use rolecall_daemon::config::{
    EntraOidcConfig, FlowKind, OidcTokenKind, ProfileConfig, SecretStoreKind, SourceConfig,
};
use rolecall_daemon::sources::{build, LoginOptions, SourceContext};
use rolecall_daemon::vault::SecretStore;
use rolecall_sandbox::pending::{Decision, Selector};
use rolecall_sandbox::SandboxOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const ROLE: &str = "arn:aws:iam::444444444444:role/EntraOidcDeveloper";
const ALICE: &str = "alice@contoso.onmicrosoft.com";

/// moto_server on a loopback port, killed on drop.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_moto() -> Moto {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/.venv/bin/moto_server");
    assert!(
        bin.is_file(),
        "{} is missing: create tests/.venv (tests/py/requirements.txt)",
        bin.display()
    );
    let port = free_port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http
            .get(format!("{}/moto-api/", moto.url))
            .send()
            .await
            .is_ok()
        {
            return moto;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto_server did not answer on {}", moto.url);
}

#[tokio::test]
async fn moto_sts_accepts_the_sandbox_issued_id_token() {
    let sb = rolecall_sandbox::start(SandboxOptions::default())
        .await
        .unwrap();
    let moto = start_moto().await;
    let tmp = tempfile::tempdir().unwrap();
    let vault = SecretStore::open(&tmp.path().join("state"), SecretStoreKind::File).unwrap();
    let cfg = EntraOidcConfig {
        tenant: sb.sandbox.dir().tenant.id.clone(),
        client_id: "11111111-1111-4111-8111-111111111111".into(),
        flow: Some(FlowKind::Device),
        token: OidcTokenKind::IdToken,
        scope: None,
        role_session_name: None,
        authority: Some(sb.base_url.clone()),
        region: Some("us-east-1".into()),
        endpoint_url: Some(moto.url.clone()),
    };
    let mut ctx = SourceContext::new(
        vault.clone(),
        Arc::new(Default::default()),
        tmp.path().to_path_buf(),
    );
    ctx.login_timeout = Duration::from_secs(20);
    let source = build("headless", &SourceConfig::EntraOidc(cfg), &ctx).unwrap();

    let (tx, mut rx) = rig::sources::progress("headless");
    let src = source.clone();
    let login = tokio::spawn(async move { src.login(LoginOptions::default(), &tx).await });
    let code = rig::sources::user_code(&mut rx).await;
    let sel = Selector {
        user_code: Some(code),
        ..Selector::default()
    };
    let approved = Decision::Approved { user: ALICE.into() };
    assert_eq!(sb.sandbox.pending.decide(&sel, approved), 1);
    login.await.unwrap().unwrap();

    let profile = ProfileConfig {
        source: "headless".into(),
        account: None,
        account_name: None,
        role: ROLE.into(),
        principal: None,
        region: None,
        warm: false,
        duration: Some(Duration::from_secs(2 * 3600)),
        ..Default::default()
    };
    let c = source.credentials(&profile).await.unwrap();
    assert_eq!(c.account_id, "444444444444");
    assert!(c.expiration > 0);
    // The sandbox's STS was not involved.
    assert_eq!(sb.sandbox.faults.count("sts:AssumeRoleWithWebIdentity"), 0);

    // moto knows these credentials: a signed GetCallerIdentity names the role and the UPN.
    let creds = Credentials::new(
        c.access_key_id.clone(),
        c.secret_access_key.to_string(),
        Some(c.session_token.to_string()),
        None,
        "test",
    );
    let conf = aws_sdk_sts::config::Builder::new()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(creds)
        .build();
    let who = aws_sdk_sts::Client::from_conf(conf)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.account(), Some("444444444444"));
    assert_eq!(
        who.arn(),
        Some(format!("arn:aws:sts::444444444444:assumed-role/EntraOidcDeveloper/{ALICE}").as_str())
    );
}
