//! rolecall-sandbox: a local emulator of every upstream rolecall talks to — IAM Identity Center
//! OIDC and the SSO portal, Entra ID (OAuth 2.0 and SAML) and STS — on one loopback port,
//! speaking the real wire formats so that the real SDK clients accept it.
//!
//! `start` runs it in-process (tests); the `rolecall-sandbox` binary runs it as a process (the
//! demo, black-box tests). This module owns the shared state and the router; each service is
//! its own module (see `http` for the handler contract).

// The sandbox emulates upstream services on real clocks and processes: it is test
// infrastructure, outside the product's one-clock and one-spawner rule (clippy.toml).
#![allow(clippy::disallowed_methods)]
// Handlers return `Result<_, Resp>` so that `?` yields the service's error reply; a reply is built
// once per request, so its size on the stack does not matter.
#![allow(clippy::result_large_err)]

pub mod admin;
pub mod clock;
pub mod directory;
pub mod entra;
pub mod faults;
pub mod federation;
pub mod http;
pub mod iam;
pub mod issued;
pub mod jwt;
pub mod keys;
pub mod oidc;
pub mod pending;
pub mod portal;
pub mod s3;
pub mod saml;
pub mod server;
pub mod signin_oauth;
pub mod sigv4;
pub mod sts;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use server::{start, RunningSandbox};

/// How to run a sandbox.
#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Where to listen; `None` = `127.0.0.1:0`. Only loopback addresses are accepted.
    pub listen: Option<SocketAddr>,
    /// Approve every browser step as soon as its URL is visited.
    pub auto_approve: bool,
    /// The directory; `None` = the built-in default seed.
    pub directory: Option<directory::Directory>,
    /// Initial lifetimes; `None` = the services' defaults.
    pub lifetimes: Option<clock::Lifetimes>,
}

/// The shared state every handler sees.
pub struct Sandbox {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    pub clock: clock::Clock,
    pub lifetimes: RwLock<clock::Lifetimes>,
    pub directory: RwLock<directory::Directory>,
    pub issued: issued::Issued,
    pub faults: faults::Faults,
    pub pending: pending::PendingLogins,
    auto_approve: AtomicBool,
    /// Per-module state, created on first use (`state::<T>()`).
    states: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    pub fn new(base_url: String, opts: &SandboxOptions) -> Sandbox {
        let directory = opts.directory.clone().unwrap_or_default();
        let lifetimes = opts
            .lifetimes
            .clone()
            .or_else(|| directory.lifetimes.clone())
            .unwrap_or_default();
        Sandbox {
            base_url,
            clock: clock::Clock::default(),
            lifetimes: RwLock::new(lifetimes),
            directory: RwLock::new(directory),
            issued: issued::Issued::default(),
            faults: faults::Faults::default(),
            pending: pending::PendingLogins::default(),
            auto_approve: AtomicBool::new(opts.auto_approve),
            states: Mutex::new(HashMap::new()),
        }
    }

    pub fn auto_approve(&self) -> bool {
        self.auto_approve.load(Ordering::Relaxed)
    }

    pub fn set_auto_approve(&self, on: bool) {
        self.auto_approve.store(on, Ordering::Relaxed);
    }

    /// A copy of the current lifetimes.
    pub fn lifetimes(&self) -> clock::Lifetimes {
        self.lifetimes.read().expect("lifetimes lock").clone()
    }

    /// Read access to the directory.
    pub fn dir(&self) -> std::sync::RwLockReadGuard<'_, directory::Directory> {
        self.directory.read().expect("directory lock")
    }

    /// The module state of type `T`, created with `T::default()` on first use.
    pub fn state<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut states = self.states.lock().expect("states lock");
        let entry = states
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()) as Arc<dyn Any + Send + Sync>)
            .clone();
        drop(states);
        entry
            .downcast::<T>()
            .expect("state slot holds its own type")
    }
}

/// Dispatches one request to the service that owns its path.
pub async fn route(sb: &Arc<Sandbox>, req: &http::Req) -> http::HandlerResult {
    let path = req.path();
    if path == "/_sandbox" || path.starts_with("/_sandbox/") {
        return admin::handle(sb, req).await;
    }
    // S3 (path-style) is told apart by its signature's scope, not by its paths.
    if s3::is_s3_request(req) {
        return s3::handle(sb, req).await;
    }
    match path {
        "/client/register" | "/device_authorization" | "/token" | "/authorize" | "/device" => {
            return oidc::handle(sb, req).await
        }
        "/federation" | "/console" => return federation::handle(sb, req).await,
        "/v1/token" => return signin_oauth::handle(sb, req).await,
        "/federation/credentials"
        | "/assignment/accounts"
        | "/assignment/roles"
        | "/logout"
        | "/start"
        | "/start/" => return portal::handle(sb, req).await,
        "/" => {
            // STS query protocol: `Action=` in the form body (SDKs) or the query string.
            let has_action =
                req.form().contains_key("Action") || req.query().contains_key("Action");
            if has_action {
                return sts::handle(sb, req).await;
            }
            return Ok(http::text(
                ::http::StatusCode::OK,
                "rolecall-sandbox: see /_sandbox/health\n",
            ));
        }
        _ => {}
    }
    let segs = req.segments();
    if segs.len() >= 2
        && matches!(
            segs[1],
            "oauth2" | "v2.0" | "discovery" | "saml2" | "federationmetadata"
        )
    {
        return entra::handle(sb, req).await;
    }
    Ok(http::not_found())
}
