//! What the demo shows, step by step, with short headings. Every step must succeed: a step that
//! fails stops the demo with its output and one line naming the step, and the demo exits
//! non-zero. Only the `aws` CLI step depends on the machine (whether an `aws` is installed, and
//! whether it is recent enough for `AWS_ENDPOINT_URL_STS`): it says what happened and goes on,
//! since the SDK call above already proved the same path.

use super::check_interrupted;
use super::env::{DemoEnv, CHAINED, PROFILES, REGION, START_URL};
use crate::client::{http, Client};
use anyhow::{bail, Context};
use rolecall_proto::api::{CallerIdentity, VersionReply};
use rolecall_proto::output::{ContainerCredentials, ProcessCredentials};
use rolecall_proto::request::Request;
use std::io::{BufReader, IsTerminal, Write};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

const STEP_LIMIT: Duration = Duration::from_secs(30);

pub fn heading(text: &str) {
    if std::io::stdout().is_terminal() {
        println!("\n\x1b[1m== {text}\x1b[0m");
    } else {
        println!("\n== {text}");
    }
}

fn shell_line(cmd: &str) {
    println!("$ {cmd}");
}

/// Prints captured output indented, stderr and stdout both (as a terminal would show them).
fn show(o: &Output) {
    for stream in [&o.stderr, &o.stdout] {
        for line in String::from_utf8_lossy(stream).lines() {
            println!("  {line}");
        }
    }
}

fn first_line(o: &Output) -> String {
    let text = String::from_utf8_lossy(&o.stderr);
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map_or_else(|| format!("it exited ({})", o.status), str::to_string)
}

/// Runs a step that must work.
fn must(demo: &DemoEnv, args: &[&str]) -> anyhow::Result<Output> {
    check_interrupted()?;
    let o = demo.rolecall(args, STEP_LIMIT)?;
    // A Ctrl-C stops the step's process too: report the interruption, not its death.
    check_interrupted()?;
    if !o.status.success() {
        show(&o);
        bail!("`rolecall {}` failed: {}", args.join(" "), first_line(&o));
    }
    Ok(o)
}

/// Runs a step under its heading; it must succeed and print something on stdout.
fn shown(demo: &DemoEnv, heading_text: &str, args: &[&str]) -> anyhow::Result<Output> {
    heading(heading_text);
    shell_line(&format!("rolecall {}", args.join(" ")));
    let o = must(demo, args)?;
    show(&o);
    if o.stdout.iter().all(u8::is_ascii_whitespace) {
        bail!("`rolecall {}` printed nothing", args.join(" "));
    }
    Ok(o)
}

pub fn run_all(demo: &mut DemoEnv) -> anyhow::Result<()> {
    let started = crate::clock::monotonic();
    heading("A sandbox stands in for Entra ID, IAM Identity Center and STS");
    demo.start_sandbox()?;
    println!("  sandbox at {} (loopback only)", demo.base_url);
    println!("  demo installation in {}", demo.root.display());
    println!(
        "  binaries: {}, {}, {}",
        demo.me.display(),
        demo.daemon_bin.display(),
        demo.sandbox_bin.display()
    );

    write_config(demo)?;
    heading("Configuration");
    println!("  {}:", demo.config_file().display());
    println!("    source 'corp': identity-center, {START_URL}");
    for (name, account, _, role) in PROFILES {
        println!("    profile {name:<14} {account} {role}");
    }
    println!(
        "    profile {:<14} AssumeRole {} with {}'s credentials",
        CHAINED.0, CHAINED.2, CHAINED.1
    );
    println!(
        "  {}: credential_process = rolecall credential-process <profile>",
        demo.aws_config().display()
    );

    heading("Start the daemon");
    shell_line("rolecall daemon start");
    let o = must(demo, &["daemon", "start"])?;
    show(&o);
    let version: VersionReply = client(demo)?.send(&Request::Version)?;
    demo.daemon_pid = Some(version.pid);

    heading("Sign in (the sandbox's robot browser approves the browser step)");
    shell_line("rolecall login");
    let o = must(demo, &["login"])?;
    show(&o);

    heading("What every AWS SDK runs: credential_process");
    shell_line("rolecall credential-process dev-admin");
    let o = must(demo, &["credential-process", "dev-admin"])?;
    let creds: ProcessCredentials = serde_json::from_slice(&o.stdout)
        .context("credential-process printed something that is not the credentials JSON")?;
    if creds.version != 1 || creds.account_id != PROFILES[0].1 {
        bail!("credential-process returned credentials for the wrong account");
    }
    let masked = ProcessCredentials {
        secret_access_key: mask(&creds.secret_access_key),
        session_token: mask(&creds.session_token),
        ..creds.clone()
    };
    println!("  {}", serde_json::to_string(&masked)?);
    println!("  (secret parts masked here only)");

    heading("A real AWS SDK call with those credentials: STS GetCallerIdentity");
    let who: CallerIdentity = client(demo)?.send(&Request::Whoami {
        profile: PROFILES[0].0.to_string(),
    })?;
    println!(
        "  Account {}\n  Arn     {}\n  UserId  {}",
        who.account, who.arn, who.user_id
    );
    if who.account != PROFILES[0].1 || !who.arn.contains(PROFILES[0].3) {
        bail!("STS named {} instead of the dev-admin role", who.arn);
    }

    aws_cli(demo)?;
    shown(demo, "Status", &["status"])?;
    container(demo)?;
    shown(
        demo,
        "The prompt segment",
        &["prompt", "--profile", "dev-admin", "--color", "never"],
    )?;

    heading("The daemon");
    shell_line("rolecall daemon status");
    show(&must(demo, &["daemon", "status"])?);
    println!("\nDemo ran in {:.1}s.", started.elapsed().as_secs_f64());
    Ok(())
}

