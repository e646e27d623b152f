//! The daemon's log: `tracing` to `rolecalld.log` in the state dir (0600, rotated to
//! `rolecalld.log.1` when it passes a size cap), plus stderr with `--foreground`.
//!
//! Nothing secret is logged: secret-bearing types redact themselves in `Debug`, and events
//! carry names, ids and error messages, never keys or tokens.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The log is rotated once it passes this size; one old file is kept.
pub const MAX_LOG_BYTES: u64 = 8 * 1024 * 1024;

/// An append-only 0600 log file that rotates itself at a size cap.
pub struct CappedLog {
    path: PathBuf,
    cap: u64,
    state: Mutex<(File, u64)>,
}

fn open_log(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    // An older file may have been created with looser permissions.
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

fn rotated(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

impl CappedLog {
    pub fn open(path: &Path, cap: u64) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let mut file = open_log(path)?;
        let mut len = file.metadata()?.len();
        if len >= cap {
            std::fs::rename(path, rotated(path))?;
            file = open_log(path)?;
            len = 0;
        }
        Ok(Self {
            path: path.to_path_buf(),
            cap,
            state: Mutex::new((file, len)),
        })
    }

    fn write_record(&self, buf: &[u8]) -> io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.1 + buf.len() as u64 > self.cap && st.1 > 0 {
            // Best effort: a failed rotation keeps writing to the current file.
            if std::fs::rename(&self.path, rotated(&self.path)).is_ok() {
                if let Ok(f) = open_log(&self.path) {
                    *st = (f, 0);
                }
            }
        }
        st.0.write_all(buf)?;
        st.1 += buf.len() as u64;
        Ok(())
    }
}

/// One event's writer: buffers the formatted event and appends it in one write.
pub struct RecordWriter<'a> {
    log: &'a CappedLog,
    buf: Vec<u8>,
}

impl Write for RecordWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for RecordWriter<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.log.write_record(&self.buf);
        }
    }
}

impl<'a> MakeWriter<'a> for CappedLog {
    type Writer = RecordWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        RecordWriter {
            log: self,
            buf: Vec::with_capacity(256),
        }
    }
}

/// Targets that are clamped to `info` whatever `ROLECALL_LOG` asks for: at debug and trace
/// the AWS SDK, the HTTP stacks and TLS print request and response bodies and headers, which
/// carry refresh tokens, client secrets, authorization codes, SAML assertions and role
/// credentials.
const CLAMPED_TARGETS: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "aws_smithy_json",
    "aws_smithy_query",
    "aws_smithy_xml",
    "aws_smithy_async",
    "aws_smithy_observability",
    "aws_sdk_sso",
    "aws_sdk_ssooidc",
    "aws_sdk_sts",
    "aws_config",
    "aws_runtime",
    "aws_sigv4",
    "aws_credential_types",
    "hyper",
    "hyper_util",
    "hyper_rustls",
    "reqwest",
    "h2",
    "rustls",
    "oauth2",
];

/// The filter: `ROLECALL_LOG`, else `info`; then every target of [`CLAMPED_TARGETS`] at most
/// `info`. `RUST_LOG` is deliberately not read: a daemon inherits it from whatever shell
/// started it, and one `RUST_LOG=trace` would put secrets into the log for the daemon's life.
fn filter() -> EnvFilter {
    filter_from(std::env::var("ROLECALL_LOG").ok().as_deref())
}

fn filter_from(spec: Option<&str>) -> EnvFilter {
    spec.filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new("info"))
}

