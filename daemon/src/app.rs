//! The daemon's shared state: the config (and its reload), the sources built from it, the
//! broker, the container endpoint's state, and the shutdown signal. Servers get an `Arc<App>`.

use crate::audit::{self, AuditLog};
use crate::broker::{Broker, CredentialRequest, Registry};
use crate::config::{self, LoadedConfig, SourceConfig};
use crate::endpoints::EnvSnapshot;
use crate::opener::Browser;
use crate::serve::container::{ContainerState, CredentialProvider, ProfileInfo};
use crate::serve::socket::{Control, SocketPeer};
use crate::shutdown::Shutdown;
use crate::sources::{RoleCredentials, Source, SourceError};
use rolecall_proto::api::{DaemonStatus, ErrorBody, Status};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// Builds the source named by the first argument from its config.
pub type SourceFactory =
    Arc<dyn Fn(&str, &SourceConfig) -> Result<Arc<dyn Source>, SourceError> + Send + Sync>;

/// What the daemon is built from.
pub struct AppParts {
    pub broker: Arc<Broker>,
    pub factory: SourceFactory,
    pub env: Arc<EnvSnapshot>,
    pub browser: Arc<dyn Browser>,
    pub config_path: PathBuf,
    pub socket_path: PathBuf,
    pub started_at: i64,
    /// The stop signal every task of this daemon watches.
    pub shutdown: Shutdown,
}

#[derive(Debug, Default)]
struct ConfigState {
    /// Whether the config file existed at the last successful load.
    exists: bool,
    /// Why the file on disk is not the config in use.
    error: Option<String>,
}

pub struct App {
    broker: Arc<Broker>,
    factory: SourceFactory,
    env: Arc<EnvSnapshot>,
    browser: Arc<dyn Browser>,
    config_path: PathBuf,
    socket_path: PathBuf,
    started_at: i64,
    config_state: Mutex<ConfigState>,
    // Serialises reloads (SIGHUP and `POST /v1/reload` may race).
    reload_lock: Mutex<()>,
    shutdown: Shutdown,
    container: RwLock<Option<Arc<ContainerState>>>,
    audit: OnceLock<AuditLog>,
}

impl App {
    pub fn new(parts: AppParts) -> Arc<Self> {
        Arc::new(Self {
            broker: parts.broker,
            factory: parts.factory,
            env: parts.env,
            browser: parts.browser,
            config_path: parts.config_path,
            socket_path: parts.socket_path,
            started_at: parts.started_at,
            config_state: Mutex::new(ConfigState::default()),
            reload_lock: Mutex::new(()),
            shutdown: parts.shutdown,
            container: RwLock::new(None),
            audit: OnceLock::new(),
        })
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    pub fn env(&self) -> &Arc<EnvSnapshot> {
        &self.env
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Reads the config file again and applies it; on error the config in use stays and the
    /// error is shown by `status` as `config_error`.
    pub fn reload(&self) -> Result<(), config::ConfigError> {
        let result = config::load(&self.config_path);
        self.apply(result.clone())?;
        Ok(())
    }

    /// Applies the outcome of a config load (the first one is done before the runtime exists).
    pub fn apply(
        &self,
        loaded: Result<LoadedConfig, config::ConfigError>,
    ) -> Result<(), config::ConfigError> {
        let _guard = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.broker.registry();
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "config not loaded; keeping the last good one");
                self.config_state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .error = Some(e.to_string());
                let mut reg = (*old).clone();
                reg.config_error = Some(e.to_string());
                self.broker.set_registry(reg);
                return Err(e);
            }
        };
        let mut sources: BTreeMap<String, Arc<dyn Source>> = BTreeMap::new();
        let mut broken = BTreeMap::new();
        for (name, cfg) in &loaded.config.sources {
            // An unchanged source keeps its instance: its session and any running login.
            let same = old.config.sources.get(name) == Some(cfg);
            if let (true, Some(existing)) = (same, old.sources.get(name)) {
                sources.insert(name.clone(), Arc::clone(existing));
                continue;
            }
            match (self.factory)(name, cfg) {
                Ok(s) => {
                    sources.insert(name.clone(), s);
                }
                Err(e) => {
                    tracing::error!(source = %name, error = %e, "source cannot be used");
                    broken.insert(name.clone(), e.to_string());
                }
            }
        }
        if old.config.daemon.container_listen != loaded.config.daemon.container_listen
            && old.config != config::Config::default()
        {
            tracing::warn!("container_listen changed; it takes effect when the daemon restarts");
        }
        tracing::info!(
            path = %loaded.path.display(),
            exists = loaded.exists,
            sources = loaded.config.sources.len(),
            profiles = loaded.config.profiles.len(),
            "config loaded"
        );
        {
            let mut st = self.config_state.lock().unwrap_or_else(|p| p.into_inner());
            st.exists = loaded.exists;
            st.error = None;
        }
        if let Some(c) = self.container() {
            c.set_token_ttl(loaded.config.daemon.container_token_ttl);
        }
        if let Some(a) = self.audit.get() {
            a.set_limits(
                loaded.config.daemon.audit_max_size,
                loaded.config.daemon.audit_files,
            );
        }
        self.broker.set_registry(Registry {
            config: loaded.config,
            sources,
            broken_sources: broken,
            config_error: None,
            env: Arc::clone(&self.env),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let broker = Arc::clone(&self.broker);
            rt.spawn(async move { broker.refresh_session_flags().await });
        }
        Ok(())
    }

