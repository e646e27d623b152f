//! Reading the config file: refusing one that others could write, parsing, validating, and
//! locating every problem as `file:line:column: what is wrong`.

use super::{chain, daemon, profile, Config};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

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
    super::scoped::load_policies(&mut config, path).map_err(|(name, key, message)| {
        let offset = Place::Profile(&name, Some(key)).offset(&spans, text);
        at(offset, message)
    })?;
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
    daemon::validate(config)?;
    for (name, source) in &config.sources {
        check_name(Place::Source(name, None), "source", name)?;
        source.validate(name)?;
    }
    for (name, profile) in &config.profiles {
        if profile.via.is_some() {
            chain::validate_chained(config, name, profile)?;
        } else {
            chain::refuse_chain_keys(name, profile)?;
            profile::validate(config, name, profile)?;
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

/// An http(s) URL with a host; plain http only to loopback.
pub(crate) fn validate_url<'a>(
    place: Place<'a>,
    key: &str,
    value: &str,
) -> Result<(), Invalid<'a>> {
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
