//! The container credentials endpoint and the IMDSv2 emulation, through their real servers
//! (hyper, the connection limits, the Host/browser guard, the peer check, token and session
//! checks, routing) on loopback listeners started once per process. Each input is the raw
//! bytes a client sends on one connection.
//!
//! Input: one mode byte (bit 0: IMDS, else the container endpoint), then the request bytes, in
//! which `{H}` stands for the endpoint's `127.0.0.1:port`, `{T}` for a valid container token
//! of profile `dev` and `{S}` for a valid IMDS session token (the fuzzer cannot guess them).
//!
//! Property: the secret key appears in an answer only to a request that carried the token
//! (container) or session token (IMDS); every answer is HTTP/1.1.

use rolecall_daemon::serve::container::imds::{serve_imds, ImdsState};
use rolecall_daemon::serve::container::{
    serve_container, ContainerState, CredentialProvider, ProfileInfo, TokenStore,
};
use rolecall_daemon::sources::RoleCredentials;
use rolecall_proto::api::{ErrorBody, ErrorCode, MintTokenRequest};
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use zeroize::Zeroizing;

/// The secret the fake provider hands out; it must never reach a caller without a token.
const SECRET: &str = "fuzzSecretAccessKeyServedOnlyWithAToken";

/// Answers profile `dev` with fixed credentials, knows no other profile.
struct Fixed;

#[async_trait::async_trait]
impl CredentialProvider for Fixed {
    async fn credentials(&self, profile: &str) -> Result<RoleCredentials, ErrorBody> {
        if profile != "dev" {
            return Err(ErrorBody::new(ErrorCode::UnknownProfile, "no such profile"));
        }
        Ok(RoleCredentials {
            access_key_id: "ASIAFUZZFUZZFUZZFUZZ".into(),
            secret_access_key: Zeroizing::new(SECRET.into()),
            session_token: Zeroizing::new("fuzz-session-token".into()),
            expiration: rolecall_proto::timefmt::now_epoch() + 3600,
            account_id: "111122223333".into(),
            role_arn: "arn:aws:iam::111122223333:role/Dev".into(),
        })
    }

    fn profile(&self, profile: &str) -> Option<ProfileInfo> {
        (profile == "dev").then(|| ProfileInfo {
            region: Some("eu-west-1".into()),
            role: "arn:aws:iam::111122223333:role/Dev".into(),
            source: "corp".into(),
        })
    }
}

struct Rig {
    container: SocketAddr,
    imds: SocketAddr,
    token: String,
    session: String,
}

fn rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a tokio runtime");
            rt.block_on(async move {
                let provider: Arc<dyn CredentialProvider> = Arc::new(Fixed);
                let state = Arc::new(ContainerState::new(
                    Arc::new(TokenStore::in_memory()),
                    provider.clone(),
                    "127.0.0.1:0",
                ));
                let token = state
                    .mint_token(&MintTokenRequest {
                        profile: "dev".into(),
                        bound_pid: None,
                    })
                    .expect("a token for dev")
                    .token;
                let cl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let container = cl.local_addr().unwrap();
                tokio::spawn(serve_container(cl, state, std::future::pending()));
                let imds_state = Arc::new(ImdsState::new(provider, "dev").expect("dev exists"));
                let il = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let imds = il.local_addr().unwrap();
                tokio::spawn(serve_imds(il, imds_state, std::future::pending()));
                tx.send((container, imds, token)).unwrap();
                std::future::pending::<()>().await;
            });
        });
        let (container, imds, token) = rx.recv().expect("the servers start");
        let put = format!(
            "PUT /latest/api/token HTTP/1.1\r\nHost: {imds}\r\n\
             X-aws-ec2-metadata-token-ttl-seconds: 21600\r\nConnection: close\r\n\r\n"
        );
        // A fuzzer at nice 19 on a loaded machine can wait longer than one read timeout for
        // its own server thread: retry before calling the rig broken.
        let mut session = None;
        let mut reply = String::new();
        for _ in 0..5 {
            reply = String::from_utf8(exchange(imds, put.as_bytes(), false)).unwrap();
            session = reply
                .split("\r\n\r\n")
                .nth(1)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            if session.is_some() {
                break;
            }
        }
        let session = session.unwrap_or_else(|| panic!("no IMDS session token: {reply:?}"));
        // A used session is the last one evicted when fuzz inputs fill the session table.
        let get = format!(
            "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1\r\nHost: {imds}\r\n\
             X-aws-ec2-metadata-token: {session}\r\nConnection: close\r\n\r\n"
        );
        let reply = String::from_utf8(exchange(imds, get.as_bytes(), false)).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");
        Rig {
            container,
            imds,
            token,
            session,
        }
    })
}

/// Sends `request` on a fresh connection and reads everything answered. Without `half_close`
/// the request must end the connection itself (`Connection: close`). With it, the client
/// shuts down its write side after the request, so any input ends the exchange; hyper (with
/// its default `half_close(false)`) may then close without answering a request still in
/// flight: an empty answer is possible and not a failure.
fn exchange(addr: SocketAddr, request: &[u8], half_close: bool) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("the endpoint accepts connections");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The server may answer and close before reading everything: write errors are expected.
    let _ = s.write_all(request);
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

pub fn run(data: &[u8]) {
    let _ = answer(data);
}

/// Sends the input (placeholders filled in) and checks the answer, which it returns.
pub fn answer(data: &[u8]) -> Vec<u8> {
    let Some((&mode, raw)) = data.split_first() else {
        return Vec::new();
    };
    let rig = rig();
    let imds = mode & 1 != 0;
    let addr = if imds { rig.imds } else { rig.container };
    let mut request = replace(raw, b"{H}", addr.to_string().as_bytes());
    request = replace(&request, b"{T}", rig.token.as_bytes());
    request = replace(&request, b"{S}", rig.session.as_bytes());
    let reply = exchange(addr, &request, true);

    assert!(
        reply.is_empty() || reply.starts_with(b"HTTP/1.1 ") || reply.starts_with(b"HTTP/1.0 "),
        "not an HTTP/1.x answer: {:?}",
        String::from_utf8_lossy(&reply[..reply.len().min(80)])
    );
    if contains(&reply, SECRET.as_bytes()) {
        let key: &str = if imds { &rig.session } else { &rig.token };
        assert!(
            contains(&request, key.as_bytes()),
            "credentials served without the token: {:?}",
            String::from_utf8_lossy(&request)
        );
    }
    reply
}
