//! The `[sources.*]` tables: one variant per login source's kind. Each kind's settings and
//! their checks live with the source (`sources/<kind>/config.rs`); this enum only dispatches.

use super::{Invalid, Place, ProfileConfig};
use crate::config::load::validate_url;
pub use crate::sources::entra_oidc::config::{EntraOidcConfig, OidcTokenKind};
pub use crate::sources::entra_saml::config::{BrowserMode, EntraSamlConfig};
pub use crate::sources::identity_center::config::IdentityCenterConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    IdentityCenter(IdentityCenterConfig),
    EntraSaml(EntraSamlConfig),
    EntraOidc(EntraOidcConfig),
    /// Experimental: an `aws login` session of the AWS CLI (docs/interop.md).
    AwsLogin(crate::sources::aws_login::config::AwsLoginConfig),
}

impl SourceConfig {
    pub fn kind_name(&self) -> &'static str {
        match self {
            SourceConfig::IdentityCenter(_) => "identity-center",
            SourceConfig::EntraSaml(_) => "entra-saml",
            SourceConfig::EntraOidc(_) => "entra-oidc",
            SourceConfig::AwsLogin(_) => "aws-login",
        }
    }

    /// Checks the source's own settings.
    pub(super) fn validate<'a>(&'a self, name: &'a str) -> Result<(), Invalid<'a>> {
        match self {
            SourceConfig::IdentityCenter(c) => c.validate(name),
            SourceConfig::EntraSaml(c) => c.validate(name),
            SourceConfig::EntraOidc(c) => c.validate(name),
            SourceConfig::AwsLogin(c) => {
                crate::sources::aws_login::config::validate(name, c)
                    .map_err(|(k, m)| (Some(Place::Source(name, Some(k))), m))?;
                validate_endpoints(name, c.endpoint_url.as_deref(), None)
            }
        }
    }

    /// Checks what this source's kind asks of a profile that uses it.
    pub(super) fn validate_profile<'a>(
        &self,
        name: &'a str,
        profile: &'a ProfileConfig,
    ) -> Result<(), Invalid<'a>> {
        match self {
            SourceConfig::IdentityCenter(_) => {
                IdentityCenterConfig::validate_profile(name, profile)
            }
            SourceConfig::EntraSaml(_) => EntraSamlConfig::validate_profile(name, profile),
            SourceConfig::EntraOidc(_) => EntraOidcConfig::validate_profile(name, profile),
            SourceConfig::AwsLogin(c) => {
                crate::sources::aws_login::config::validate_profile(name, c, profile)
                    .map_err(|(k, m)| (Some(Place::Profile(name, Some(k))), m))
            }
        }
    }
}

/// A source's `endpoint_url` and `authority`, when set, are http(s) URLs.
pub(crate) fn validate_endpoints<'a>(
    name: &'a str,
    endpoint: Option<&str>,
    authority: Option<&str>,
) -> Result<(), Invalid<'a>> {
    if let Some(e) = endpoint {
        validate_url(Place::Source(name, Some("endpoint_url")), "endpoint_url", e)?;
    }
    if let Some(a) = authority {
        validate_url(Place::Source(name, Some("authority")), "authority", a)?;
    }
    Ok(())
}

/// A required setting of a source is not empty.
pub(crate) fn require<'a>(name: &'a str, key: &'a str, value: &str) -> Result<(), Invalid<'a>> {
    if value.trim().is_empty() {
        return Err((
            Some(Place::Source(name, Some(key))),
            format!("source '{name}': {key} is empty"),
        ));
    }
    Ok(())
}

/// How a source signs in (identity-center and entra-oidc): absent, PKCE where a browser is
/// available, device code otherwise.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FlowKind {
    #[default]
    Pkce,
    Device,
}
