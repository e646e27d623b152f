//! The daemon's stop signal: one flag every task watches. Asking twice is harmless; a task
//! that starts watching after the request sees it at once.

use tokio::sync::watch;

/// The sending side, shared by whoever may stop the daemon (a signal, `POST /v1/shutdown`,
/// the caller of [`crate::run`]).
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            tx: watch::channel(false).0,
        }
    }

    /// Asks every task to stop (servers finish the replies in flight).
    pub fn request(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_requested(&self) -> bool {
        *self.tx.borrow()
    }

    /// A receiver for [`stopped`].
    pub fn signal(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// Resolves once a stop was requested.
    pub async fn requested(&self) {
        let mut rx = self.tx.subscribe();
        stopped(&mut rx).await;
    }
}

/// Resolves once `rx` (from [`Shutdown::signal`]) says stop. Holds no borrow of the channel's
/// value, so it can sit in a `select!` whose other branch awaits.
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_late_watcher_sees_an_earlier_request() {
        let s = Shutdown::new();
        let mut early = s.signal();
        s.request();
        stopped(&mut early).await;
        s.requested().await;
        assert!(s.is_requested());
    }
}
