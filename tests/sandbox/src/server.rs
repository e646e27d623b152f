//! The HTTP/1.1 server: binds loopback, reads each request (bodies capped), routes it, and
//! closes the connection without an answer when a handler asks for a dropped connection.

use crate::http::{Interrupt, Req};
use crate::{Sandbox, SandboxOptions};
use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Largest request body accepted (SAML requests and assertions are far smaller).
pub const MAX_BODY: usize = 1 << 20;

/// A sandbox serving in the background; dropping it (or `shutdown`) stops it.
#[derive(Debug)]
pub struct RunningSandbox {
    pub base_url: String,
    pub addr: SocketAddr,
    pub sandbox: Arc<Sandbox>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSandbox {
    /// Stops accepting, closes open connections and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Resolves when the server stops (it only stops when asked).
    pub async fn wait(mut self) {
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Binds and starts serving; returns once the port is bound.
pub async fn start(opts: SandboxOptions) -> anyhow::Result<RunningSandbox> {
    let listen = opts
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    if !listen.ip().is_loopback() {
        bail!("refusing to listen on {listen}: the sandbox only serves loopback addresses");
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let base_url = match addr {
        SocketAddr::V4(a) => format!("http://{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("http://[{}]:{}", a.ip(), a.port()),
    };
    let sandbox = Arc::new(Sandbox::new(base_url.clone(), &opts));
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, sandbox.clone(), stop_rx));
    Ok(RunningSandbox {
        base_url,
        addr,
        sandbox,
        stop,
        task: Some(task),
    })
}

async fn accept_loop(listener: TcpListener, sb: Arc<Sandbox>, mut stop: watch::Receiver<bool>) {
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let sb = sb.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| serve_one(sb.clone(), peer, req));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!("connection from {peer} ended: {e}");
                },
                _ = stop.changed() => {}
            }
        });
    }
}

/// The error a service returns to make hyper close the connection without a response.
#[derive(Debug)]
struct DroppedByFault;

impl std::fmt::Display for DroppedByFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DroppedByFault {}

async fn serve_one(
    sb: Arc<Sandbox>,
    peer: SocketAddr,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, DroppedByFault> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(crate::http::text(
                ::http::StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large or unreadable\n",
            ))
        }
    };
    let req = Req { parts, body, peer };
    let started = std::time::Instant::now();
    let result = crate::route(&sb, &req).await;
    match result {
        Ok(r) | Err(Interrupt::Reply(r)) => {
            tracing::info!(
                "{} {} -> {} ({} ms)",
                req.parts.method,
                req.parts.uri.path(),
                r.status().as_u16(),
                started.elapsed().as_millis()
            );
            Ok(r)
        }
        Err(Interrupt::Drop) => {
            tracing::info!("{} {} -> dropped", req.parts.method, req.parts.uri.path());
            Err(DroppedByFault)
        }
    }
}
