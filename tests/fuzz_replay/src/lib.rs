//! The bodies of the fuzz targets. `fuzz/` (cargo-fuzz, libFuzzer) calls them with generated
//! inputs; `tests/replay.rs` calls them with every committed corpus and regression input, so CI
//! replays the corpus on stable Rust in seconds. Each function panics when a property fails;
//! returning means the input was handled correctly (refused inputs included).

pub mod awsconfig_block;
pub mod config_parse;
pub mod container_request;
pub mod saml_response;
pub mod socket_request;
pub mod start_url;

/// The CLI is a binary crate: its `~/.aws/config` editor is compiled in from its source file
/// (it depends on std only), so the fuzzer runs the very code `rolecall populate` runs.
/// (The inline module names the directory, so `awsconfig`'s own `mod tests` resolves beside
/// it, as in the CLI; that module is `cfg(test)` and this lib has no unit tests.)
#[path = "../../../cli/src"]
mod cli_src {
    pub mod awsconfig;
}
pub use cli_src::awsconfig;

/// `awsconfig`'s unit tests (compiled under `clippy --all-targets`) run `sh` through the CLI's
/// one process-spawning module, resolved at the crate root as in the CLI.
#[cfg(test)]
#[path = "../../../cli/src/spawn.rs"]
mod spawn;

/// A target's body: one input in, a panic when a property fails.
pub type Body = fn(&[u8]);

/// Every target by the name its corpus directory and cargo-fuzz binary carry.
pub const TARGETS: &[(&str, Body)] = &[
    ("saml_response", saml_response::run),
    ("config_parse", config_parse::run),
    ("socket_request", socket_request::run),
    ("container_request", container_request::run),
    ("start_url", start_url::run),
    ("awsconfig_block", awsconfig_block::run),
];

/// Splits an input at the first NUL byte (for targets that take two strings).
pub(crate) fn two_parts(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
