//! Plumbing shared by every login source: what a source is built with ([`SourceContext`]) and
//! the one place that turns a `[sources.*]` entry into a running [`Source`] ([`build`]), and the
//! login mechanics the OAuth sources share ([`renew_once`], [`device_poll`]).

pub mod device_poll;
pub mod renew_once;

use super::{Source, SourceError};
use crate::clock::{Clock, SystemClock};
use crate::config::SourceConfig;
use crate::endpoints::EnvSnapshot;
use crate::vault::SecretStore;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What the daemon hands every source it builds.
#[derive(Clone)]
pub struct SourceContext {
    /// The secret store (registrations, refresh tokens).
    pub vault: Arc<SecretStore>,
    /// The environment captured at daemon start: endpoint overrides, `$BROWSER`, display, SSH.
    pub env: Arc<EnvSnapshot>,
    /// The state dir (browser profiles of entra-saml live under it).
    pub state_dir: PathBuf,
    /// This machine's name, for OIDC client names (`rolecall-<hostname>`).
    pub hostname: String,
    /// How long an interactive login may wait for the user (browser redirect, device code).
    pub login_timeout: Duration,
    /// The daemon's clock: token expiries, registrations, device-code deadlines.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SourceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceContext")
            .field("state_dir", &self.state_dir)
            .field("hostname", &self.hostname)
            .field("login_timeout", &self.login_timeout)
            .finish_non_exhaustive()
    }
}

impl SourceContext {
    /// A context with the current hostname, the default 5-minute login bound and the system's
    /// clock.
    pub fn new(vault: Arc<SecretStore>, env: Arc<EnvSnapshot>, state_dir: PathBuf) -> Self {
        let hostname = hostname(&env);
        SourceContext {
            vault,
            env,
            state_dir,
            hostname,
            login_timeout: Duration::from_secs(300),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same context on another clock (the daemon's, or a test's).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// The machine's host name, best effort, reduced to characters safe in a client name.
pub fn hostname(env: &EnvSnapshot) -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| env.get("HOSTNAME").cloned())
        .or_else(|| env.get("COMPUTERNAME").cloned())
        .or_else(|| {
            crate::spawn::std_command("hostname")
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
        })
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(64)
        .collect();
    if clean.is_empty() {
        "host".into()
    } else {
        clean
    }
}

/// Builds the source named `name` from its configuration.
pub fn build(
    name: &str,
    cfg: &SourceConfig,
    ctx: &SourceContext,
) -> Result<Arc<dyn Source>, SourceError> {
    match cfg {
        SourceConfig::IdentityCenter(c) => Ok(Arc::new(
            super::identity_center::IdentityCenter::new(name, c, ctx)?,
        )),
        SourceConfig::EntraOidc(c) => {
            Ok(Arc::new(super::entra_oidc::EntraOidc::new(name, c, ctx)?))
        }
        SourceConfig::EntraSaml(c) => {
            Ok(Arc::new(super::entra_saml::EntraSaml::new(name, c, ctx)?))
        }
        SourceConfig::AwsLogin(c) => Ok(Arc::new(super::aws_login::AwsLogin::new(
            name, c, &ctx.env,
        )?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EntraOidcConfig, IdentityCenterConfig, OidcTokenKind, SecretStoreKind};

    fn ctx(env: &[(&str, &str)]) -> (tempfile::TempDir, SourceContext) {
        let tmp = tempfile::tempdir().unwrap();
        let vault = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let c = SourceContext::new(vault, Arc::new(env), tmp.path().to_path_buf());
        (tmp, c)
    }

    fn ic(start_url: &str, endpoint: Option<&str>) -> SourceConfig {
        SourceConfig::IdentityCenter(IdentityCenterConfig {
            start_url: start_url.into(),
            region: "eu-west-1".into(),
            flow: None,
            endpoint_url: endpoint.map(str::to_string),
            share_aws_cli_cache: false,
            sso_session: None,
        })
    }

    #[test]
    fn builds_identity_center_and_names_bad_settings() {
        let (_t, c) = ctx(&[]);
        let s = build("corp", &ic("https://d-1.awsapps.com/start", None), &c).unwrap();
        assert_eq!((s.name(), s.kind()), ("corp", "identity-center"));

        let e = build("corp", &ic("d-1.awsapps.com/start", None), &c)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("source 'corp'") && e.contains("start_url"),
            "{e}"
        );
        let e = build(
            "corp",
            &ic("https://d-1.awsapps.com/start", Some("nope")),
            &c,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("endpoint_url"), "{e}");
        let (_t, c) = ctx(&[("AWS_ENDPOINT_URL_SSO", "127.0.0.1:9")]);
        let e = build("corp", &ic("https://d-1.awsapps.com/start", None), &c)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("AWS_ENDPOINT_URL_SSO"), "{e}");
    }

    #[test]
    fn builds_entra_oidc_and_names_bad_settings() {
        let (_t, c) = ctx(&[]);
        let oidc = |tenant: &str, token: OidcTokenKind, scope: Option<&str>| {
            SourceConfig::EntraOidc(EntraOidcConfig {
                tenant: tenant.into(),
                client_id: "c".into(),
                flow: None,
                token,
                scope: scope.map(str::to_string),
                role_session_name: None,
                authority: None,
                region: None,
                endpoint_url: None,
            })
        };
        let s = build("h", &oidc("t", OidcTokenKind::IdToken, None), &c).unwrap();
        assert_eq!((s.name(), s.kind()), ("h", "entra-oidc"));
        for (cfg, what) in [
            (oidc("a/b", OidcTokenKind::IdToken, None), "tenant"),
            (oidc("t", OidcTokenKind::AccessToken, None), "scope"),
            (
                oidc("t", OidcTokenKind::AccessToken, Some("User.Read")),
                "Microsoft Graph",
            ),
        ] {
            match build("h", &cfg, &c) {
                Err(SourceError::Config(m)) => {
                    assert!(m.contains("source 'h'") && m.contains(what), "{m}")
                }
                _ => panic!("expected a config error about {what}"),
            }
        }
    }

    #[test]
    fn hostname_is_safe_for_client_names() {
        let h = hostname(&EnvSnapshot::new());
        assert!(!h.is_empty() && h.len() <= 64);
        assert!(h
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    }
}
