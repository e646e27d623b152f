//! The callback listener against raw HTTP clients on loopback.
use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A raw HTTP/1.1 request, so that tests control every header (Host, Origin).
async fn raw(port: u16, req: String) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn get(port: u16, target: &str, extra_headers: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra_headers}Connection: close\r\n\r\n")
}

#[tokio::test]
async fn valid_code_is_delivered_once_and_refusals_keep_waiting() {
    let srv = CallbackServer::bind("/oauth/callback").await.unwrap();
    let port = srv.port();
    assert_eq!(
        srv.redirect_uri(),
        format!("http://127.0.0.1:{port}/oauth/callback")
    );
    let waiter = tokio::spawn(async move { srv.wait("st-123", Duration::from_secs(10)).await });

    // Each of these is refused without ending the wait.
    let (s, _) = raw(port, get(port, "/oauth/callback?code=c&state=wrong", "")).await;
    assert_eq!(s, 400);
    let (s, _) = raw(port, get(port, "/oauth/callback?code=c", "")).await;
    assert_eq!(s, 400);
    let (s, _) = raw(port, get(port, "/other?code=c&state=st-123", "")).await;
    assert_eq!(s, 404);
    let (s, _) = raw(
        port,
        get(
            port,
            "/oauth/callback?code=c&state=st-123",
            "Origin: http://evil.example\r\n",
        ),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = raw(
        port,
        format!("GET /oauth/callback?code=c&state=st-123 HTTP/1.1\r\nHost: evil.example:{port}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = raw(
        port,
        format!("POST /oauth/callback?code=c&state=st-123 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(s, 405);
    assert!(!waiter.is_finished());

    let (s, body) = raw(
        port,
        get(
            port,
            "/oauth/callback?code=the-code&state=st-123&session_state=x",
            "",
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert!(body.contains("Signed in"), "{body}");
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(got.code.as_str(), "the-code");
    assert_eq!(
        got.extra.get("session_state").map(String::as_str),
        Some("x")
    );
    assert!(!format!("{got:?}").contains("the-code"));

    // The listener is gone after the first valid answer.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_capped_and_the_redirect_still_gets_in() {
    let srv = CallbackServer::bind("/cb").await.unwrap();
    let port = srv.port();
    let waiter = tokio::spawn(async move { srv.wait("s", Duration::from_secs(30)).await });
    // Sockets opened and left silent.
    let mut idle = Vec::new();
    for _ in 0..(MAX_CONNECTIONS * 8) {
        idle.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut open = 0;
    for s in &idle {
        let mut b = [0u8; 1];
        match s.try_read(&mut b) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open += 1,
            _ => {}
        }
    }
    assert!(
        open <= MAX_CONNECTIONS,
        "{open} idle connections held open (cap {MAX_CONNECTIONS})"
    );
    let (s, _) = raw(port, get(port, "/cb?code=k&state=s", "")).await;
    assert_eq!(s, 200);
    assert_eq!(waiter.await.unwrap().unwrap().code.as_str(), "k");
}

#[tokio::test]
async fn localhost_host_is_accepted() {
    let srv = CallbackServer::bind("/cb").await.unwrap();
    let port = srv.port();
    let waiter = tokio::spawn(async move { srv.wait("s", Duration::from_secs(10)).await });
    let (s, _) = raw(
        port,
        format!("GET /cb?code=k&state=s HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(waiter.await.unwrap().unwrap().code.as_str(), "k");
}

#[tokio::test]
async fn error_redirect_with_valid_state_is_a_denial_and_is_escaped() {
    let srv = CallbackServer::bind("/cb").await.unwrap();
    let port = srv.port();
    let waiter = tokio::spawn(async move { srv.wait("s", Duration::from_secs(10)).await });
    let (s, body) = raw(
        port,
        get(
            port,
            "/cb?error=access_denied&error_description=%3Cscript%3Ex&state=s",
            "",
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert!(body.contains("&lt;script&gt;") && !body.contains("<script>"));
    match waiter.await.unwrap() {
        Err(CallbackError::Denied { error, description }) => {
            assert_eq!(error, "access_denied");
            assert_eq!(description.as_deref(), Some("<script>x"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn times_out() {
    let srv = CallbackServer::bind("/cb").await.unwrap();
    let e = srv.wait("s", Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(e, CallbackError::TimedOut(_)));
}

#[tokio::test]
async fn oversized_request_is_refused() {
    let srv = CallbackServer::bind("/cb").await.unwrap();
    let port = srv.port();
    let waiter = tokio::spawn(async move { srv.wait("s", Duration::from_secs(5)).await });
    let big = "a".repeat(64 * 1024);
    let (s, _) = raw(port, get(port, &format!("/cb?state=s&code={big}"), "")).await;
    assert_eq!(
        s, 431,
        "one defined answer for a request head over the limit"
    );
    assert!(!waiter.is_finished());
    waiter.abort();
}
