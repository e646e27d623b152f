//! The secret store as the sources see it, and the sources' factory over it. A store that
//! cannot be opened yet (the keyring does not answer) is retried in the background; meanwhile
//! every source explains why it waits.

use super::{Deps, Secrets};
use crate::app::{App, SourceFactory};
use crate::config::{Config, SecretStoreKind};
use crate::endpoints::EnvSnapshot;
use crate::shutdown::stopped;
use crate::sources::{self, SourceContext, SourceError};
use crate::vault::SecretStore;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The sources' context once the store is open, or why it is not (yet).
type StoreCell = Arc<RwLock<Result<Arc<SourceContext>, String>>>;

/// A store that could not be opened yet but may be later.
pub(super) struct PendingStore {
    cell: StoreCell,
    kind: SecretStoreKind,
    env: Arc<EnvSnapshot>,
    state_dir: PathBuf,
    /// The daemon's clock, which the sources read too.
    clock: Arc<dyn crate::clock::Clock>,
}

pub(super) struct Stores {
    pub factory: SourceFactory,
    /// The store, when it is open now (the container tokens live in it).
    pub store: Option<Arc<SecretStore>>,
    pub pending: Option<PendingStore>,
}

/// Opens the store `deps` names and builds the sources' factory over it: the one `deps`
/// gives, or the real sources.
pub(super) fn open(deps: &Deps, cfg: &Config, state_dir: &Path) -> Stores {
    let kind = cfg.daemon.secret_store;
    let opened = match &deps.secrets {
        Secrets::Store(s) => Ok(Arc::clone(s)),
        Secrets::FromConfig => SecretStore::open(state_dir, kind),
    };
    let env = Arc::clone(&deps.env);
    let (state, store, retry) = match opened {
        Ok(store) => {
            let ctx = SourceContext::new(Arc::clone(&store), Arc::clone(&env), state_dir.into())
                .with_clock(Arc::clone(&deps.clock));
            (Ok(Arc::new(ctx)), Some(store), false)
        }
        Err(e) => {
            tracing::error!(error = %e, "the secret store cannot be opened; sources are unavailable");
            (Err(e.to_string()), None, e.is_retryable())
        }
    };
    if let Some(factory) = &deps.sources {
        return Stores {
            factory: Arc::clone(factory),
            store,
            pending: None,
        };
    }
    let cell: StoreCell = Arc::new(RwLock::new(state));
    let reader = Arc::clone(&cell);
    let factory: SourceFactory = Arc::new(move |name, cfg| {
        let state = reader.read().unwrap_or_else(|p| p.into_inner());
        match &*state {
            Ok(ctx) => sources::build(name, cfg, ctx),
            Err(msg) => Err(SourceError::Config(msg.clone())),
        }
    });
    let pending = retry.then(|| PendingStore {
        cell,
        kind,
        env,
        state_dir: state_dir.into(),
        clock: Arc::clone(&deps.clock),
    });
    Stores {
        factory,
        store,
        pending,
    }
}

/// Opens the store again with growing pauses (2 s up to 1 min) while the keyring does not
/// answer; once it opens, the config is applied again so that the sources are built over it.
/// Never gives the store up meanwhile: status shows why each source waits.
pub(super) async fn retry(app: Arc<App>, p: PendingStore) {
    let mut delay = Duration::from_secs(2);
    let mut stop = app.shutdown().signal();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(&mut stop) => return,
        }
        let (dir, kind) = (p.state_dir.clone(), p.kind);
        let Ok(opened) = tokio::task::spawn_blocking(move || SecretStore::open(&dir, kind)).await
        else {
            return;
        };
        match opened {
            Ok(store) => {
                let ctx = SourceContext::new(store, Arc::clone(&p.env), p.state_dir.clone())
                    .with_clock(Arc::clone(&p.clock));
                *p.cell.write().unwrap_or_else(|e| e.into_inner()) = Ok(Arc::new(ctx));
                tracing::info!("the secret store is open now; building the sources");
                let _ = app.reload();
                return;
            }
            Err(e) => {
                let retry = e.is_retryable();
                tracing::warn!(error = %e, retry_in_secs = delay.as_secs(), retry, "the secret store still cannot be opened");
                *p.cell.write().unwrap_or_else(|e| e.into_inner()) = Err(e.to_string());
                if !retry {
                    let _ = app.reload();
                    return;
                }
                delay = (delay * 2).min(Duration::from_secs(60));
            }
        }
    }
}
