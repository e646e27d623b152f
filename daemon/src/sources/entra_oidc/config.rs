//! The `entra-oidc` source's settings and what it asks of its profiles.

use crate::config::profile::{check_role_arn, refuse_principal};
use crate::config::source::{require, validate_endpoints};
use crate::config::{FlowKind, Invalid, ProfileConfig};
use serde::Deserialize;

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

impl EntraOidcConfig {
    pub(crate) fn validate<'a>(&'a self, name: &'a str) -> Result<(), Invalid<'a>> {
        require(name, "tenant", &self.tenant)?;
        require(name, "client_id", &self.client_id)?;
        validate_endpoints(
            name,
            self.endpoint_url.as_deref(),
            self.authority.as_deref(),
        )
    }

    /// A profile names a role ARN (the web identity's trust is on the role).
    pub(crate) fn validate_profile<'a>(
        name: &'a str,
        profile: &'a ProfileConfig,
    ) -> Result<(), Invalid<'a>> {
        check_role_arn("entra-oidc", name, profile)?;
        refuse_principal(name, profile)
    }
}
