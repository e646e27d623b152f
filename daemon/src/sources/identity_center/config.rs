//! The `identity-center` source's settings and what it asks of its profiles.

use crate::config::source::{require, validate_endpoints};
use crate::config::{FlowKind, Invalid, Place, ProfileConfig};
use serde::Deserialize;

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
    /// Write this source's session to the AWS CLI's SSO cache (`~/.aws/sso/cache`) too, so
    /// `aws` and the SDKs share it (docs/interop.md). Reading that cache is always on.
    #[serde(default)]
    pub share_aws_cli_cache: bool,
    /// The AWS CLI `sso-session` whose cache file is shared; default: the source's name.
    #[serde(default)]
    pub sso_session: Option<String>,
}

impl IdentityCenterConfig {
    pub(crate) fn validate<'a>(&'a self, name: &'a str) -> Result<(), Invalid<'a>> {
        let p = |k: &'a str| Place::Source(name, Some(k));
        require(name, "start_url", &self.start_url)?;
        crate::config::load::validate_url(p("start_url"), "start_url", &self.start_url)?;
        require(name, "region", &self.region)?;
        if self
            .sso_session
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            return Err((
                Some(p("sso_session")),
                format!(
                    "source '{name}': sso_session is empty (leave it out to use the source's name)"
                ),
            ));
        }
        validate_endpoints(name, self.endpoint_url.as_deref(), None)
    }

    /// A profile names the account (a permission set exists per account) and no duration
    /// (Identity Center sets the session length).
    pub(crate) fn validate_profile<'a>(
        name: &'a str,
        profile: &'a ProfileConfig,
    ) -> Result<(), Invalid<'a>> {
        if profile.account.is_none() {
            return Err((
                Some(Place::Profile(name, None)),
                format!(
                    "profile '{name}': identity-center source '{}' needs account (a 12-digit account id)",
                    profile.source
                ),
            ));
        }
        if profile.duration.is_some() {
            return Err((
                Some(Place::Profile(name, Some("duration"))),
                format!("profile '{name}': duration applies to entra-* sources only (Identity Center sets the session length)"),
            ));
        }
        crate::config::profile::refuse_principal(name, profile)
    }
}
