//! Wall-clock time, injected so that tests can move it (with `tokio::time::pause`).

/// Seconds since the Unix epoch. Credential expiries are wall-clock times.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> i64;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        rolecall_proto::timefmt::now_epoch()
    }
}

/// A clock that follows tokio's (pausable, advanceable) clock from a fixed start.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start_epoch: i64,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(start_epoch: i64) -> Self {
        Self {
            start_epoch,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> i64 {
        self.start_epoch + self.start.elapsed().as_secs() as i64
    }
}
