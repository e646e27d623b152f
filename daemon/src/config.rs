//! The configuration file (docs/design.md, *Configuration*): `[daemon]`, `[sources.*]`,
//! `[profiles.*]`.
//!
//! Types here are the parsed, validated form. Loading reports a bad file as
//! `file:line:column: what is wrong`; the daemon keeps the last good config when a reload fails.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

mod chain;
pub use chain::CHAINED_MAX_SECS;

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
    /// Write this source's session to the AWS CLI's SSO cache (`~/.aws/sso/cache`) too, so
    /// `aws` and the SDKs share it (docs/interop.md). Reading that cache is always on.
    #[serde(default)]
    pub share_aws_cli_cache: bool,
    /// The AWS CLI `sso-session` whose cache file is shared; default: the source's name.
    #[serde(default)]
    pub sso_session: Option<String>,
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

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// The login source. A chained profile (`via`) leaves it out; loading fills in the source
    /// at the root of its chain (its sessions, logins and logouts are that source's).
    #[serde(default)]
    pub source: String,
    /// Account id (identity-center; optional for entra-* where the role ARN names it).
    #[serde(default)]
    pub account: Option<String>,
    /// Friendly account name, shown by `status` and the prompt (written by `populate`).
    #[serde(default)]
    pub account_name: Option<String>,
    /// Permission set name (identity-center) or role ARN (entra-*). A chained profile leaves
    /// it out; loading fills in its `role_arn`.
    #[serde(default)]
    pub role: String,
    /// SAML provider ARN (entra-saml; required for encrypted assertions).
    #[serde(default)]
    pub principal: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub warm: bool,
    /// entra-* and chained profiles; clamped to what the assertion/role allows (1h when
    /// chained: AWS's role-chaining limit).
    #[serde(default, with = "duration_str::option")]
    pub duration: Option<Duration>,
    /// Role chaining (docs/chaining.md): the served profile whose credentials assume `role_arn`.
    #[serde(default)]
    pub via: Option<String>,
    #[serde(default)]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub session_tags: BTreeMap<String, String>,
    #[serde(default)]
    pub source_identity: Option<String>,
}

/// Sizes: a number of bytes, or a string with a binary unit: `"512KiB"`, `"10MiB"`, `"1GiB"`.
pub mod size_str {
    use serde::{Deserialize, Deserializer};

    pub fn parse(s: &str) -> Result<u64, String> {
        let t = s.trim();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        let (num, unit) = t.split_at(digits);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid size {s:?}: expected a number like \"10MiB\""))?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            u => {
                return Err(format!(
                    "invalid size {s:?}: unknown unit {u:?} (use KiB, MiB or GiB)"
                ))
            }
        };
        Ok(n.saturating_mul(mult))
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(n),
            Raw::Text(s) => parse(&s).map_err(serde::de::Error::custom),
        }
    }
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

// ---------------------------------------------------------------------------------------------
// Loading and validation
// ---------------------------------------------------------------------------------------------

/// A config file that cannot be used, located as `file:line:column: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub location: Option<(usize, usize)>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.location {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.path.display(), self.message)
            }
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A loaded configuration and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    pub path: PathBuf,
    /// False when the file does not exist (an empty config: the daemon still runs).
    pub exists: bool,
    pub config: Config,
}

/// The smallest `refresh_ahead` allowed: botocore refreshes credentials with less than 15
/// minutes left, so serving less would make every call re-run the helper.
pub const MIN_REFRESH_AHEAD: Duration = Duration::from_secs(15 * 60);

/// Reads and validates the config file at `path`. A missing file is an empty config.
pub fn load(path: &std::path::Path) -> Result<LoadedConfig, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(LoadedConfig {
                path: path.to_path_buf(),
                exists: false,
                config: Config::default(),
            })
        }
        Err(e) => {
            return Err(ConfigError {
                path: path.to_path_buf(),
                location: None,
                message: format!("cannot read the config file: {e}"),
            })
        }
    };
    check_file_safety(path)?;
    let config = parse(&text, path)?;
    Ok(LoadedConfig {
        path: path.to_path_buf(),
        exists: true,
        config,
    })
}

