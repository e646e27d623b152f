//! The arguments of the commands that serve credentials to other programs (container, exec,
//! env, console, relay), read the audit log, or manage the daemon and its service.

use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ContainerArgs {
    #[command(subcommand)]
    pub command: Option<ContainerCommand>,
    /// The profile to mint a token for.
    pub profile: Option<String>,
    #[arg(long, value_enum, default_value = "env")]
    pub format: ContainerFormat,
    /// Write the token to this file (0600) and print AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Use AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (169.254.170.2, after `container setup`).
    #[arg(long)]
    pub relative: bool,
    /// EKS Pod Identity style: AWS_CONTAINER_CREDENTIALS_FULL_URI is
    /// http://169.254.170.23/v1/credentials (after `container setup`), where the token alone
    /// selects the profile. Implied by --format k8s.
    #[arg(long, conflicts_with = "relative")]
    pub pod_identity: bool,
    /// Revoke the profile's tokens (all tokens with --all).
    #[arg(long)]
    pub revoke: bool,
    /// Give the profile's tokens a full lifetime from now (container_token_ttl) instead of
    /// minting a new one.
    #[arg(long, conflicts_with_all = ["revoke", "token_file", "relative", "pod_identity"])]
    pub renew: bool,
    #[arg(long, requires = "revoke")]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Print (or --apply) the one-time root step that forwards 169.254.170.2:80 and
    /// 169.254.170.23:80 (Pod Identity) to rolecalld.
    Setup(ContainerSetupArgs),
}

#[derive(Debug, Args)]
pub struct ContainerSetupArgs {
    /// Run the printed commands through sudo.
    #[arg(long)]
    pub apply: bool,
    /// Print the Docker Desktop relay setup instead of the Linux DNAT rule.
    #[arg(long)]
    pub docker_desktop: bool,
    /// Linux: the bridge interface containers arrive on (docker0, br-… for a user-defined
    /// network); required, the forward is never made on every interface.
    #[arg(long, conflicts_with = "docker_desktop")]
    pub interface: Option<String>,
    /// The daemon's container listener to forward to (default: asked from rolecalld).
    #[arg(long)]
    pub to: Option<String>,
    /// Undo the forwarding instead (with --apply: run the removal).
    #[arg(long)]
    pub remove: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ContainerFormat {
    Env,
    Docker,
    Compose,
    /// A Kubernetes Secret (the token) and ConfigMap (the variables), Pod Identity style.
    K8s,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    pub profile: String,
    /// Export plain keys instead of the container endpoint.
    #[arg(long = "static")]
    pub static_keys: bool,
    /// Narrow the child's credentials to reads: a scoped session with AWS's managed
    /// ReadOnlyAccess as its session policy (docs/scoped-sessions.md).
    #[arg(long, conflicts_with = "policy")]
    pub read_only: bool,
    /// Narrow the child's credentials with this IAM policy document (JSON, at most 2048
    /// characters without whitespace) as the session policy.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<std::path::PathBuf>,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// The rolecall profile whose role to sign in as.
    pub profile: String,
    /// Console service page to open (s3, ec2, cloudwatch…); the console home when absent.
    #[arg(long)]
    pub service: Option<String>,
    /// Region of the console page (default: the profile's region).
    #[arg(long)]
    pub region: Option<String>,
    /// Console session length in seconds (900-43200), sent as SessionDuration; by default the
    /// session lasts as long as the credentials. AWS refuses values over 3600 for role-chained
    /// credentials.
    #[arg(long, value_parser = clap::value_parser!(u32).range(900..=43200))]
    pub session_duration: Option<u32>,
    /// Print the sign-in URL on stdout instead of opening a browser. The URL signs anyone in
    /// for 15 minutes: do not share it.
    #[arg(long)]
    pub print: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only records newer than this: a duration back from now (`90s`, `30m`, `1h`, `2d`,
    /// `1h30m`) or an RFC 3339 time (`2026-12-04T10:00:00Z`).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only records of this profile.
    #[arg(long)]
    pub profile: Option<String>,
    /// Only records of this interface.
    #[arg(long, value_enum)]
    pub interface: Option<AuditInterface>,
    /// The matching lines as stored (JSON lines) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum AuditInterface {
    CredentialProcess,
    Exec,
    Env,
    Socket,
    Container,
    Imds,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    pub profile: String,
    #[arg(long, value_enum, default_value = "sh")]
    pub format: EnvFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EnvFormat {
    Sh,
    Fish,
    Powershell,
    Json,
    Dotenv,
}

#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Address to listen on.
    #[arg(long, default_value = "169.254.170.2:80")]
    pub listen: String,
    /// Address to forward to.
    #[arg(long)]
    pub to: String,
    /// Close a connection with no traffic either way for this long (e.g. 30s, 5m).
    #[arg(long, default_value = "60s", value_parser = parse_idle)]
    pub idle_timeout: std::time::Duration,
}

fn parse_idle(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("expected a duration like 30s or 5m, got {s:?}"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("expected a duration like 30s or 5m, got {s:?}")),
    };
    if secs == 0 {
        return Err("the idle timeout must be at least 1s".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    #[command(subcommand)]
    pub command: DaemonCommand,
}

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Start rolecalld in the background (no-op when it runs).
    Start,
    /// Stop rolecalld.
    Stop,
    /// Is rolecalld running, which version, which socket (exit code 3 when it is not).
    Status,
    /// Re-read the config file now (rolecalld also applies saved changes by itself within a
    /// second or two); a broken file keeps the config in use and exits 1 with its error.
    Reload,
    /// Print rolecalld's log.
    Logs {
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
        /// Number of lines from the end.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    pub command: ServiceCommand,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write and enable the user unit (systemd) or agent (launchd).
    Install,
    /// Disable and remove it.
    Uninstall,
    /// Show whether it is installed and running.
    Status,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave the sandbox and daemon running, with instructions to try them by hand.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct NamesArgs {
    #[arg(value_enum)]
    pub kind: NameKind,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NameKind {
    Profiles,
    Sources,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write rolecall.1 into (stdout when absent).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}
