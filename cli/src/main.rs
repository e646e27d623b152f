//! `rolecall`: a thin client of the `rolecalld` socket, plus the shell integration.
//!
//! Each subcommand lives in its own module under `commands/`. The CLI links no async runtime
//! and no AWS SDK: `credential-process` and `prompt` run on every AWS call and every prompt.
//!
//! Those two hot commands are recognised before clap (see [`fast`]): building clap's command
//! tree for ~20 subcommands costs more than the whole prompt. Anything unusual goes to clap.

mod autostart;
mod awsconfig;
mod cli;
mod client;
mod clock;
mod commands;
mod fast;
mod printable;
mod spawn;

use clap::Parser;

fn main() {
    let args = fast::parse(std::env::args_os().skip(1)).unwrap_or_else(cli::Cli::parse);
    let code = match commands::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            // One line, no backtrace: the error chain joined, as users read it.
            let msg = format!("{e:#}");
            eprintln!(
                "rolecall: {}",
                msg.lines().next().unwrap_or("unknown error")
            );
            1
        }
    };
    std::process::exit(code);
}
