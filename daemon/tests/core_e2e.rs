//! The real `rolecalld` against the real sandbox (in-process, on loopback): an automatic login
//! started by a credential request, joined and long-polled over the socket, then many
//! concurrent clients served by one upstream call, `whoami` through the AWS SDK's STS client,
//! and a restart that costs no login.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod rig;
use rig::Daemon;

use rolecall_sandbox::pending::{Decision, Selector};
use rolecall_sandbox::{RunningSandbox, SandboxOptions};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// One request on a fresh connection: (status, JSON body).
async fn call_async(socket: PathBuf, method: &'static str, path: String) -> (u16, Value) {
    let r = rig::request_async(&socket, method, &path).await;
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

struct Rig {
    sb: RunningSandbox,
    daemon: Daemon,
}

impl Rig {
    async fn new() -> Self {
        let sb = rolecall_sandbox::start(SandboxOptions::default())
            .await
            .unwrap();
        let (start_url, region) = {
            let d = sb.sandbox.dir();
            (
                d.identity_center.start_url.clone(),
                d.identity_center.region.clone(),
            )
        };
        let config = format!(
            r#"[daemon]
container_listen = "127.0.0.1:0"
secret_store = "file"

[sources.corp]
kind = "identity-center"
start_url = "{start_url}"
region = "{region}"
flow = "device"
endpoint_url = "{}"

[profiles.dev]
source = "corp"
account = "111111111111"
role = "DeveloperAdmin"
region = "eu-west-1"
"#,
            sb.base_url
        );
        let mut rig = Rig {
            sb,
            daemon: Daemon::prepare(Some(&config)),
        };
        rig.start_daemon();
        rig
    }

    fn socket(&self) -> PathBuf {
        self.daemon.socket()
    }

    fn start_daemon(&mut self) {
        // Its log is not read here: a pipe nobody drains would stall a chatty daemon.
        let child = self
            .daemon
            .command()
            .arg("--foreground")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.daemon.child = Some(child);
        self.daemon.wait_ready();
    }

    async fn stop_daemon(&mut self) {
        let (status, _) = call_async(self.socket(), "POST", "/v1/shutdown".into()).await;
        assert_eq!(status, 200);
        let mut child = self.daemon.child.take().unwrap();
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success());
    }

    fn count(&self, op: &str) -> u64 {
        self.sb.sandbox.faults.count(op)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_login_single_flight_whoami_and_restart() {
    let mut rig = Rig::new().await;
    let socket = rig.socket();

    // Before anything is asked, the prompt snapshot already says a login is needed.
    let snap_path = rig.daemon.dir.path().join("run/status.json");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let snap: Value = std::fs::read(&snap_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        if snap["profiles"]["dev"]["needs_login"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "snapshot never said needs_login: {snap}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A non-interactive caller fails at once with the hint; a login has started meanwhile.
    let started = Instant::now();
    let (status, body) = call_async(socket.clone(), "GET", "/v1/credentials/dev".into()).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["message"], "not signed in to source 'corp'");
    assert_eq!(body["error"]["hint"], "rolecall login corp");

    // More callers join that one login instead of starting their own.
    for _ in 0..5 {
        let (status, _) = call_async(socket.clone(), "GET", "/v1/credentials/dev".into()).await;
        assert_eq!(status, 503);
    }
    let (_, state) = call_async(socket.clone(), "POST", "/v1/login/corp".into()).await;
    assert_eq!(state["phase"], "pending", "{state}");

    // The device code shows up on the login's state; approving it completes the login.
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        let (_, st) = call_async(socket.clone(), "GET", "/v1/login/corp?wait=0".into()).await;
        if let Some(c) = st["user_code"].as_str() {
            break c.to_string();
        }
        assert!(Instant::now() < deadline, "no user code published: {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rig.count("ssooidc:StartDeviceAuthorization"), 1);
    let poll = tokio::spawn(call_async(
        socket.clone(),
        "GET",
        "/v1/login/corp?wait=30".into(),
    ));
    let decided = rig.sb.sandbox.pending.decide(
        &Selector {
            user_code: Some(code),
            ..Selector::default()
        },
        Decision::Approved {
            user: "alice@contoso.onmicrosoft.com".into(),
        },
    );
    assert_eq!(decided, 1);
    let (_, st) = poll.await.unwrap();
    assert_eq!(st["phase"], "succeeded", "{st}");

    // 64 concurrent clients: one GetRoleCredentials upstream, one answer for all.
    let before = rig.count("sso:GetRoleCredentials");
    let mut tasks = Vec::new();
    for _ in 0..64 {
        tasks.push(tokio::spawn(call_async(
            socket.clone(),
            "GET",
            "/v1/credentials/dev".into(),
        )));
    }
    let mut keys = std::collections::HashSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["Version"], 1);
        assert_eq!(body["AccountId"], "111111111111");
        let exp = body["Expiration"].as_str().unwrap();
        assert!(exp.ends_with('Z') && exp.len() == 20, "{exp}");
        keys.insert(body["AccessKeyId"].as_str().unwrap().to_string());
    }
    assert_eq!(keys.len(), 1);
    assert_eq!(rig.count("sso:GetRoleCredentials") - before, 1);

    // whoami: the real STS client, signed with those keys, names the permission set's role.
    let (status, id) = call_async(socket.clone(), "GET", "/v1/whoami/dev".into()).await;
    assert_eq!(status, 200, "{id}");
    assert_eq!(id["account"], "111111111111");
    assert!(
        id["arn"]
            .as_str()
            .unwrap()
            .contains("AWSReservedSSO_DeveloperAdmin"),
        "{id}"
    );
    assert_eq!(rig.count("sts:GetCallerIdentity"), 1);

    // status and the prompt snapshot show the session and the expiry.
    let (_, status) = call_async(socket.clone(), "GET", "/v1/status".into()).await;
    assert_eq!(status["sources"][0]["signed_in"], true, "{status}");
    let expires = status["profiles"][0]["expires"].as_i64().unwrap();
    let snap: Value = serde_json::from_slice(
        &std::fs::read(rig.daemon.dir.path().join("run/status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(snap["profiles"]["dev"]["expires"].as_i64(), Some(expires));
    assert_eq!(snap["profiles"]["dev"]["needs_login"], false);
    // Nothing secret in the snapshot or the log.
    let secret = {
        let (_, c) = call_async(socket.clone(), "GET", "/v1/credentials/dev".into()).await;
        c["SecretAccessKey"].as_str().unwrap().to_string()
    };
    let log = std::fs::read_to_string(rig.daemon.dir.path().join("state/rolecalld.log")).unwrap();
    assert!(!log.contains(&secret));
    assert!(!snap.to_string().contains(&secret));

    // A restart costs no login: the session lives in the secret store.
    rig.stop_daemon().await;
    rig.start_daemon();
    let (status, body) = call_async(socket.clone(), "GET", "/v1/credentials/dev".into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rig.count("ssooidc:StartDeviceAuthorization"), 1);

    // Logout forgets the session and the cached credentials with it.
    let (status, _) = call_async(socket.clone(), "POST", "/v1/logout".into()).await;
    assert_eq!(status, 200);
    let (status, body) = call_async(socket.clone(), "GET", "/v1/credentials/dev".into()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "not_signed_in");
    let (_, st) = call_async(socket.clone(), "GET", "/v1/status".into()).await;
    assert_eq!(st["sources"][0]["signed_in"], false, "{st}");
    rig.stop_daemon().await;
}