/// Whether `target` is (a module of) a crate of [`CLAMPED_TARGETS`].
fn is_clamped(target: &str) -> bool {
    CLAMPED_TARGETS.iter().any(|t| {
        target
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// The clamp, as a filter of its own after the `EnvFilter`: no directive of `ROLECALL_LOG`
/// (a more specific target, a span filter) can turn it off.
fn clamp<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber,
{
    tracing_subscriber::filter::filter_fn(|meta| {
        *meta.level() <= tracing::Level::INFO || !is_clamped(meta.target())
    })
}

/// Installs the global subscriber: the log file, and stderr when `foreground`.
pub fn init(log_path: &Path, foreground: bool) -> io::Result<()> {
    let file = CappedLog::open(log_path, MAX_LOG_BYTES)?;
    let file_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(false)
        .with_writer(file);
    let stderr_layer = foreground.then(|| {
        use std::io::IsTerminal;
        // Colour only for a person watching; journald and log files get plain text.
        tracing_subscriber::fmt::layer()
            .with_ansi(io::stderr().is_terminal())
            .with_target(false)
            .with_writer(io::stderr)
    });
    tracing_subscriber::registry()
        .with(filter())
        .with(clamp())
        .with(file_layer)
        .with(stderr_layer)
        .try_init()
        .map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::RoleCredentials;
    use std::os::unix::fs::PermissionsExt;
    use zeroize::Zeroizing;

    #[test]
    fn credentials_logged_through_tracing_show_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/rolecalld.log");
        let log = CappedLog::open(&path, MAX_LOG_BYTES).unwrap();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(log)
            .finish();
        let creds = RoleCredentials {
            access_key_id: "ASIAEXAMPLEKEYID0001".into(),
            secret_access_key: Zeroizing::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRET".into()),
            session_token: Zeroizing::new("FwoGZXIvYXdzEJr//////////wEaDSESSIONTOKEN".into()),
            expiration: 1_800_000_000,
            account_id: "111111111111".into(),
            role_arn: "arn:aws:iam::111111111111:role/Dev".into(),
        };
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(credentials = ?creds, "fetched");
            tracing::debug!("{creds:?}");
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("ASIAEXAMPLEKEYID0001"), "{text}");
        assert!(text.contains("redacted"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(!text.contains("SESSIONTOKEN"), "{text}");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn sdk_and_http_targets_stay_at_info_whatever_rolecall_log_says() {
        // (ROLECALL_LOG, whether rolecall's own debug events are logged)
        for (spec, own_debug) in [
            (Some("trace"), true),
            (
                Some("aws_smithy_runtime=trace,hyper=trace,reqwest=trace,trace"),
                true,
            ),
            (
                Some("aws_smithy_runtime::client::orchestrator=trace,hyper_util::client=trace"),
                false,
            ),
            (
                Some("debug,h2=trace,rustls=trace,aws_sdk_ssooidc=trace"),
                true,
            ),
            (None, false),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("rolecalld.log");
            let log = CappedLog::open(&path, MAX_LOG_BYTES).unwrap();
            let subscriber = tracing_subscriber::registry()
                .with(filter_from(spec))
                .with(clamp())
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(log),
                );
            tracing::subscriber::with_default(subscriber, || {
                for_each_clamped_target_event();
                tracing::debug!(target: "rolecall_daemon::broker", "own-debug");
                tracing::info!(target: "aws_smithy_runtime::client::orchestrator", "sdk-info");
            });
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(!text.contains("SECRET-BODY"), "{spec:?}: {text}");
            assert!(text.contains("sdk-info"), "{spec:?}: {text}");
            assert_eq!(
                text.contains("own-debug"),
                own_debug,
                "{spec:?}: rolecall's own targets follow ROLECALL_LOG"
            );
        }
        assert!(is_clamped("hyper") && is_clamped("hyper::proto::h1"));
        assert!(!is_clamped("hyperlocal_x") && !is_clamped("rolecall_daemon::broker"));
    }

    /// A debug and a trace event "with a request body" at each clamped target (`target:` must
    /// be a literal, hence the macro).
    fn for_each_clamped_target_event() {
        macro_rules! emit {
            ($($t:literal),*) => {$(
                tracing::trace!(target: $t, "SECRET-BODY refresh_token=abc");
                tracing::debug!(target: $t, "SECRET-BODY client_secret=abc");
            )*};
        }
        emit!(
            "aws_smithy_runtime",
            "aws_smithy_runtime::client::orchestrator",
            "aws_smithy_http_client",
            "aws_sdk_ssooidc",
            "aws_sdk_sts::operation",
            "aws_config",
            "hyper",
            "hyper_util::client",
            "reqwest::connect",
            "h2",
            "rustls::client",
            "oauth2"
        );
        // The list in the filter names the same crates.
        for t in [
            "aws_smithy_runtime",
            "aws_sdk_ssooidc",
            "hyper",
            "reqwest",
            "h2",
            "rustls",
        ] {
            assert!(CLAMPED_TARGETS.contains(&t));
        }
    }

    #[test]
    fn log_rotates_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rolecalld.log");
        let log = CappedLog::open(&path, 100).unwrap();
        for _ in 0..3 {
            log.write_record(&[b'x'; 60]).unwrap();
        }
        let old = std::fs::metadata(rotated(&path)).unwrap().len();
        let new = std::fs::metadata(&path).unwrap().len();
        assert_eq!((old, new), (60, 60));
        // Reopening a file past the cap starts a fresh one.
        std::fs::write(&path, [b'y'; 150]).unwrap();
        let _log = CappedLog::open(&path, 100).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert_eq!(std::fs::metadata(rotated(&path)).unwrap().len(), 150);
    }
}
