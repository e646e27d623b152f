//! The `[daemon]` table: serving, refresh, login, container, IMDS and audit settings, their
//! defaults, and their checks.

use super::units::{duration_str, size_str};
use super::{Config, Invalid, Place};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Serve credentials with more than this left; must exceed 15m (botocore's refresh window).
    #[serde(with = "duration_str")]
    pub refresh_ahead: Duration,
    pub container_listen: String,
    pub notifications: bool,
    pub secret_store: SecretStoreKind,
    pub auto_login: bool,
    #[serde(with = "duration_str")]
    pub login_wait: Duration,
    /// Profiles used within this window are kept refreshed (docs/refresh.md).
    #[serde(with = "duration_str")]
    pub recent_window: Duration,
    /// How long before a known end (SAML session, registration) to notify.
    #[serde(with = "duration_str")]
    pub notify_ahead: Duration,
    /// Optional IMDSv2 emulation for one profile (off by default).
    pub imds: Option<ImdsConfig>,
    /// How long a container token minted by `rolecall container` lives (renewable).
    #[serde(with = "duration_str")]
    pub container_token_ttl: Duration,
    /// The audit log's files are rotated before they exceed this many bytes (docs/audit.md).
    #[serde(with = "size_str")]
    pub audit_max_size: u64,
    /// Audit files kept, the current one included.
    pub audit_files: u32,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            refresh_ahead: Duration::from_secs(20 * 60),
            container_listen: "127.0.0.1:9911".into(),
            notifications: true,
            secret_store: SecretStoreKind::Keyring,
            auto_login: true,
            login_wait: Duration::from_secs(60),
            recent_window: Duration::from_secs(8 * 3600),
            notify_ahead: Duration::from_secs(15 * 60),
            imds: None,
            container_token_ttl: DEFAULT_CONTAINER_TOKEN_TTL,
            audit_max_size: 10 * 1024 * 1024,
            audit_files: 3,
        }
    }
}

/// The default lifetime of a container token.
pub const DEFAULT_CONTAINER_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImdsConfig {
    pub listen: String,
    pub profile: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SecretStoreKind {
    Keyring,
    File,
}

/// The smallest `refresh_ahead` allowed: botocore refreshes credentials with less than 15
/// minutes left, so serving less would make every call re-run the helper.
pub const MIN_REFRESH_AHEAD: Duration = Duration::from_secs(15 * 60);

/// Checks the `[daemon]` table (the IMDS profile must name a profile of `config`).
pub(super) fn validate(config: &Config) -> Result<(), Invalid<'_>> {
    let d = &config.daemon;
    if d.refresh_ahead <= MIN_REFRESH_AHEAD {
        return Err((
            Some(Place::Daemon("refresh_ahead")),
            format!(
                "refresh_ahead must be more than 15m (botocore refreshes credentials with less than 15 minutes left), got {}s",
                d.refresh_ahead.as_secs()
            ),
        ));
    }
    if d.container_listen.parse::<std::net::SocketAddr>().is_err() {
        return Err((
            Some(Place::Daemon("container_listen")),
            format!(
                "container_listen must be an address and port like \"127.0.0.1:9911\", got {:?}",
                d.container_listen
            ),
        ));
    }
    if let Some(imds) = &d.imds {
        if imds.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err((
                Some(Place::Daemon("imds")),
                format!(
                    "imds.listen must be an address and port, got {:?}",
                    imds.listen
                ),
            ));
        }
        if !imds
            .listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback())
        {
            // IMDS has no client authentication: beyond loopback anyone could read the keys.
            return Err((
                Some(Place::Daemon("imds")),
                format!(
                    "imds.listen must be a loopback address like \"127.0.0.1:9912\", got {:?}",
                    imds.listen
                ),
            ));
        }
        if !config.profiles.contains_key(&imds.profile) {
            return Err((
                Some(Place::Daemon("imds")),
                format!("imds.profile names unknown profile '{}'", imds.profile),
            ));
        }
    }
    let ttl = d.container_token_ttl;
    if ttl < Duration::from_secs(60) || ttl > Duration::from_secs(30 * 86_400) {
        return Err((
            Some(Place::Daemon("container_token_ttl")),
            format!(
                "container_token_ttl must be between 1m and 30d, got {}s",
                ttl.as_secs()
            ),
        ));
    }
    if !(1024..=1 << 30).contains(&d.audit_max_size) {
        return Err((
            Some(Place::Daemon("audit_max_size")),
            format!(
                "audit_max_size must be between 1KiB and 1GiB, got {} bytes",
                d.audit_max_size
            ),
        ));
    }
    if !(1..=100).contains(&d.audit_files) {
        return Err((
            Some(Place::Daemon("audit_files")),
            format!(
                "audit_files must be between 1 and 100, got {}",
                d.audit_files
            ),
        ));
    }
    Ok(())
}
