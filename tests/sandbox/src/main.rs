//! `rolecall-sandbox`: serve the emulator on loopback (printing the base URL as the first line
//! of stdout), or act as a tiny robot browser (`browse URL`) for `$BROWSER`.

mod browse;

use clap::{Parser, Subcommand};
use rolecall_sandbox::{directory::Directory, SandboxOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "rolecall-sandbox",
    version,
    about = "Local emulator of IAM Identity Center, Entra ID and STS for rolecall's tests and demo"
)]
struct Args {
    /// Loopback address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Approve every browser step as soon as its URL is visited.
    #[arg(long)]
    auto_approve: bool,
    /// Directory seed (TOML); default: the built-in Contoso directory.
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Visit a loopback http:// URL like a browser would, following redirects; exit 0 when the
    /// final page is 2xx. Meant as `$BROWSER` for tests and the demo.
    Browse {
        /// The URL to open.
        url: String,
    },
}

fn main() {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => fail(&format!("cannot start the runtime: {e}")),
    };
    let code = match args.command {
        Some(Command::Browse { url }) => match rt.block_on(browse::browse(&url)) {
            Ok(()) => 0,
            Err(e) => fail(&e.to_string()),
        },
        None => match rt.block_on(serve(args.listen, args.auto_approve, args.seed)) {
            Ok(()) => 0,
            Err(e) => fail(&format!("{e:#}")),
        },
    };
    std::process::exit(code);
}

fn fail(msg: &str) -> ! {
    eprintln!("rolecall-sandbox: {msg}");
    std::process::exit(1);
}

async fn serve(
    listen: SocketAddr,
    auto_approve: bool,
    seed: Option<PathBuf>,
) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ROLECALL_SANDBOX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let directory = match seed {
        Some(p) => Some(Directory::load(&p).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let running = rolecall_sandbox::start(SandboxOptions {
        listen: Some(listen),
        auto_approve,
        directory,
        lifetimes: None,
    })
    .await?;
    {
        // The first stdout line is the contract with whoever started us.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", running.base_url)?;
        out.flush()?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    running.shutdown().await;
    Ok(())
}
