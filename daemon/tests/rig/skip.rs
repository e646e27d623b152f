//! The suite's skip convention: a test that cannot run on this machine (not root, a tool not
//! installed) must not be counted as a pass. `tests/run` sets `ROLECALL_SKIP_LOG` to a file;
//! each skip appends `<test name>: <reason>` to it, and `tests/run` moves those tests from
//! "passed" to "skipped" in its final line. Without the variable (a bare `cargo test`), the
//! reason still shows on stderr.

use std::io::Write;

/// Records that the calling test is skipped, and why; the test then returns.
pub fn skip(reason: &str) {
    let test = test_name();
    eprintln!("SKIP: {reason}");
    let Some(log) = std::env::var_os("ROLECALL_SKIP_LOG") else {
        return;
    };
    // One short write with O_APPEND: lines from tests running in parallel do not interleave.
    let line = format!("{test}: {reason}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        // A skip that cannot be recorded would be counted as a pass: fail instead.
        panic!("cannot record the skip in {}: {e}", log.to_string_lossy());
    }
}

/// libtest names each test's thread after the test; nextest runs one test per process.
fn test_name() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| s.rsplit_once('-').map_or(s.clone(), |(b, _)| b.to_string()))
        .unwrap_or_default();
    match std::thread::current().name() {
        Some(name) if name != "main" => format!("{binary}::{name}"),
        _ => {
            std::env::var("NEXTEST_TEST_NAME").map_or(binary.clone(), |n| format!("{binary}::{n}"))
        }
    }
}
