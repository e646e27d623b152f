//! The command line, declared once: `main` parses it, `completions` and the man page are
//! generated from it.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "rolecall",
    version,
    about = "AWS credentials through Microsoft Entra ID, for every AWS client",
    long_about = "rolecall signs in through Microsoft Entra ID (IAM Identity Center, Entra SAML to IAM roles, \
                  or Entra OIDC to web identity) once, keeps short-lived role credentials in a per-user daemon \
                  (rolecalld), and serves them to every AWS client."
)]
pub struct Cli {
    /// Do not start rolecalld when it is not running.
    /// (ROLECALL_NO_AUTOSTART=1 does the same; 0, false, no, off or empty do not.)
    #[arg(
        long,
        global = true,
        env = "ROLECALL_NO_AUTOSTART",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub no_autostart: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// First run: add a source, check it with the service, sign in, write profiles.
    Setup(SetupArgs),
    /// Sign in to a source (all sources when none is named).
    Login(LoginArgs),
    /// Forget a source's session (all sources when none is named).
    Logout(LogoutArgs),
    /// Print credentials for an AWS profile's `credential_process`.
    CredentialProcess(ProfileArg),
    /// Make a profile the active one in this shell (needs `rolecall init`).
    Use(UseArgs),
    /// Show sources, sign-in state, profiles and expiry.
    Status(StatusArgs),
    /// Print the prompt segment: active profile, account and time left.
    Prompt(PromptArgs),
    /// Print the shell integration script: eval "$(rolecall init bash)".
    Init(InitArgs),
    /// Print shell completions.
    Completions(CompletionsArgs),
    /// Write profiles for every account and permission set of a source.
    Populate(PopulateArgs),
    /// Turn the SSO profiles of ~/.aws/config into rolecall sources and profiles.
    Import(ImportArgs),
    /// Credentials for containers through the container credentials endpoint.
    Container(ContainerArgs),
    /// Run a command with self-refreshing credentials for a profile.
    Exec(ExecArgs),
    /// Print a profile's credentials as environment variables.
    Env(EnvArgs),
    /// Open the AWS console signed in as a profile's role (or print the sign-in URL).
    Console(ConsoleArgs),
    /// Show the audit log: which credentials were handed out, when, how and to whom.
    Audit(AuditArgs),
    /// Forward TCP connections (the Docker Desktop relay for 169.254.170.2).
    Relay(RelayArgs),
    /// Start, stop and inspect rolecalld.
    Daemon(DaemonArgs),
    /// Install rolecalld as a user service (systemd or launchd).
    Service(ServiceArgs),
    /// Run the whole product against a local sandbox, no cloud account needed.
    Demo(DemoArgs),
    /// List profile or source names (for completions).
    #[command(hide = true)]
    Names(NamesArgs),
    /// Write the man page.
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ProfileArg {
    /// The rolecall profile name.
    pub profile: String,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// IAM Identity Center: the AWS access portal URL (https://d-xxxxxxxxxx.awsapps.com/start or a
    /// custom domain).
    #[arg(long, value_name = "START_URL", conflicts_with_all = ["entra_saml", "entra_oidc"])]
    pub identity_center: Option<String>,
    /// The Identity Center instance's region (identity-center), or the STS region (entra-*).
    #[arg(long)]
    pub region: Option<String>,
    /// Entra SAML: the tenant (id or domain) and the AWS app's identifier (Entity ID).
    #[arg(long, num_args = 2, value_names = ["TENANT", "APP_ID"], conflicts_with = "entra_oidc")]
    pub entra_saml: Option<Vec<String>>,
    /// Entra OIDC: the tenant (id or domain) and the app registration's client id.
    #[arg(long, num_args = 2, value_names = ["TENANT", "CLIENT_ID"])]
    pub entra_oidc: Option<Vec<String>>,
    /// The source's name in the config (default: sso, entra or entra-oidc).
    #[arg(long)]
    pub name: Option<String>,
    /// Answer yes to every question (an existing config is backed up before it changes).
    #[arg(long)]
    pub yes: bool,
    /// Do not write profiles for the source's accounts and roles.
    #[arg(long)]
    pub no_populate: bool,
    /// entra-*: a profile for this IAM role ARN (repeatable). entra-oidc cannot list the roles
    /// it may assume, so it gets its profiles this way.
    #[arg(long = "role", value_name = "ROLE_ARN")]
    pub roles: Vec<String>,
    /// Sign in with the device code flow: print a URL and a code instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Install rolecalld as a user service at the end.
    #[arg(long)]
    pub service: bool,
    /// Add the shell integration (prompt, `rolecall use`) to this shell's startup file.
    #[arg(long, value_enum, value_name = "SHELL")]
    pub shell_init: Option<Shell>,
    /// Where the source's AWS calls go (another partition's endpoint, LocalStack, a sandbox).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// entra-*: the Entra authority (default https://login.microsoftonline.com).
    #[arg(long, value_name = "URL")]
    pub authority: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The source to sign in to.
    pub source: Option<String>,
    /// Use the device code flow: print a URL and a code instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// entra-saml: read a base64 SAMLResponse from stdin instead of capturing it in a browser.
    #[arg(long)]
    pub paste: bool,
    /// Sign in again even when the session is still valid.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    pub source: Option<String>,
}

#[derive(Debug, Args)]
pub struct UseArgs {
    /// The profile to activate (a picker opens when none is given on a terminal).
    pub profile: Option<String>,
    /// Deactivate the current profile.
    #[arg(long)]
    pub unset: bool,
    /// The shell whose syntax to print (set by the shell function).
    #[arg(long, value_enum, hide = true)]
    pub shell: Option<Shell>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Stable JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PromptArgs {
    /// Template: {profile} {account} {account_id} {account_name} {role} {time_left} {region}.
    #[arg(long, env = "ROLECALL_PROMPT_FORMAT")]
    pub format: Option<String>,
    /// The profile (defaults to $ROLECALL_PROFILE, then $AWS_PROFILE).
    #[arg(long)]
    pub profile: Option<String>,
    /// Colour: auto (when under 15 minutes or signed out), always or never.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// The shell, for its prompt escape syntax around colours.
    #[arg(long, value_enum)]
    pub shell: Option<Shell>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct PopulateArgs {
    /// The identity-center source to list.
    pub source: String,
    /// Print the changes as a unified diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Prefix for generated profile names.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Template for profile names: {account_name} {account_id} {role} {source}.
    #[arg(long)]
    pub name_template: Option<String>,
    /// Remove generated profiles whose account or role is gone.
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Print what would be written and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

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
