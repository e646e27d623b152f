//! rolecalld: the per-user daemon that signs in through Entra, keeps short-lived AWS role
//! credentials per profile, and serves them to every AWS client on the machine.
//!
//! Module ownership: `sources` turn a profile into credentials and know
//! nothing of serving; `serve` answers clients and knows nothing of how credentials were
//! obtained; `broker` sits between them (cache, single-flight, logins); `vault` keeps secrets.

pub mod app;
pub mod audit;
pub mod broker;
pub mod browser;
pub mod clock;
pub mod config;
pub mod config_watch;
pub mod console;
pub mod credentials;
pub mod endpoints;
pub mod httpd;
pub mod logging;
pub mod login;
pub mod notify;
pub mod opener;
pub mod refresh;
mod run;
pub mod saml;
pub mod serve;
pub mod setup_check;
pub mod shutdown;
pub mod sources;
pub mod spawn;
pub mod vault;
pub mod wire_error;

pub use run::{run, Deps, Listeners, RunConfig, RunError, Secrets};
