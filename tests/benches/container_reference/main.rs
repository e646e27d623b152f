//! `container-reference <listen> <token> <body-bytes>`: answers `GET` with a fixed JSON body of
//! the given size when `Authorization` equals the token, 401 otherwise. The floor that
//! rolecalld's container endpoint is measured against (same runtime, same HTTP library).

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, token, size] = args.as_slice() else {
        eprintln!("usage: container-reference <listen> <token> <body-bytes>");
        std::process::exit(2);
    };
    let size: usize = size.parse().expect("body size");
    let prefix = r#"{"AccessKeyId":"ASIAEXAMPLEEXAMPLE00","Token":""#;
    let suffix = r#""}"#;
    let pad = size.saturating_sub(prefix.len() + suffix.len());
    let body = Bytes::from(format!("{prefix}{}{suffix}", "x".repeat(pad)));
    let token: Arc<[u8]> = token.as_bytes().into();
    let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
    println!("{}", listener.local_addr().expect("addr"));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (body, token) = (body.clone(), token.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let ok = req
                    .headers()
                    .get("authorization")
                    .is_some_and(|v| v.as_bytes() == &token[..]);
                let mut r = Response::new(Full::new(if ok { body.clone() } else { Bytes::new() }));
                if !ok {
                    *r.status_mut() = StatusCode::UNAUTHORIZED;
                }
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