/// Refuses a config file that someone else could have written: it names the browser the daemon
/// runs and the endpoints refresh tokens and assertions are sent to. Only group/other *write*
/// is refused (0644 is fine); the owner must be the user running the daemon, or root.
fn check_file_safety(path: &std::path::Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::MetadataExt;
    let refuse = |message: String| ConfigError {
        path: path.to_path_buf(),
        location: None,
        message,
    };
    let meta =
        std::fs::metadata(path).map_err(|e| refuse(format!("cannot read the config file: {e}")))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(refuse(format!(
            "refused: the config file is owned by uid {}, not by you (uid {me}); another user could steer where your tokens go (copy it to a file you own)",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(refuse(format!(
            "refused: the config file is writable by group or others (mode {mode:04o}); another user could steer where your tokens go (fix: chmod go-w {})",
            path.display()
        )));
    }
    Ok(())
}

/// Parses and validates config text; `path` only names the file in errors.
pub fn parse(text: &str, path: &std::path::Path) -> Result<Config, ConfigError> {
    let at = |offset: Option<usize>, message: String| ConfigError {
        path: path.to_path_buf(),
        location: offset.map(|o| line_col(text, o)),
        message,
    };
    let config: Config =
        toml::from_str(text).map_err(|e| at(e.span().map(|s| s.start), first_line(e.message())))?;
    // A second, untyped pass only to find where each key is, for semantic errors.
    let spans: SpanDoc = toml::from_str(text).unwrap_or_default();
    validate(&config, &spans).map_err(|(place, message)| {
        let offset = place.and_then(|p| p.offset(&spans, text));
        at(offset, message)
    })?;
    let mut config = config;
    chain::fill_in_roots(&mut config);
    Ok(config)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, text[line_start..offset].chars().count() + 1)
}

type SpannedTable = BTreeMap<String, toml::Spanned<toml::Value>>;

/// The file's keys with their positions.
#[derive(Debug, Default, Deserialize)]
struct SpanDoc {
    #[serde(default)]
    daemon: SpannedTable,
    #[serde(default)]
    sources: BTreeMap<String, toml::Spanned<SpannedTable>>,
    #[serde(default)]
    profiles: BTreeMap<String, toml::Spanned<SpannedTable>>,
}

/// Where a semantic error points: a key of `[daemon]`, of a source, or of a profile.
pub(crate) enum Place<'a> {
    Daemon(&'a str),
    Source(&'a str, Option<&'a str>),
    Profile(&'a str, Option<&'a str>),
}

impl Place<'_> {
    fn offset(&self, spans: &SpanDoc, text: &str) -> Option<usize> {
        let (table, key) = match *self {
            Place::Daemon(key) => {
                return spans
                    .daemon
                    .get(key)
                    .map(|v| key_offset(text, key, v.span().start))
            }
            Place::Source(name, key) => (spans.sources.get(name)?, key),
            Place::Profile(name, key) => (spans.profiles.get(name)?, key),
        };
        match key.and_then(|k| table.get_ref().get(k).map(|v| (k, v))) {
            Some((k, v)) => Some(key_offset(text, k, v.span().start)),
            None => Some(table.span().start),
        }
    }
}

/// The key's own position when it stands before its value on the same line (`key = value`),
/// else the value's.
fn key_offset(text: &str, key: &str, value_start: usize) -> usize {
    let value_start = value_start.min(text.len());
    let line_start = text[..value_start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    match text[line_start..value_start].find(key) {
        Some(i) => line_start + i,
        None => value_start,
    }
}

pub(crate) type Invalid<'a> = (Option<Place<'a>>, String);

fn validate<'a>(config: &'a Config, _spans: &SpanDoc) -> Result<(), Invalid<'a>> {
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
    for (name, source) in &config.sources {
        check_name(Place::Source(name, None), "source", name)?;
        validate_source(name, source)?;
    }
    for (name, profile) in &config.profiles {
        if profile.via.is_some() {
            chain::validate_chained(config, name, profile)?;
        } else {
            chain::refuse_chain_keys(name, profile)?;
            validate_profile(config, name, profile)?;
        }
    }
    Ok(())
}

/// Source and profile names follow one rule (see `rolecall_proto::names`): they become file
/// names, secret-store keys, socket API paths and shell completion words.
pub(crate) fn check_name<'a>(place: Place<'a>, what: &str, name: &str) -> Result<(), Invalid<'a>> {
    if rolecall_proto::names::is_valid_name(name) {
        return Ok(());
    }
    Err((
        Some(place),
        format!(
            "{what} name {name:?} is not allowed: use {}",
            rolecall_proto::names::NAME_RULE
        ),
    ))
}

