//! The container endpoint and IMDS servers over real loopback sockets: what they answer, what
//! they refuse, and that good clients keep being served under abuse.
//!
//! The unit under test is the serving layer, which by design does not know where credentials
//! come from; the provider here hands out fixed keys for "dev" and answers "not signed in" for
//! "cold", the two outcomes the broker gives it. The end-to-end tests with the real broker,
//! the sandbox and real SDKs are in `tests/py/test_e2e_container*.py` and `tests/js/`.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use rolecall_daemon::serve::container::imds::{serve_imds, ImdsState};
use rolecall_daemon::serve::container::{
    serve_container, ContainerState, CredentialProvider, Limits, ProfileInfo, TokenStore,
};
use rolecall_daemon::sources::RoleCredentials;
use rolecall_proto::api::{ErrorBody, ErrorCode, MintTokenRequest, RevokeTokenRequest};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

struct FixedProvider {
    calls: AtomicUsize,
    lifetime: i64,
}

#[async_trait::async_trait]
impl CredentialProvider for FixedProvider {
    async fn credentials(&self, profile: &str) -> Result<RoleCredentials, ErrorBody> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match profile {
            "dev" | "prod" => Ok(RoleCredentials {
                access_key_id: format!("ASIA{}", profile.to_uppercase()),
                secret_access_key: "SECRETKEYVALUE".to_string().into(),
                session_token: "SESSIONTOKENVALUE".to_string().into(),
                expiration: rolecall_proto::timefmt::now_epoch() + self.lifetime,
                account_id: "111111111111".into(),
                role_arn: "arn:aws:sts::111111111111:assumed-role/Dev/me".into(),
            }),
            _ => Err(
                ErrorBody::new(ErrorCode::NotSignedIn, "not signed in to source 'corp'")
                    .with_hint("rolecall login corp"),
            ),
        }
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
    provider: Arc<FixedProvider>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(limits: Limits, lifetime: i64) -> Server {
    start_with_ttl(limits, lifetime, Duration::from_secs(12 * 3600)).await
}

async fn start_with_ttl(limits: Limits, lifetime: i64, token_ttl: Duration) -> Server {
    let provider = Arc::new(FixedProvider {
        calls: AtomicUsize::new(0),
        lifetime,
    });
    let state = Arc::new(
        ContainerState::new(
            Arc::new(TokenStore::in_memory()),
            provider.clone(),
            "127.0.0.1:0",
        )
        .with_limits(limits)
        .with_token_ttl(token_ttl),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(serve_container(listener, state.clone(), async {
        let _ = rx.await;
    }));
    Server {
        addr,
        state,
        provider,
        stop: Some(tx),
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

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

/// One request on a fresh connection (`Connection: close`); answers (status, body).
async fn raw(addr: SocketAddr, head: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    parse(&buf)
}

fn parse(buf: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(buf).to_string();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

/// A request for profile `dev` with `token` that leaves the connection open.
fn keep_alive_request(addr: SocketAddr, token: &str) -> String {
    format!("GET /v1/container/dev HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {token}\r\n\r\n")
}

async fn get(addr: SocketAddr, path: &str, host: &str, extra: &str) -> (u16, String) {
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"),
    )
    .await
}

#[tokio::test]
async fn serves_the_container_json_to_the_right_token_only() {
    let srv = start(Limits::default(), 3600).await;
    let host = srv.addr.to_string();
    let dev = srv.mint("dev");
    let prod = srv.mint("prod");

    let (status, body) = get(
        srv.addr,
        "/v1/container/dev",
        &host,
        &format!("Authorization: {dev}\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Field order as AWS documents it (serde_json sorts keys on parse: check the raw text).
    let at = |k: &str| body.find(&format!("\"{k}\"")).unwrap_or(usize::MAX);
    let order = [
        "AccessKeyId",
        "SecretAccessKey",
        "Token",
        "Expiration",
        "RoleArn",
        "AccountId",
    ];
    assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 6);
    assert_eq!(v["AccessKeyId"], "ASIADEV");
    assert!(v["Expiration"].as_str().unwrap().ends_with('Z'));

    let refusals = [
        ("no token", String::new()),
        ("wrong token", "Authorization: rct_wrong\r\n".to_string()),
        ("other profile", format!("Authorization: {prod}\r\n")),
        ("bearer prefix", format!("Authorization: Bearer {dev}\r\n")),
    ];
    for (what, extra) in refusals {
        let (status, body) = get(srv.addr, "/v1/container/dev", &host, &extra).await;
        assert_eq!(status, 401, "{what}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["Code"], "Unauthorized", "{what}");
        assert!(!body.contains("SECRETKEYVALUE"));
    }

    srv.state
        .revoke_tokens(&RevokeTokenRequest {
            id: None,
            profile: Some("dev".into()),
        })
        .unwrap();
    let (status, _) = get(
        srv.addr,
        "/v1/container/dev",
        &host,
        &format!("Authorization: {dev}\r\n"),
    )
    .await;
    assert_eq!(status, 401, "revoked token");
    let (status, _) = get(
        srv.addr,
        "/v1/container/prod",
        &host,
        &format!("Authorization: {prod}\r\n"),
    )
    .await;
    assert_eq!(status, 200, "another profile's token still works");
    // Refused requests never reached the provider.
    assert_eq!(srv.provider.calls.load(Ordering::SeqCst), 2);
    srv.stop().await;
}

#[tokio::test]
async fn minting_names_the_bound_address_and_refuses_unknown_profiles() {
    let srv = start(Limits::default(), 3600).await;
    let reply = srv
        .state
        .mint_token(&MintTokenRequest {
            profile: "dev".into(),
            bound_pid: None,
        })
        .unwrap();
    assert_eq!(
        reply.full_uri,
        format!("http://{}/v1/container/dev", srv.addr)
    );
    assert_eq!(reply.relative_uri, "/v1/container/dev");
    assert_eq!(reply.region.as_deref(), Some("eu-west-1"));
    let err = srv
        .state
        .mint_token(&MintTokenRequest {
            profile: "nope".into(),
            bound_pid: None,
        })
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownProfile);
    srv.stop().await;
}

#[tokio::test]
async fn a_needed_login_is_answered_at_once_with_code_and_message() {
    let srv = start(Limits::default(), 3600).await;
    let cold = srv.mint("cold");
    let t = Instant::now();
    let (status, body) = get(
        srv.addr,
        "/v1/container/cold",
        &srv.addr.to_string(),
        &format!("Authorization: {cold}\r\n"),
    )
    .await;
    assert!(t.elapsed() < Duration::from_millis(500));
    assert_eq!(status, 503);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Code"], "NotSignedIn");
    assert_eq!(
        v["Message"],
        "not signed in to source 'corp' — run: rolecall login corp"
    );
    srv.stop().await;
}

#[tokio::test]
async fn foreign_hosts_origins_bodies_and_huge_headers_are_refused() {
    let srv = start(Limits::default(), 3600).await;
    let dev = srv.mint("dev");
    let auth = format!("Authorization: {dev}\r\n");
    let host = srv.addr.to_string();

    let (s, body) = get(srv.addr, "/v1/container/dev", "evil.example", &auth).await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["Code"],
        "Forbidden"
    );
    let (s, _) = get(
        srv.addr,
        "/v1/container/dev",
        &format!("evil.example:{}", srv.addr.port()),
        &auth,
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = get(
        srv.addr,
        "/v1/container/dev",
        &host,
        &format!("{auth}Origin: http://evil.example\r\n"),
    )
    .await;
    assert_eq!(s, 403);
    // The forwarded link-local name and localhost are fine.
    for ok in ["169.254.170.2", "169.254.170.2:80", "localhost"] {
        let (s, _) = get(srv.addr, "/v1/container/dev", ok, &auth).await;
        assert_eq!(s, 200, "{ok}");
    }
    let (s, _) = raw(
        srv.addr,
        &format!("POST /v1/container/dev HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Length: 5\r\nConnection: close\r\n\r\nhello"),
    )
    .await;
    assert_eq!(s, 413);
    let (s, _) = raw(
        srv.addr,
        &format!(
            "DELETE /v1/container/dev HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(s, 405);
    let (s, _) = get(srv.addr, "/v1/container/dev/x", &host, &auth).await;
    assert_eq!(s, 404);

    // A 1 MiB header: refused with 431 (hyper's answer to a head over `max_header_bytes`),
    // without buffering it all. One defined answer: a connection cut without it fails too.
    let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let head = format!(
        "GET /v1/container/dev HTTP/1.1\r\nHost: {host}\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    s.write_all(head.as_bytes())
        .await
        .expect("the whole oversized request is taken (and dropped)");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .await
        .expect("the reply, then a clean close");
    assert_eq!(parse(&buf).0, 431, "{}", String::from_utf8_lossy(&buf));
    // Still serving.
    let (s, _) = get(srv.addr, "/v1/container/dev", &host, &auth).await;
    assert_eq!(s, 200);
    srv.stop().await;
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let srv = start(Limits::default(), 3600).await;
    let dev = srv.mint("dev");
    let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let req = keep_alive_request(srv.addr, &dev);
    for _ in 0..3 {
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(parse(&buf[..n]).0, 200);
    }
    srv.stop().await;
}

/// `printf 'GET …' | nc -N host port` and some scripts shut down their write side once the
/// request is sent: the reply must still come, every time.
#[tokio::test]
async fn a_client_that_half_closes_after_its_request_is_answered() {
    let srv = start(Limits::default(), 3600).await;
    let dev = srv.mint("dev");
    let req = keep_alive_request(srv.addr, &dev);
    for attempt in 0..200 {
        let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        s.shutdown().await.unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        assert!(
            !buf.is_empty(),
            "attempt {attempt}: closed without an answer"
        );
        assert_eq!(parse(&buf).0, 200, "attempt {attempt}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(400),
        ..Limits::default()
    };
    let srv = start(limits, 3600).await;
    // Nothing sent at all.
    let mut idle = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    // Half a request head, then silence (slowloris).
    let mut slow = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    slow.write_all(b"GET /v1/container/dev HTTP/1.1\r\nHost: ")
        .await
        .unwrap();
    for s in [&mut idle, &mut slow] {
        let mut buf = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        assert!(r.is_ok(), "connection was not closed");
    }
    srv.stop().await;
}

#[tokio::test]
async fn after_a_reply_the_next_head_must_arrive_in_time_however_it_trickles() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(600),
        ..Limits::default()
    };
    let srv = start(limits, 3600).await;
    let dev = srv.mint("dev");
    let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let req = keep_alive_request(srv.addr, &dev);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert_eq!(parse(&buf[..n]).0, 200);
    // The next head, one byte every 50 ms: each byte is traffic (the idle limit is far), but
    // the head is not whole within 300 ms of the reply.
    let started = tokio::time::Instant::now();
    let closed = async {
        for b in req.as_bytes() {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let r = tokio::time::timeout(Duration::from_secs(5), closed).await;
    assert!(r.is_ok(), "the trickling connection was not closed");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "closed before its deadline ({took:?})"
    );
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "no reply to the late head");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_do_not_lock_out_good_clients() {
    // Long timeouts: only the eviction can close the idle sockets while the test runs.
    let limits = Limits {
        idle_timeout: Duration::from_secs(600),
        header_read_timeout: Duration::from_secs(600),
        ..Limits::default()
    };
    let srv = start(limits, 3600).await;
    let dev = srv.mint("dev");
    let addr = srv.addr;
    let flood = std::thread::spawn(move || {
        let mut held = Vec::with_capacity(10_000);
        let mut refused = 0;
        for _ in 0..10_000 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
                Ok(s) => held.push(s),
                Err(_) => refused += 1,
            }
        }
        (held, refused)
    });
    // The good client runs on its own thread with blocking sockets, as a separate process would:
    // on the server's runtime it waited behind thousands of connection tasks between its
    // connect and its write, long enough for 256 newer sockets to make it the oldest idle one.
    let host = addr.to_string();
    let request = format!(
        "GET /v1/container/dev HTTP/1.1\r\nHost: {host}\r\nAuthorization: {dev}\r\nConnection: close\r\n\r\n"
    );
    let flood_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = flood_done.clone();
    let good = std::thread::spawn(move || {
        let (mut worst, mut served) = (Duration::ZERO, 0);
        while !done.load(Ordering::Acquire) || served < 50 {
            let t = Instant::now();
            let reply = blocking_request(addr, &request);
            assert_eq!(
                reply.get(9..12),
                Some("200"),
                "a good client was refused: {reply:?}"
            );
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "a good client was not served within 5 s"
            );
            worst = worst.max(t.elapsed());
            served += 1;
            // Leave the two shared cores to the flood and the server.
            std::thread::sleep(Duration::from_millis(5));
        }
        (served, worst)
    });
    let (held, refused) = tokio::task::spawn_blocking(move || flood.join().unwrap())
        .await
        .unwrap();
    flood_done.store(true, Ordering::Release);
    let (served, worst) = tokio::task::spawn_blocking(move || good.join())
        .await
        .unwrap()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
    eprintln!(
        "served {served} good requests during the flood (worst {worst:?}); {} idle connections opened, {refused} refused",
        held.len()
    );
    // Every connection was accepted: the cap evicts idle sockets instead of refusing anyone.
    assert_eq!(held.len(), 10_000, "{refused} connections were refused");
    // The daemon keeps at most `max_connections` open and closed every idle socket it evicted:
    // those read EOF (or a reset); the others would block.
    let cap = Limits::default().max_connections;
    let mut closed = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while closed < held.len() - cap && Instant::now() < deadline {
        closed = held.iter().filter(|s| closed_by_peer(s)).count();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open = held.len() - closed;
    eprintln!("the daemon closed {closed} of the idle connections, {open} still open");
    assert!(
        open <= cap,
        "{open} idle connections still open, more than the cap of {cap}"
    );
    assert!(
        open > 0,
        "every idle connection was closed: the newest were within the cap and the idle timeout"
    );
    drop(held);
    let (s, _) = get(
        addr,
        "/v1/container/dev",
        &host,
        &format!("Authorization: {dev}\r\n"),
    )
    .await;
    assert_eq!(s, 200);
    srv.stop().await;
}

/// One request on a fresh blocking connection (`Connection: close`); the whole reply as text.
fn blocking_request(addr: SocketAddr, request: &str) -> String {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    std::io::Write::write_all(&mut s, request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Whether the peer closed this socket (EOF or reset), without waiting: a live idle connection
/// has nothing to read.
fn closed_by_peer(s: &std::net::TcpStream) -> bool {
    let mut b = [0u8; 1];
    s.set_nonblocking(true).unwrap();
    let r = s.peek(&mut b);
    s.set_nonblocking(false).unwrap();
    match r {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

#[tokio::test]
async fn imds_v2_serves_its_one_profile_with_a_session_token() {
    let provider = Arc::new(FixedProvider {
        calls: AtomicUsize::new(0),
        lifetime: 3600,
    });
    let state = Arc::new(ImdsState::new(provider.clone(), "dev").unwrap());
    assert!(ImdsState::new(provider.clone(), "nope").is_none());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_imds(listener, state, async {
        let _ = rx.await;
    }));
    let host = addr.to_string();
    let put = |ttl: &str, extra: &str| {
        format!("PUT /latest/api/token HTTP/1.1\r\nHost: {host}\r\nx-aws-ec2-metadata-token-ttl-seconds: {ttl}\r\n{extra}Connection: close\r\n\r\n")
    };
    for bad in ["0", "21601", "x"] {
        assert_eq!(raw(addr, &put(bad, "")).await.0, 400, "ttl {bad}");
    }
    assert_eq!(
        raw(addr, &put("60", "X-Forwarded-For: 1.2.3.4\r\n"))
            .await
            .0,
        403
    );
    let (s, token) = raw(addr, &put("60", "")).await;
    assert_eq!(s, 200);
    let path = "/latest/meta-data/iam/security-credentials/";
    assert_eq!(get(addr, path, &host, "").await.0, 401);
    assert_eq!(
        get(addr, path, &host, "x-aws-ec2-metadata-token: nope\r\n")
            .await
            .0,
        401
    );
    let hdr = format!("x-aws-ec2-metadata-token: {token}\r\n");
    let (s, role) = get(addr, path, &host, &hdr).await;
    assert_eq!((s, role.as_str()), (200, "DeveloperAdmin"));
    let (s, body) = get(addr, &format!("{path}DeveloperAdmin"), &host, &hdr).await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Code"], "Success");
    assert_eq!(v["Type"], "AWS-HMAC");
    assert_eq!(v["AccessKeyId"], "ASIADEV");
    assert_eq!(get(addr, &format!("{path}Other"), &host, &hdr).await.0, 404);
    assert_eq!(
        get(addr, path, "evil.example", &hdr).await.0,
        403,
        "rebinding"
    );
    let _ = tx.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn imds_refuses_credentials_with_twenty_minutes_or_less_left() {
    let provider = Arc::new(FixedProvider {
        calls: AtomicUsize::new(0),
        lifetime: 15 * 60,
    });
    let state = Arc::new(ImdsState::new(provider, "dev").unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_imds(listener, state, async {
        let _ = rx.await;
    }));
    let host = addr.to_string();
    let (_, token) = raw(
        addr,
        &format!("PUT /latest/api/token HTTP/1.1\r\nHost: {host}\r\nx-aws-ec2-metadata-token-ttl-seconds: 60\r\nConnection: close\r\n\r\n"),
    )
    .await;
    let (s, body) = get(
        addr,
        "/latest/meta-data/iam/security-credentials/DeveloperAdmin",
        &host,
        &format!("x-aws-ec2-metadata-token: {token}\r\n"),
    )
    .await;
    assert_eq!(s, 503, "{body}");
    assert!(!body.contains("SECRETKEYVALUE"));
    let _ = tx.send(());
    task.await.unwrap();
}

/// Runs `bash` as `nobody` (uid 65534): one raw request to `addr`, answers (status, body).
/// `None` (after reporting the skip) when this process cannot switch users.
async fn raw_as_nobody(test: &str, addr: SocketAddr, head: &str) -> Option<(u16, String)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        if let Some(log) = std::env::var_os("ROLECALL_SKIP_LOG") {
            use std::io::Write as _;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(log)
            {
                let _ = writeln!(f, "{test}: needs root to run a client as another user");
            }
        }
        eprintln!("SKIP: needs root to run a client as another user");
        return None;
    }
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(r#"exec 3<>"/dev/tcp/$1/$2" && printf '%s' "$3" >&3 && cat <&3"#)
        .arg("bash")
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(head)
        .uid(65534)
        .gid(65534)
        .current_dir("/")
        .output()
        .await
        .unwrap();
    Some(parse(&out.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_serves_only_the_daemons_own_user() {
    let test = "imds_serves_only_the_daemons_own_user";
    let provider = Arc::new(FixedProvider {
        calls: AtomicUsize::new(0),
        lifetime: 3600,
    });
    let state = Arc::new(ImdsState::new(provider, "dev").unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_imds(listener, state, async {
        let _ = rx.await;
    }));
    let host = addr.to_string();
    let put = format!("PUT /latest/api/token HTTP/1.1\r\nHost: {host}\r\nx-aws-ec2-metadata-token-ttl-seconds: 60\r\nConnection: close\r\n\r\n");
    let (s, token) = raw(addr, &put).await;
    assert_eq!(s, 200);
    let creds = format!("GET /latest/meta-data/iam/security-credentials/DeveloperAdmin HTTP/1.1\r\nHost: {host}\r\nx-aws-ec2-metadata-token: {token}\r\nConnection: close\r\n\r\n");
    let (s, body) = raw(addr, &creds).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("SECRETKEYVALUE"));
    if let Some((s, body)) = raw_as_nobody(test, addr, &put).await {
        assert_eq!(s, 403, "{body}");
        assert!(body.contains("only the user rolecalld runs as"), "{body}");
        // Even with the owner's session token.
        let (s, body) = raw_as_nobody(test, addr, &creds).await.unwrap();
        assert_eq!(s, 403, "{body}");
        assert!(!body.contains("SECRETKEYVALUE"));
    }
    // The owner is still served.
    assert_eq!(raw(addr, &creds).await.0, 200);
    let _ = tx.send(());
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_endpoint_refuses_other_local_users_even_with_a_token() {
    let test = "the_container_endpoint_refuses_other_local_users_even_with_a_token";
    let srv = start(Limits::default(), 3600).await;
    let token = srv.mint("dev");
    let host = srv.addr.to_string();
    let req = format!("GET /v1/container/dev HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n");
    assert_eq!(raw(srv.addr, &req).await.0, 200);
    if let Some((s, body)) = raw_as_nobody(test, srv.addr, &req).await {
        assert_eq!(s, 403, "{body}");
        assert!(!body.contains("SECRETKEYVALUE"));
    }
    assert_eq!(raw(srv.addr, &req).await.0, 200);
    srv.stop().await;
}

#[tokio::test]
async fn container_tokens_expire_and_renew() {
    let srv = start_with_ttl(Limits::default(), 3600, Duration::from_secs(3)).await;
    let reply = srv
        .state
        .mint_token(&MintTokenRequest {
            profile: "dev".into(),
            bound_pid: None,
        })
        .unwrap();
    let now = rolecall_proto::timefmt::now_epoch();
    let expires = reply
        .expires
        .expect("a token for containers has a lifetime");
    assert!((now + 2..=now + 3).contains(&expires), "{expires} vs {now}");
    let host = srv.addr.to_string();
    let auth = format!("Authorization: {}\r\n", reply.token);
    assert_eq!(
        get(srv.addr, "/v1/container/dev", &host, &auth).await.0,
        200
    );
    // Renewed before it runs out: it lives on past the first end.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let renewed = srv
        .state
        .renew_tokens(&rolecall_proto::api::RenewTokenRequest {
            profile: "dev".into(),
        })
        .unwrap();
    assert_eq!(renewed.renewed, 1);
    assert!(renewed.expires >= expires);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(rolecall_proto::timefmt::now_epoch() >= expires);
    assert_eq!(
        get(srv.addr, "/v1/container/dev", &host, &auth).await.0,
        200
    );
    // Then it runs out: 401, like any invalid token.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (s, body) = get(srv.addr, "/v1/container/dev", &host, &auth).await;
    assert_eq!(s, 401, "{body}");
    // A token bound to a process has no lifetime of its own.
    let bound = srv
        .state
        .mint_token(&MintTokenRequest {
            profile: "dev".into(),
            bound_pid: Some(std::process::id()),
        })
        .unwrap();
    assert_eq!(bound.expires, None);
    srv.stop().await;
}

#[tokio::test]
async fn a_flood_of_imds_sessions_is_bounded_and_keeps_the_used_ones() {
    use rolecall_daemon::serve::container::imds::MAX_SESSIONS;
    let provider = Arc::new(FixedProvider {
        calls: AtomicUsize::new(0),
        lifetime: 3600,
    });
    let state = Arc::new(ImdsState::new(provider, "dev").unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_imds(listener, state.clone(), async {
        let _ = rx.await;
    }));
    let host = addr.to_string();
    let put = format!("PUT /latest/api/token HTTP/1.1\r\nHost: {host}\r\nx-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\r\n");
    let (s, token) = raw(
        addr,
        &put.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(s, 200);
    let role = format!("GET /latest/meta-data/iam/security-credentials/ HTTP/1.1\r\nHost: {host}\r\nx-aws-ec2-metadata-token: {token}\r\nConnection: close\r\n\r\n");
    assert_eq!(raw(addr, &role).await.0, 200);
    // Token requests over keep-alive connections, never used (what a flood makes).
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut served = 0;
    while served < MAX_SESSIONS * 2 {
        conn.write_all(put.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if conn.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        if head.is_empty() {
            // Closed (idle or request caps): carry on over a new connection.
            conn = tokio::net::TcpStream::connect(addr).await.unwrap();
            continue;
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 200"), "{text}");
        let len: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        let mut body = vec![0u8; len];
        conn.read_exact(&mut body).await.unwrap();
        served += 1;
    }
    assert!(
        state.live_sessions() <= MAX_SESSIONS,
        "{} sessions kept",
        state.live_sessions()
    );
    // The session in use survived the flood.
    assert_eq!(raw(addr, &role).await.0, 200);
    let _ = tx.send(());
    task.await.unwrap();
}
