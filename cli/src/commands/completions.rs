//! `rolecall completions <shell>`: static completions generated from the clap definition
//! (subcommands and flags). The `rolecall init` scripts add dynamic profile and source names
//! on top; this is for people who want completions without the shell integration.

use crate::cli::{Cli, CompletionsArgs};
use anyhow::Context;
use clap::CommandFactory;
use std::io::Write;

pub fn run(a: &CompletionsArgs) -> anyhow::Result<i32> {
    let mut cmd = Cli::command();
    // Generated into memory first: clap_complete panics on a failed write (a closed pipe).
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "rolecall", &mut buf);
    let mut out = std::io::stdout().lock();
    out.write_all(&buf)
        .and_then(|_| out.flush())
        .context("cannot write to stdout")?;
    Ok(0)
}