fn validate_url<'a>(place: Place<'a>, key: &str, value: &str) -> Result<(), Invalid<'a>> {
    match url::Url::parse(value) {
        // https anywhere, plain http only to loopback (see endpoints::check_transport).
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            crate::endpoints::check_transport(&u, key).map_err(|e| (Some(place), e))
        }
        _ => Err((
            Some(place),
            format!("{key} must be an http(s) URL, got {value:?}"),
        )),
    }
}

fn validate_source<'a>(name: &'a str, source: &'a SourceConfig) -> Result<(), Invalid<'a>> {
    let p = |k: &'a str| Place::Source(name, Some(k));
    let (endpoint, authority) = match source {
        SourceConfig::IdentityCenter(c) => {
            if c.start_url.trim().is_empty() {
                return Err((
                    Some(p("start_url")),
                    format!("source '{name}': start_url is empty"),
                ));
            }
            validate_url(p("start_url"), "start_url", &c.start_url)?;
            if c.region.trim().is_empty() {
                return Err((
                    Some(p("region")),
                    format!("source '{name}': region is empty"),
                ));
            }
            if c.sso_session
                .as_deref()
                .is_some_and(|s| s.trim().is_empty())
            {
                return Err((
                    Some(p("sso_session")),
                    format!("source '{name}': sso_session is empty (leave it out to use the source's name)"),
                ));
            }
            (&c.endpoint_url, &None)
        }
        SourceConfig::EntraSaml(c) => {
            if c.tenant.trim().is_empty() {
                return Err((
                    Some(p("tenant")),
                    format!("source '{name}': tenant is empty"),
                ));
            }
            (&c.endpoint_url, &c.authority)
        }
        SourceConfig::EntraOidc(c) => {
            if c.tenant.trim().is_empty() {
                return Err((
                    Some(p("tenant")),
                    format!("source '{name}': tenant is empty"),
                ));
            }
            if c.client_id.trim().is_empty() {
                return Err((
                    Some(p("client_id")),
                    format!("source '{name}': client_id is empty"),
                ));
            }
            (&c.endpoint_url, &c.authority)
        }
        SourceConfig::AwsLogin(c) => {
            crate::sources::aws_login::config::validate(name, c)
                .map_err(|(k, m)| (Some(p(k)), m))?;
            (&c.endpoint_url, &None)
        }
    };
    if let Some(e) = endpoint {
        validate_url(p("endpoint_url"), "endpoint_url", e)?;
    }
    if let Some(a) = authority {
        validate_url(p("authority"), "authority", a)?;
    }
    Ok(())
}

