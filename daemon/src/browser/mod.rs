//! The DevTools-protocol driver that captures the SAML POST (entra-saml).
//!
//! It starts a Chromium-family browser with a dedicated profile and `--remote-debugging-pipe`
//! (no debugging port another local process could attach to), opens a URL in a new tab, and
//! pauses — with the `Fetch` domain, at the Request stage — the browser's request to any AWS
//! sign-in endpoint. The form body is taken, the browser is answered locally with a "signed in"
//! page (the request never leaves the machine), and the browser is closed. It never reads or
//! fills the pages the user signs in on.
//!
//! `find` picks the executable, `launch` starts it with the pipe on fds 3/4, `cdp` speaks the
//! protocol, `capture` runs one capture.

pub mod capture;
pub mod cdp;
pub mod find;
pub mod launch;

pub use capture::{capture, CaptureRequest, Captured};
pub use find::find_browser;

/// Why a capture did not produce a SAML POST. Messages are one line and hold no secrets.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// No usable browser: the message names the `browser` setting.
    #[error("{0}")]
    NotFound(String),
    #[error("cannot start the browser {path}: {reason}")]
    Start { path: String, reason: String },
    #[error("the browser did not answer on its debugging pipe — your organisation may forbid remote debugging; use: rolecall login {name} --paste")]
    DeadPipe { name: String },
    #[error("the browser exited before the sign-in completed")]
    Exited,
    #[error("the browser window was closed before the sign-in completed")]
    WindowClosed,
    #[error("the sign-in did not complete within {0}s")]
    Timeout(u64),
    #[error(
        "another sign-in is using the browser profile {0} (one browser per profile at a time)"
    )]
    ProfileBusy(String),
    #[error("browser protocol error: {0}")]
    Protocol(String),
}
