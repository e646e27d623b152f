//! The CLI's one read of the system's clocks (`clippy.toml` refuses `SystemTime::now` and
//! `Instant::now` elsewhere), so that every use of time is found here.

use std::time::{Instant, SystemTime};

/// Monotonic time now, for deadlines and waits.
#[allow(clippy::disallowed_methods)] // The clock's home: the one read of the monotonic clock.
pub fn monotonic() -> Instant {
    Instant::now()
}

/// Wall-clock time now (file stamps, unique names).
#[allow(clippy::disallowed_methods)] // The clock's home: the one read of the wall clock.
pub fn system_now() -> SystemTime {
    SystemTime::now()
}
