//! The daemon's one clock: wall-clock time (credential expiries, session ends) and monotonic
//! time (deadlines, rate limits), injected so that tests can move it (with
//! `tokio::time::pause`).
//!
//! This module is the only place that reads the system's clocks (`clippy.toml` refuses
//! `SystemTime::now`, `Instant::now` and `OffsetDateTime::now_utc` elsewhere): everything else asks a [`Clock`] or
//! [`monotonic`].

/// Seconds since the Unix epoch, and the monotonic time deadlines are measured in.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch. Credential expiries are wall-clock times.
    fn now(&self) -> i64;

    /// Monotonic time, for deadlines and intervals (tokio's, so a paused test runtime moves it).
    fn instant(&self) -> tokio::time::Instant {
        monotonic()
    }

    /// Wall-clock time as a date, for SAML time conditions (whole seconds unless the clock
    /// knows better).
    fn now_utc(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(self.now())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }
}

/// Monotonic time now: tokio's clock (paused and advanced in tests), the system's otherwise.
#[allow(clippy::disallowed_methods)] // The clock's home: the one read of the monotonic clock.
pub fn monotonic() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        rolecall_proto::timefmt::now_epoch()
    }

    #[allow(clippy::disallowed_methods)] // The clock's home: the wall clock to the nanosecond.
    fn now_utc(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
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
            start: monotonic(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> i64 {
        self.start_epoch + self.start.elapsed().as_secs() as i64
    }
}
