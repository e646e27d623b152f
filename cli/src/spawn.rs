//! The one place the CLI makes commands to run (`clippy.toml` refuses `Command::new`
//! elsewhere): the daemon it starts, `exec`'s child, service managers, the demo's processes.
//! Callers set arguments, environment and stdio.

use std::ffi::OsStr;
use std::process::Command;

/// A command for `program`.
#[allow(clippy::disallowed_methods)] // The spawn home: the one `Command::new`.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    Command::new(program)
}