fn client(demo: &DemoEnv) -> anyhow::Result<Client> {
    let c = Client::connect_to(demo.socket(), false)?;
    c.set_read_timeout(Some(STEP_LIMIT));
    Ok(c)
}

fn mask(secret: &str) -> String {
    let shown: String = secret.chars().take(4).collect();
    format!("{shown}…({} chars)", secret.chars().count())
}

/// Writes rolecall's config and the AWS config of the demo installation.
fn write_config(demo: &DemoEnv) -> anyhow::Result<()> {
    let container_port = free_port()?;
    let mut cfg = format!(
        "# Written by `rolecall demo`: everything points at the sandbox on loopback.\n\
         [daemon]\n\
         container_listen = \"127.0.0.1:{container_port}\"\n\
         secret_store = \"file\"\n\
         notifications = false\n\n\
         [sources.corp]\n\
         kind = \"identity-center\"\n\
         start_url = \"{START_URL}\"\n\
         region = \"{REGION}\"\n\
         endpoint_url = \"{}\"\n",
        demo.base_url
    );
    for (name, account, account_name, role) in PROFILES {
        cfg.push_str(&format!(
            "\n[profiles.{name}]\nsource = \"corp\"\naccount = \"{account}\"\naccount_name = \"{account_name}\"\nrole = \"{role}\"\nregion = \"{REGION}\"\n"
        ));
    }
    let (chained, parent, role_arn) = CHAINED;
    cfg.push_str(&format!(
        "\n[profiles.{chained}]\nvia = \"{parent}\"\nrole_arn = \"{role_arn}\"\nregion = \"{REGION}\"\n"
    ));
    // 0600 whatever the umask: rolecalld refuses a config that group or others can write.
    crate::awsconfig::write_atomic(&demo.config_file(), &cfg)?;

    let me = demo.me.display().to_string();
    // SDKs split credential_process like a shell would: quote a path with spaces.
    let me = if me.contains(' ') {
        format!("\"{me}\"")
    } else {
        me
    };
    let mut aws = String::from("# Written by `rolecall demo`.\n");
    for name in PROFILES.iter().map(|p| p.0).chain([CHAINED.0]) {
        aws.push_str(&format!(
            "\n[profile {name}]\ncredential_process = {me} credential-process {name}\nregion = {REGION}\n"
        ));
    }
    std::fs::write(demo.aws_config(), aws)?;
    std::fs::write(demo.aws_credentials(), "")?;
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// The `aws` CLI, when installed, through the generated `credential_process` profile.
fn aws_cli(demo: &DemoEnv) -> anyhow::Result<()> {
    heading("The aws CLI, through credential_process");
    let Some(aws) = crate::autostart::find_sibling("aws").filter(|p| p.is_absolute()) else {
        println!("  (no `aws` on PATH: skipped)");
        return Ok(());
    };
    check_interrupted()?;
    shell_line("aws --profile dev-admin sts get-caller-identity");
    let mut cmd = demo.command(&aws);
    cmd.args(["--profile", "dev-admin", "sts", "get-caller-identity"])
        .env("AWS_ENDPOINT_URL_STS", &demo.base_url);
    let o = match super::env::run_bounded(cmd, STEP_LIMIT) {
        Ok(o) => o,
        Err(e) => {
            println!("  (could not run {}: {e:#}; skipped)", aws.display());
            return Ok(());
        }
    };
    check_interrupted()?;
    show(&o);
    if !o.status.success() {
        println!(
            "  (this aws CLI failed: {}; an aws CLI older than 2.13 / 1.29 ignores AWS_ENDPOINT_URL_STS)",
            first_line(&o)
        );
    }
    Ok(())
}

/// `rolecall container dev-admin` and one request to the container credentials endpoint, as an
/// SDK in a container would make it.
fn container(demo: &DemoEnv) -> anyhow::Result<()> {
    heading("Containers and long-running programs: the container credentials endpoint");
    shell_line("rolecall container dev-admin --format env");
    let o = must(demo, &["container", "dev-admin", "--format", "env"])?;
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let var = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
    };
    let (Some(uri), Some(token)) = (
        var("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        var("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    ) else {
        bail!(
            "`rolecall container dev-admin --format env` did not print the endpoint and the token"
        );
    };
    for line in text.lines() {
        match line.split_once('=') {
            Some(("AWS_CONTAINER_AUTHORIZATION_TOKEN", t)) => {
                println!("  AWS_CONTAINER_AUTHORIZATION_TOKEN={}", mask(t))
            }
            _ => println!("  {line}"),
        }
    }
    let creds = fetch_container(&uri, &token)
        .with_context(|| format!("the container endpoint did not serve GET {uri}"))?;
    if creds.access_key_id.is_empty() {
        bail!("the container endpoint served credentials without an AccessKeyId");
    }
    println!(
        "  GET {uri} → {}{} (expires {})",
        creds.access_key_id,
        if creds.role_arn.is_empty() {
            String::new()
        } else {
            format!(" for {}", creds.role_arn)
        },
        creds.expiration
    );
    Ok(())
}

/// One GET to a loopback `http://127.0.0.1:PORT/path` with the token, as SDKs make it.
fn fetch_container(uri: &str, token: &str) -> anyhow::Result<ContainerCredentials> {
    let rest = uri.strip_prefix("http://").context("not an http:// URI")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: std::net::SocketAddr = authority.parse().context("not a loopback address")?;
    if !addr.ip().is_loopback() {
        bail!("not a loopback address");
    }
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes())?;
    let reply = http::read_response(&mut BufReader::new(stream), false)?;
    if reply.status != 200 {
        bail!("status {}", reply.status);
    }
    Ok(serde_json::from_slice(&reply.body)?)
}

