//! The contract between `rolecalld` and its clients.
//!
//! This crate owns everything both sides must agree on: the protocol number, where the daemon's
//! socket and files live, the request and reply bodies of the socket API, and the exact JSON that
//! `credential_process` and the container endpoint print. It links no async runtime and no AWS
//! SDK, so that the CLI's hot path (`rolecall credential-process`, `rolecall prompt`) stays small.

pub mod api;
pub mod audit;
pub mod names;
pub mod output;
pub mod paths;
pub mod request;
pub mod scope;
pub mod setup;
pub mod snapshot;
pub mod timefmt;
pub mod trust;

/// Bumped whenever a request or reply changes incompatibly; the CLI restarts a daemon whose
/// replies carry another number.
pub const PROTOCOL_VERSION: u32 = 1;

/// The version of this build, carried in every reply of the daemon.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Reply header with the daemon's version.
pub const HEADER_VERSION: &str = "x-rolecall-version";
/// Reply header with the daemon's protocol number.
pub const HEADER_PROTOCOL: &str = "x-rolecall-protocol";