/// `arn:<partition>:iam::<12 digits>:<kind>/<name>`.
pub(crate) fn is_iam_arn(s: &str, kind: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iam" || !parts[3].is_empty() {
        return false;
    }
    let partition_ok =
        parts[1].starts_with("aws") && parts[1].chars().all(|c| c.is_ascii_lowercase() || c == '-');
    let name = parts[5]
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('/'));
    partition_ok && is_account_id(parts[4]) && name.is_some_and(|n| !n.is_empty())
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn validate_profile<'a>(
    config: &'a Config,
    name: &'a str,
    profile: &'a ProfileConfig,
) -> Result<(), Invalid<'a>> {
    let p = |k: &'a str| Place::Profile(name, Some(k));
    check_name(Place::Profile(name, None), "profile", name)?;
    let Some(source) = config.sources.get(&profile.source) else {
        let known: Vec<&str> = config.sources.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "no sources are configured".to_string()
        } else {
            format!("known sources: {}", known.join(", "))
        };
        return Err((
            Some(p("source")),
            format!(
                "profile '{name}' names unknown source '{}' ({known})",
                profile.source
            ),
        ));
    };
    if let Some(account) = &profile.account {
        if !is_account_id(account) {
            return Err((
                Some(p("account")),
                format!(
                    "profile '{name}': account must be a 12-digit AWS account id, got {account:?}"
                ),
            ));
        }
    }
    if let SourceConfig::AwsLogin(c) = source {
        return crate::sources::aws_login::config::validate_profile(name, c, profile)
            .map_err(|(k, m)| (Some(p(k)), m));
    }
    if profile.role.trim().is_empty() {
        return Err((Some(p("role")), format!("profile '{name}': role is empty")));
    }
    match source {
        SourceConfig::IdentityCenter(_) => {
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
                    Some(p("duration")),
                    format!("profile '{name}': duration applies to entra-* sources only (Identity Center sets the session length)"),
                ));
            }
        }
        SourceConfig::AwsLogin(_) => {}
        SourceConfig::EntraSaml(_) | SourceConfig::EntraOidc(_) => {
            if !is_iam_arn(&profile.role, "role") {
                return Err((
                    Some(p("role")),
                    format!(
                        "profile '{name}': role must be an IAM role ARN like arn:aws:iam::123456789012:role/Name for {} source '{}', got {:?}",
                        source.kind_name(),
                        profile.source,
                        profile.role
                    ),
                ));
            }
            if let Some(account) = &profile.account {
                let arn_account = profile.role.split(':').nth(4).unwrap_or_default();
                if arn_account != account {
                    return Err((
                        Some(p("account")),
                        format!("profile '{name}': account {account} differs from the role ARN's account {arn_account}"),
                    ));
                }
            }
        }
    }
    if let Some(principal) = &profile.principal {
        if !matches!(source, SourceConfig::EntraSaml(_)) {
            return Err((
                Some(p("principal")),
                format!("profile '{name}': principal applies to entra-saml sources only"),
            ));
        }
        if !is_iam_arn(principal, "saml-provider") {
            return Err((
                Some(p("principal")),
                format!("profile '{name}': principal must be a SAML provider ARN like arn:aws:iam::123456789012:saml-provider/Name, got {principal:?}"),
            ));
        }
    }
    if let Some(d) = profile.duration {
        if !(900..=43_200).contains(&d.as_secs()) {
            return Err((
                Some(p("duration")),
                format!(
                    "profile '{name}': duration must be between 15m and 12h, got {}s",
                    d.as_secs()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn err(text: &str) -> String {
        parse(text, Path::new("/c/config.toml"))
            .expect_err("config should be refused")
            .to_string()
    }

    const GOOD: &str = r#"
[daemon]
refresh_ahead = "20m"

[sources.corp]
kind = "identity-center"
start_url = "https://d-1234567890.awsapps.com/start"
region = "eu-west-1"

[sources.legacy]
kind = "entra-saml"
tenant = "contoso.onmicrosoft.com"
app_identifier = "https://signin.aws.amazon.com/saml#1"

[profiles.dev-admin]
source = "corp"
account = "111111111111"
role = "DeveloperAdmin"

[profiles.legacy-admin]
source = "legacy"
role = "arn:aws:iam::333333333333:role/EntraAdmin"
principal = "arn:aws:iam::333333333333:saml-provider/EntraID"
duration = "4h"
"#;

    #[test]
    fn good_config_parses() {
        let c = parse(GOOD, Path::new("x")).unwrap();
        assert_eq!(c.sources.len(), 2);
        assert_eq!(
            c.profiles["dev-admin"].account.as_deref(),
            Some("111111111111")
        );
        assert_eq!(
            c.profiles["legacy-admin"].duration,
            Some(Duration::from_secs(4 * 3600))
        );
        assert_eq!(c.daemon.refresh_ahead, Duration::from_secs(1200));
    }

    #[test]
    fn missing_file_is_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        let l = load(&dir.path().join("nope.toml")).unwrap();
        assert!(!l.exists);
        assert!(l.config.profiles.is_empty());
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        assert_eq!(
            err("[daemon]\nrefresh_ahead = \"20m\"\nauto_login = tru\n"),
            "/c/config.toml:3:14: invalid string\nexpected `\"`, `'`"
                .lines()
                .next()
                .unwrap()
                .to_string()
        );
    }

    #[test]
    fn unknown_key_points_at_key() {
        let e = err("[daemon]\nrefresh_ahed = \"20m\"\n");
        assert!(
            e.starts_with("/c/config.toml:2:1: unknown field `refresh_ahed`"),
            "{e}"
        );
    }

    #[test]
    fn bad_duration_is_located() {
        let e = err("[daemon]\nrefresh_ahead = \"20x\"\n");
        assert!(
            e.starts_with("/c/config.toml:2:17: invalid duration"),
            "{e}"
        );
    }

    #[test]
    fn refresh_ahead_must_exceed_15m() {
        let e = err("\n[daemon]\n  refresh_ahead = \"15m\"\n");
        assert!(
            e.starts_with("/c/config.toml:3:3: refresh_ahead must be more than 15m"),
            "{e}"
        );
    }

    #[test]
    fn unknown_source_in_profile() {
        let text = GOOD.replace("source = \"corp\"", "source = \"crop\"");
        let e = err(&text);
        let line = text.lines().position(|l| l.contains("\"crop\"")).unwrap() + 1;
        assert_eq!(
            e,
            format!("/c/config.toml:{line}:1: profile 'dev-admin' names unknown source 'crop' (known sources: corp, legacy)")
        );
    }

    #[test]
    fn bad_account_id() {
        let text = GOOD.replace("\"111111111111\"", "\"11111111111\"");
        let e = err(&text);
        let line = text
            .lines()
            .position(|l| l.contains("11111111111"))
            .unwrap()
            + 1;
        assert!(
            e.starts_with(&format!(
                "/c/config.toml:{line}:1: profile 'dev-admin': account must be a 12-digit"
            )),
            "{e}"
        );
    }

    #[test]
    fn bad_role_arn_for_entra() {
        let text = GOOD.replace("arn:aws:iam::333333333333:role/EntraAdmin", "EntraAdmin");
        let e = err(&text);
        let line = text
            .lines()
            .position(|l| l == "role = \"EntraAdmin\"")
            .unwrap()
            + 1;
        assert!(
            e.starts_with(&format!(
                "/c/config.toml:{line}:1: profile 'legacy-admin': role must be an IAM role ARN"
            )),
            "{e}"
        );
    }

    #[test]
    fn missing_start_url() {
        let text = GOOD.replace(
            "start_url = \"https://d-1234567890.awsapps.com/start\"\n",
            "",
        );
        let e = err(&text);
        assert!(e.contains("missing field `start_url`"), "{e}");
        let line = text.lines().position(|l| l == "[sources.corp]").unwrap() + 1;
        assert!(e.starts_with(&format!("/c/config.toml:{line}:")), "{e}");
    }

    #[test]
    fn plain_http_off_loopback_is_refused_for_every_url() {
        let text = GOOD.replace(
            "https://d-1234567890.awsapps.com/start",
            "http://d-1234567890.awsapps.com/start",
        );
        let e = err(&text);
        assert!(e.contains("start_url") && e.contains("plain http"), "{e}");
        let e = err(&GOOD.replace(
            "app_identifier =",
            "authority = \"http://login.example.com\"\napp_identifier =",
        ));
        assert!(e.contains("authority") && e.contains("plain http"), "{e}");
        let e = err(&GOOD.replace(
            "region = \"eu-west-1\"\n",
            "region = \"eu-west-1\"\nendpoint_url = \"http://10.1.2.3:4566\"\n",
        ));
        assert!(
            e.contains("endpoint_url") && e.contains("plain http"),
            "{e}"
        );
        // Loopback http stays allowed (the sandbox, LocalStack).
        parse(
            &GOOD.replace(
                "region = \"eu-west-1\"\n",
                "region = \"eu-west-1\"\nendpoint_url = \"http://127.0.0.1:4566\"\n",
            ),
            Path::new("x"),
        )
        .unwrap();
    }

    #[test]
    fn identity_center_profile_needs_account() {
        let text = GOOD.replace("account = \"111111111111\"\n", "");
        let e = err(&text);
        let line = text
            .lines()
            .position(|l| l == "[profiles.dev-admin]")
            .unwrap()
            + 1;
        assert!(
            e.starts_with(&format!("/c/config.toml:{line}:")) && e.contains("needs account"),
            "{e}"
        );
    }

    #[test]
    fn bad_principal_and_unknown_kind() {
        let e = err(&GOOD.replace("saml-provider/EntraID", "role/EntraID"));
        assert!(e.contains("principal must be a SAML provider ARN"), "{e}");
        let e = err(&GOOD.replace("kind = \"entra-saml\"", "kind = \"entra-magic\""));
        assert!(e.contains("entra-magic"), "{e}");
    }

    #[test]
    fn aws_cli_cache_keys() {
        let text = GOOD.replace(
            "region = \"eu-west-1\"\n",
            "region = \"eu-west-1\"\nshare_aws_cli_cache = true\nsso_session = \"my-sso\"\n",
        );
        let c = parse(&text, Path::new("x")).unwrap();
        let SourceConfig::IdentityCenter(ic) = &c.sources["corp"] else {
            panic!("identity-center expected")
        };
        assert!(ic.share_aws_cli_cache);
        assert_eq!(ic.sso_session.as_deref(), Some("my-sso"));
        let text = text.replace("\"my-sso\"", "\" \"");
        let line = text
            .lines()
            .position(|l| l.starts_with("sso_session"))
            .unwrap()
            + 1;
        assert!(
            err(&text).starts_with(&format!(
                "/c/config.toml:{line}:1: source 'corp': sso_session is empty"
            )),
            "{}",
            err(&text)
        );
    }

    #[test]
    fn daemon_addresses_and_imds_are_checked() {
        let e = err("[daemon]\ncontainer_listen = \"localhost\"\n");
        assert!(
            e.starts_with("/c/config.toml:2:1: container_listen must be an address and port"),
            "{e}"
        );
        let text =
            format!("{GOOD}\n[daemon.imds]\nlisten = \"127.0.0.1:9912\"\nprofile = \"nope\"\n");
        // `[daemon]` appears twice in that text: toml itself refuses it, with a place.
        assert!(err(&text).starts_with("/c/config.toml:"), "{}", err(&text));
        let text = GOOD.replace(
            "refresh_ahead = \"20m\"",
            "refresh_ahead = \"20m\"\nimds = { listen = \"127.0.0.1:9912\", profile = \"nope\" }",
        );
        let e = err(&text);
        assert!(
            e.ends_with("imds.profile names unknown profile 'nope'"),
            "{e}"
        );
        assert!(e.starts_with("/c/config.toml:4:1: "), "{e}");
        let text = GOOD.replace(
            "refresh_ahead = \"20m\"",
            "refresh_ahead = \"20m\"\nimds = { listen = \"0.0.0.0:9912\", profile = \"dev-admin\" }",
        );
        let e = err(&text);
        assert!(
            e.starts_with("/c/config.toml:4:1: imds.listen must be a loopback address"),
            "{e}"
        );
        let text = GOOD.replace(
            "refresh_ahead = \"20m\"",
            "refresh_ahead = \"20m\"\nimds = { listen = \"[::1]:9912\", profile = \"dev-admin\" }",
        );
        assert!(parse(&text, Path::new("/c/config.toml")).is_ok());
    }

    #[test]
    fn container_token_ttl_is_a_bounded_duration() {
        let ok = parse(
            &GOOD.replace(
                "refresh_ahead = \"20m\"",
                "refresh_ahead = \"20m\"\ncontainer_token_ttl = \"2h\"",
            ),
            Path::new("/c/config.toml"),
        )
        .unwrap();
        assert_eq!(ok.daemon.container_token_ttl, Duration::from_secs(7200));
        let dflt = parse(GOOD, Path::new("/c/config.toml")).unwrap();
        assert_eq!(dflt.daemon.container_token_ttl, DEFAULT_CONTAINER_TOKEN_TTL);
        let e = err(&GOOD.replace(
            "refresh_ahead = \"20m\"",
            "refresh_ahead = \"20m\"\ncontainer_token_ttl = \"10s\"",
        ));
        assert!(
            e.starts_with("/c/config.toml:4:1: container_token_ttl must be between 1m and 30d"),
            "{e}"
        );
    }

    #[test]
    fn audit_bounds_are_sizes_and_counts() {
        let with = |line: &str| {
            GOOD.replace(
                "refresh_ahead = \"20m\"",
                &format!("refresh_ahead = \"20m\"\n{line}"),
            )
        };
        let dflt = parse(GOOD, Path::new("/c/config.toml")).unwrap();
        assert_eq!(
            (dflt.daemon.audit_max_size, dflt.daemon.audit_files),
            (10 << 20, 3)
        );
        for (line, size) in [
            ("audit_max_size = \"512KiB\"", 512 << 10),
            ("audit_max_size = \"2MiB\"", 2 << 20),
            ("audit_max_size = 4096", 4096),
        ] {
            let c = parse(&with(line), Path::new("/c/config.toml")).unwrap();
            assert_eq!(c.daemon.audit_max_size, size, "{line}");
        }
        let e = err(&with("audit_max_size = \"10MB\""));
        assert!(e.contains("unknown unit \"MB\""), "{e}");
        let e = err(&with("audit_max_size = 10"));
        assert!(
            e.contains("audit_max_size must be between 1KiB and 1GiB"),
            "{e}"
        );
        let e = err(&with("audit_files = 0"));
        assert!(e.contains("audit_files must be between 1 and 100"), "{e}");
    }

    #[test]
    fn entra_profile_checks() {
        let e = err(&GOOD.replace("duration = \"4h\"", "duration = \"13h\""));
        assert!(e.contains("duration must be between 15m and 12h"), "{e}");
        let e = err(&GOOD.replace(
            "role = \"arn:aws:iam::333333333333:role/EntraAdmin\"",
            "role = \"arn:aws:iam::333333333333:role/EntraAdmin\"\naccount = \"444444444444\"",
        ));
        assert!(
            e.contains("differs from the role ARN's account 333333333333"),
            "{e}"
        );
        let e = err(&GOOD.replace(
            "account = \"111111111111\"",
            "account = \"111111111111\"\nduration = \"1h\"",
        ));
        assert!(
            e.contains("duration applies to entra-* sources only"),
            "{e}"
        );
        assert!(is_iam_arn(
            "arn:aws-us-gov:iam::123456789012:role/path/Name",
            "role"
        ));
        assert!(!is_iam_arn("arn:aws:iam::12345678901:role/Name", "role"));
        assert!(!is_iam_arn("arn:aws:sts::123456789012:role/Name", "role"));
        assert!(!is_iam_arn("arn:aws:iam::123456789012:role/", "role"));
    }

    #[test]
    fn names_follow_one_rule() {
        let text = GOOD.replace("[sources.corp]", "[sources.\"$(touch /tmp/x)\"]");
        let text = text.replace("source = \"corp\"", "source = \"$(touch /tmp/x)\"");
        let e = err(&text);
        let line = text
            .lines()
            .position(|l| l.starts_with("[sources.\"$("))
            .unwrap()
            + 1;
        assert!(
            e.starts_with(&format!(
                "/c/config.toml:{line}:1: source name \"$(touch /tmp/x)\" is not allowed"
            )),
            "{e}"
        );
        let e = err(&GOOD.replace("[sources.corp]", "[sources.\"../x\"]"));
        assert!(e.contains("source name \"../x\" is not allowed"), "{e}");
        for bad in ["`id`", "a b", ".hidden", "x/y"] {
            let e = err(&GOOD.replace("[profiles.dev-admin]", &format!("[profiles.\"{bad}\"]")));
            assert!(
                e.contains("profile name") && e.contains("not allowed"),
                "{bad}: {e}"
            );
            let line = GOOD
                .lines()
                .position(|l| l == "[profiles.dev-admin]")
                .unwrap()
                + 1;
            assert!(e.starts_with(&format!("/c/config.toml:{line}:1:")), "{e}");
        }
    }

    #[test]
    fn config_writable_by_others_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, GOOD).unwrap();
        for (mode, ok) in [(0o600, true), (0o644, true), (0o664, false), (0o646, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            match load(&path) {
                Ok(l) => assert!(ok, "mode {mode:o} accepted: {:?}", l.path),
                Err(e) => {
                    assert!(!ok, "mode {mode:o} refused: {e}");
                    let e = e.to_string();
                    assert_eq!(e.lines().count(), 1, "{e}");
                    assert!(e.contains(&format!("chmod go-w {}", path.display())), "{e}");
                }
            }
        }
    }

    #[test]
    fn config_owned_by_another_user_is_refused() {
        // Needs root to give the file away (CI runs as root).
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            let reason = "giving a file to another user needs root";
            if let Some(log) = std::env::var_os("ROLECALL_SKIP_LOG") {
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(log)
                {
                    let _ = writeln!(f, "config_owned_by_another_user_is_refused: {reason}");
                }
            }
            eprintln!("SKIP: {reason}");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, GOOD).unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let e = load(&path).expect_err("owned by nobody").to_string();
        assert!(e.contains("owned by uid 65534"), "{e}");
        std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
        load(&path).unwrap();
    }
}
