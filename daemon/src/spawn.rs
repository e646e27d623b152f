//! The one place the daemon starts processes (`clippy.toml` refuses `Command::new` elsewhere):
//! the user's browser opener, the capture browser, `hostname`. Callers set the arguments,
//! environment and stdio; this module only makes the command, so every spawn is found here.

/// A command for tokio to run (the browser, the opener).
#[allow(clippy::disallowed_methods)] // The spawn home: the one tokio `Command::new`.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
    tokio::process::Command::new(program)
}

/// A command run synchronously (short helpers such as `hostname`).
#[allow(clippy::disallowed_methods)] // The spawn home: the one std `Command::new`.
pub fn std_command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    std::process::Command::new(program)
}
