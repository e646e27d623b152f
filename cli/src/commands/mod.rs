//! One module per subcommand. Each `run` returns the process exit code; errors become one
//! line on stderr in `main`.

use crate::cli::{Cli, Command};

mod audit;
mod completions;
mod console;
mod container;
mod credential_process;
mod daemon;
mod demo;
mod env;
mod exec;
mod import;
mod init;
mod login;
mod man;
mod names;
mod populate;
mod prompt;
mod relay;
mod service;
mod setup;
mod status;
mod use_profile;

pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let autostart = !cli.no_autostart;
    match cli.command {
        Command::Login(a) => login::run_login(&a, autostart),
        Command::Logout(a) => login::run_logout(&a, autostart),
        Command::CredentialProcess(a) => credential_process::run(&a, autostart),
        Command::Use(a) => use_profile::run(&a),
        Command::Status(a) => status::run(&a, autostart),
        Command::Prompt(a) => prompt::run(&a),
        Command::Init(a) => init::run(&a),
        Command::Completions(a) => completions::run(&a),
        Command::Populate(a) => populate::run(&a, autostart),
        Command::Import(a) => import::run(&a),
        Command::Container(a) => container::run(&a, autostart),
        Command::Exec(a) => exec::run(&a, autostart),
        Command::Env(a) => env::run(&a, autostart),
        Command::Console(a) => console::run(&a, autostart),
        Command::Audit(a) => audit::run(&a),
        Command::Relay(a) => relay::run(&a),
        Command::Daemon(a) => daemon::run(&a),
        Command::Service(a) => service::run(&a),
        Command::Setup(a) => setup::run(&a, autostart),
        Command::Demo(a) => demo::run(&a),
        Command::Names(a) => names::run(&a),
        Command::Man(a) => man::run(&a),
    }
}
