//! The command line, declared once: `main` parses it, `completions` and the man page are
//! generated from it.

use clap::{Args, Parser, Subcommand, ValueEnum};

mod serving;
pub use serving::*;

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
