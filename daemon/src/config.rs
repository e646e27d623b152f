//! The configuration file (SPEC §3): `[daemon]`, `[sources.*]`, `[profiles.*]`.
//!
//! Types here are the parsed, validated form. Loading reports a bad file as
//! `file:line:column: what is wrong`; the daemon keeps the last good config when a reload fails.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileConfig>,
}

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
    /// Profiles used within this window are kept refreshed (issue 6).
    #[serde(with = "duration_str")]
    pub recent_window: Duration,
    /// How long before a known end (SAML session, registration) to notify.
    #[serde(with = "duration_str")]
    pub notify_ahead: Duration,
    /// Optional IMDSv2 emulation for one profile (off by default).
    pub imds: Option<ImdsConfig>,
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
        }
    }
}

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

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    IdentityCenter(IdentityCenterConfig),
    EntraSaml(EntraSamlConfig),
    EntraOidc(EntraOidcConfig),
}

impl SourceConfig {
    pub fn kind_name(&self) -> &'static str {
        match self {
            SourceConfig::IdentityCenter(_) => "identity-center",
            SourceConfig::EntraSaml(_) => "entra-saml",
            SourceConfig::EntraOidc(_) => "entra-oidc",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FlowKind {
    #[default]
    Pkce,
    Device,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdentityCenterConfig {
    pub start_url: String,
    pub region: String,
    /// Absent: PKCE where a browser is available, device otherwise.
    #[serde(default)]
    pub flow: Option<FlowKind>,
    /// Every AWS call of this source; wins over `AWS_ENDPOINT_URL*`.
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BrowserMode {
    #[default]
    Auto,
    Window,
    Headless,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EntraSamlConfig {
    pub tenant: String,
    pub app_identifier: String,
    #[serde(default)]
    pub idp_metadata: Option<PathBuf>,
    #[serde(default)]
    pub browser: Option<PathBuf>,
    #[serde(default)]
    pub browser_mode: BrowserMode,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OidcTokenKind {
    #[default]
    IdToken,
    AccessToken,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EntraOidcConfig {
    pub tenant: String,
    pub client_id: String,
    #[serde(default)]
    pub flow: Option<FlowKind>,
    #[serde(default)]
    pub token: OidcTokenKind,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub role_session_name: Option<String>,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    pub source: String,
    /// Account id (identity-center; optional for entra-* where the role ARN names it).
    #[serde(default)]
    pub account: Option<String>,
    /// Friendly account name, shown by `status` and the prompt (written by `populate`).
    #[serde(default)]
    pub account_name: Option<String>,
    /// Permission set name (identity-center) or role ARN (entra-*).
    pub role: String,
    /// SAML provider ARN (entra-saml; required for encrypted assertions).
    #[serde(default)]
    pub principal: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub warm: bool,
    /// entra-* only; clamped to what the assertion/role allows.
    #[serde(default, with = "duration_str::option")]
    pub duration: Option<Duration>,
}

/// Durations written the way people write them: `90s`, `20m`, `4h`, `1h30m`, `1d`.
pub mod duration_str {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn parse(s: &str) -> Result<Duration, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty duration".into());
        }
        let mut total: u64 = 0;
        let mut num = String::new();
        let mut any = false;
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => {
                    return Err(format!(
                        "invalid duration {s:?}: unknown unit {c:?} (use s, m, h or d)"
                    ))
                }
            };
            let n: u64 = num
                .parse()
                .map_err(|_| format!("invalid duration {s:?}: expected a number before {c:?}"))?;
            total = total.saturating_add(n.saturating_mul(unit));
            num.clear();
            any = true;
        }
        if !num.is_empty() || !any {
            return Err(format!(
                "invalid duration {s:?}: missing unit (like \"20m\" or \"4h\")"
            ));
        }
        Ok(Duration::from_secs(total))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use serde::{Deserialize, Deserializer};
        use std::time::Duration;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| super::parse(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}