pub fn print_keep_instructions(demo: &DemoEnv) {
    heading("Left running: try it by hand");
    println!(
        "In this shell (or another), point rolecall and the AWS CLI at the demo installation:\n"
    );
    for (k, v) in demo.vars() {
        if k == "HOME" || k.starts_with("XDG_") {
            continue; // your own HOME stays yours; rolecall and AWS use the variables below
        }
        println!("export {k}={}", sh_quote(&v.to_string_lossy()));
    }
    println!("export AWS_ENDPOINT_URL_STS={}", sh_quote(&demo.base_url));
    println!("export AWS_ENDPOINT_URL_S3={}", sh_quote(&demo.base_url));
    println!("export PATH={}:\"$PATH\"", sh_quote(&dir_of(&demo.me)));
    println!();
    for name in PROFILES.iter().map(|p| p.0).chain([CHAINED.0]) {
        println!("aws --profile {name} sts get-caller-identity");
    }
    println!("rolecall status");
    println!("rolecall credential-process dev-read");
    println!("rolecall console dev-read --print   # a console sign-in URL; open it in a browser");
    println!("rolecall audit --since 1h   # every hand-out of credentials, and to whom");
    println!(
        "rolecall exec --read-only {0} -- aws s3 mb s3://demo-bucket   # refused (AccessDenied): a read-only scoped session; without --read-only it works",
        CHAINED.0
    );
    println!("\nWhen done:\n");
    println!("rolecall daemon stop");
    if let Some(c) = &demo.sandbox {
        println!("kill {}   # the sandbox", c.id());
    }
    println!("rm -rf {}", sh_quote(&demo.root.display().to_string()));
}

fn dir_of(p: &Path) -> String {
    p.parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default()
}

fn sh_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-:=,@+".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