    /// The stop signal: asking it stops every server (finishing replies in flight).
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    pub fn set_container(&self, state: Arc<ContainerState>) {
        *self.container.write().unwrap_or_else(|e| e.into_inner()) = Some(state);
    }

    /// The container endpoint's state, when it is running.
    pub fn container(&self) -> Option<Arc<ContainerState>> {
        self.container
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Where credential hand-outs are recorded (set once at start; absent when the log could
    /// not be opened, which the daemon log says).
    pub fn set_audit(&self, log: AuditLog) {
        let _ = self.audit.set(log);
    }

    /// Signs out of one source (or all) and revokes the container tokens minted under it: a
    /// token must not outlive the session it was handed out under.
    pub async fn logout(&self, source: Option<&str>) -> Result<(), ErrorBody> {
        self.broker.logout(source).await?;
        if let Some(c) = self.container() {
            let profiles = match source {
                Some(s) => self
                    .broker
                    .registry()
                    .config
                    .profiles
                    .iter()
                    .filter(|(_, p)| p.source == s)
                    .map(|(name, _)| name.clone())
                    .collect(),
                None => Vec::new(),
            };
            c.revoke_source(source, profiles);
        }
        Ok(())
    }

    pub async fn status(&self) -> Status {
        let (exists, error) = {
            let st = self.config_state.lock().unwrap_or_else(|p| p.into_inner());
            (st.exists, st.error.clone())
        };
        let container = self.container();
        Status {
            daemon: DaemonStatus {
                version: rolecall_proto::VERSION.to_string(),
                protocol: rolecall_proto::PROTOCOL_VERSION,
                pid: std::process::id(),
                started_at: self.started_at,
                socket: self.socket_path.display().to_string(),
                config: self.config_path.display().to_string(),
                config_error: error,
                config_missing: !exists,
                container_listen: container.as_ref().map(|c| c.listen_addr()),
            },
            sources: self.broker.source_statuses().await,
            profiles: self.broker.profile_statuses(),
            container_tokens: container.map(|c| c.token_status()).unwrap_or_default(),
        }
    }
}

/// What the socket API reads of the daemon, as the servers name it.
#[async_trait::async_trait]
impl Control for App {
    fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    fn env(&self) -> &Arc<EnvSnapshot> {
        &self.env
    }

    fn browser(&self) -> &Arc<dyn Browser> {
        &self.browser
    }

    fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    fn container(&self) -> Option<Arc<ContainerState>> {
        App::container(self)
    }

    fn reload(&self) -> Result<(), config::ConfigError> {
        App::reload(self)
    }

    async fn logout(&self, source: Option<&str>) -> Result<(), ErrorBody> {
        App::logout(self, source).await
    }

    async fn status(&self) -> Status {
        App::status(self).await
    }

    /// Records credentials handed out over the socket. `via` is what the client says it is
    /// (`credential_process`, `exec`, `env`); who it is comes from the kernel.
    fn audit_socket(
        &self,
        profile: &str,
        via: Option<&str>,
        peer: Option<SocketPeer>,
        creds: &RoleCredentials,
    ) {
        let Some(log) = self.audit.get() else { return };
        let caller = match peer {
            Some(p) => audit::caller::socket(p.uid, p.pid),
            None => rolecall_proto::audit::Caller::default(),
        };
        let interface = rolecall_proto::audit::Interface::from_via(via);
        let mut h = audit::handout(interface, profile, creds, caller, None);
        h.role = self.broker.profile(profile).map(|p| p.role);
        log.record(h);
    }
}

/// The container endpoint (and IMDS) get credentials through the broker: the same cache and
/// single-flight path as `credential_process`, never waiting for a login. What they hand out
/// is recorded in the audit log, when there is one.
pub struct BrokerProvider(pub Arc<Broker>, pub Option<AuditLog>);

#[async_trait::async_trait]
impl CredentialProvider for BrokerProvider {
    async fn credentials(&self, profile: &str) -> Result<RoleCredentials, ErrorBody> {
        self.0
            .credentials(profile, CredentialRequest::default())
            .await
    }

    async fn scoped_credentials(
        &self,
        profile: &str,
        scope: &rolecall_proto::scope::SessionScope,
    ) -> Result<RoleCredentials, ErrorBody> {
        self.0
            .scoped_credentials(profile, scope, CredentialRequest::default())
            .await
    }

    fn profile(&self, profile: &str) -> Option<ProfileInfo> {
        self.0.profile(profile).map(|p| ProfileInfo {
            region: p.region,
            role: p.role,
            source: p.source,
        })
    }

    fn generation(&self) -> Option<u64> {
        Some(self.0.generation())
    }

    fn audit(
        &self,
        record: &Arc<audit::Template>,
        caller: audit::TcpCaller,
        token: Option<Arc<rolecall_proto::audit::TokenRef>>,
    ) {
        if let Some(log) = &self.1 {
            log.record_templated(record, caller, token);
        }
    }
}
