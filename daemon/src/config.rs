//! The configuration file (docs/design.md, *Configuration*): `[daemon]`, `[sources.*]`,
//! `[profiles.*]`.
//!
//! Types here are the parsed, validated form. Loading reports a bad file as
//! `file:line:column: what is wrong`; the daemon keeps the last good config when a reload fails.
//! Each login source's own settings and checks live with the source
//! (`sources/<kind>/config.rs`); they are re-exported here.

use serde::Deserialize;
use std::collections::BTreeMap;

mod chain;
mod daemon;
pub(crate) mod load;
pub(crate) mod profile;
mod scoped;
pub(crate) mod source;
mod units;

#[cfg(test)]
mod tests;

pub use chain::CHAINED_MAX_SECS;
pub use daemon::{
    DaemonConfig, ImdsConfig, SecretStoreKind, DEFAULT_CONTAINER_TOKEN_TTL, MIN_REFRESH_AHEAD,
};
pub(crate) use load::{check_name, Invalid, Place};
pub use load::{load, parse, ConfigError, LoadedConfig};
pub(crate) use profile::is_iam_arn;
pub use profile::{is_account_id, ProfileConfig};
pub use source::{
    BrowserMode, EntraOidcConfig, EntraSamlConfig, FlowKind, IdentityCenterConfig, OidcTokenKind,
    SourceConfig,
};
pub use units::{duration_str, size_str};

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileConfig>,
}
