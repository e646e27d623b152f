//! The `entra-saml` source's settings and what it asks of its profiles.

use crate::config::profile::{check_role_arn, is_iam_arn};
use crate::config::source::{require, validate_endpoints};
use crate::config::{Invalid, Place, ProfileConfig};
use serde::Deserialize;
use std::path::PathBuf;

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

impl EntraSamlConfig {
    pub(crate) fn validate<'a>(&'a self, name: &'a str) -> Result<(), Invalid<'a>> {
        require(name, "tenant", &self.tenant)?;
        validate_endpoints(
            name,
            self.endpoint_url.as_deref(),
            self.authority.as_deref(),
        )
    }

    /// A profile names a role ARN, and `principal`, when given, is a SAML provider ARN.
    pub(crate) fn validate_profile<'a>(
        name: &'a str,
        profile: &'a ProfileConfig,
    ) -> Result<(), Invalid<'a>> {
        check_role_arn("entra-saml", name, profile)?;
        if let Some(principal) = &profile.principal {
            if !is_iam_arn(principal, "saml-provider") {
                return Err((
                    Some(Place::Profile(name, Some("principal"))),
                    format!("profile '{name}': principal must be a SAML provider ARN like arn:aws:iam::123456789012:saml-provider/Name, got {principal:?}"),
                ));
            }
        }
        Ok(())
    }
}
