//! `rolecall setup`: the first run. Asks what the user signs in with (or takes it from flags),
//! has the daemon confirm it against the service, writes the source (backing up an existing
//! config, never replacing it unasked), signs in, populates the profiles and the managed block
//! of `~/.aws/config`, and offers the user service and the shell integration.
//!
//! Nothing is written before the service has confirmed the source: a wrong start URL or tenant
//! ends setup with one line and no file changed.

mod ask;
mod files;

use self::ask::Asker;
use self::files::NewSource;
use crate::cli::{LoginArgs, PopulateArgs, ServiceArgs, ServiceCommand, SetupArgs, Shell};
use crate::client::Client;
use anyhow::{bail, Context};
use rolecall_proto::api::OkReply;
use rolecall_proto::request::Request;
use rolecall_proto::setup::{SetupCheckReply, SetupCheckRequest};

pub fn run(a: &SetupArgs, autostart: bool) -> anyhow::Result<i32> {
    let asker = Asker::new(a.yes);
    let source = answers(a, &asker)?;
    let kind = source.keys[0].1.clone();
    let roles = role_profiles(a, &asker, &kind)?;
    if !rolecall_proto::names::is_valid_name(&source.name) {
        bail!(
            "source name {:?} is not allowed: use {}",
            source.name,
            rolecall_proto::names::NAME_RULE
        );
    }

    // The config as it is, and what may happen to it, before anything is asked of the daemon.
    let config_path = rolecall_proto::paths::config_file();
    let existing = match std::fs::read_to_string(&config_path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", config_path.display())),
    };
    let mut doc = match &existing {
        Some(text) => super::populate::parse_config(text, &config_path)?,
        None => "# rolecall configuration (written by rolecall setup; see docs/setup.md)\n"
            .parse()
            .context("cannot start a config document")?,
    };
    if existing.is_some() {
        let replacing = files::has_source(&doc, &source.name);
        let question = if replacing {
            format!(
                "{} already has a source '{}'. Replace it (the old file is kept as a backup)?",
                config_path.display(),
                source.name
            )
        } else {
            format!(
                "Add source '{}' to {} (the old file is kept as a backup)?",
                source.name,
                config_path.display()
            )
        };
        if !asker.confirm(&question, true, false)? {
            bail!(
                "{} exists and was left unchanged — rerun with --yes to {} source '{}' (a backup is kept), or choose another --name",
                config_path.display(),
                if replacing { "replace" } else { "add" },
                source.name
            );
        }
    }

    // The service confirms the source before anything is written.
    let client = Client::connect(autostart)?;
    let reply: SetupCheckReply = client
        .send_json(
            &Request::SetupCheck,
            &SetupCheckRequest {
                source_toml: source.table_toml(),
            },
        )
        .map_err(|e| anyhow::anyhow!("{}", first_line(&e.to_string())))?;
    for line in &reply.confirmed {
        println!("ok: {line}");
    }

    source.insert_into(&mut doc);
    let region = source
        .keys
        .iter()
        .find(|(k, _)| *k == "region")
        .map(|(_, v)| v.as_str());
    let mut added_profiles = Vec::new();
    for (name, arn) in &roles {
        match files::add_role_profile(&mut doc, name, &source.name, arn, region) {
            Some(n) => added_profiles.push(n),
            None => eprintln!("rolecall: warning: profile '{name}' exists; {arn} left out"),
        }
    }
    let text = doc.to_string();
    let backup = match &existing {
        Some(_) => Some(files::backup(&config_path)?),
        None => None,
    };
    crate::awsconfig::write_atomic(&config_path, &text)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    match &backup {
        Some(b) => println!(
            "wrote source '{}' to {} (backup: {})",
            source.name,
            config_path.display(),
            b.display()
        ),
        None => println!("wrote {}", config_path.display()),
    }
    if let Err(e) = client.send::<OkReply>(&Request::Reload) {
        // The new file cannot be used: put the old one back rather than leave a broken config.
        if let (Some(b), Some(_)) = (&backup, &existing) {
            let _ = std::fs::copy(b, &config_path);
        } else {
            let _ = std::fs::remove_file(&config_path);
        }
        bail!(
            "the daemon refused the new config ({}); nothing was kept",
            first_line(&e.to_string())
        );
    }

    let login = LoginArgs {
        source: Some(source.name.clone()),
        no_browser: a.no_browser,
        paste: false,
        force: false,
    };
    let code = super::login::run_login(&login, autostart)?;
    if code != 0 {
        eprintln!(
            "rolecall: source '{}' is saved; sign in later with: rolecall login {}",
            source.name, source.name
        );
        return Ok(code);
    }

    if !added_profiles.is_empty() {
        mirror_profiles(&text)?;
        println!("profiles: {}", added_profiles.join(", "));
    }
    // entra-oidc cannot list the roles it may assume: its profiles come from --role.
    let can_list = kind != "entra-oidc";
    if !can_list && added_profiles.is_empty() {
        println!(
            "next: add a profile with the IAM role ARN to assume — rolecall setup --role ARN, or [profiles.NAME] source = \"{}\" role = \"arn:aws:iam::…:role/…\"",
            source.name
        );
    }
    let populate = can_list
        && !a.no_populate
        && asker.confirm(
            "Write a profile for every account and role you can use (rolecall populate)?",
            true,
            true,
        )?;
    if populate {
        let code = super::populate::run(
            &PopulateArgs {
                source: source.name.clone(),
                dry_run: false,
                prefix: None,
                name_template: None,
                prune: false,
            },
            autostart,
        )?;
        if code != 0 {
            return Ok(code);
        }
    } else if can_list {
        println!("later: rolecall populate {}", source.name);
    }

    if a.service
        || (!a.yes
            && asker.confirm(
                "Install rolecalld as a user service (starts at login)?",
                false,
                false,
            )?)
    {
        let code = super::service::run(&ServiceArgs {
            command: ServiceCommand::Install,
        })?;
        if code != 0 {
            return Ok(code);
        }
    }

    shell_integration(a, &asker)?;
    println!("done: try `rolecall status`, or `aws sts get-caller-identity --profile <profile>`");
    Ok(0)
}

/// The source to set up, from the flags or, on a terminal, from questions.
fn answers(a: &SetupArgs, asker: &Asker) -> anyhow::Result<NewSource> {
    let pair = |v: &Option<Vec<String>>| {
        v.as_ref()
            .map(|v| (v[0].trim().to_string(), v[1].trim().to_string()))
    };
    let (kind, first, second) = if let Some(url) = &a.identity_center {
        let Some(region) = &a.region else {
            bail!("--identity-center needs --region (the region of the Identity Center instance, e.g. eu-west-1)");
        };
        (
            "identity-center",
            url.trim().to_string(),
            region.trim().to_string(),
        )
    } else if let Some((t, app)) = pair(&a.entra_saml) {
        ("entra-saml", t, app)
    } else if let Some((t, client)) = pair(&a.entra_oidc) {
        ("entra-oidc", t, client)
    } else if asker.interactive {
        let choice = asker.choose(
            "What do you sign in to AWS with?",
            &[
                "IAM Identity Center (an AWS access portal start URL)",
                "Microsoft Entra ID, SAML app for AWS (enterprise application)",
                "Microsoft Entra ID, app registration (OIDC to IAM roles)",
            ],
        )?;
        match choice {
            0 => {
                let url = asker.text(
                    "AWS access portal URL (https://d-xxxxxxxxxx.awsapps.com/start)",
                    None,
                )?;
                let region = asker.text(
                    "Identity Center region",
                    a.region.as_deref().or(Some("us-east-1")),
                )?;
                ("identity-center", url, region)
            }
            1 => (
                "entra-saml",
                asker.text("Entra tenant (id or domain)", None)?,
                asker.text(
                    "SAML app identifier (Entity ID) of the AWS app",
                    Some("https://signin.aws.amazon.com/saml"),
                )?,
            ),
            _ => (
                "entra-oidc",
                asker.text("Entra tenant (id or domain)", None)?,
                asker.text("Application (client) id of the app registration", None)?,
            ),
        }
    } else {
        bail!("no terminal to ask on: give --identity-center START_URL --region R, --entra-saml TENANT APP_ID or --entra-oidc TENANT CLIENT_ID (see rolecall setup --help)");
    };
    let default_name = match kind {
        "identity-center" => "sso",
        "entra-saml" => "entra",
        _ => "entra-oidc",
    };
    let name = match &a.name {
        Some(n) => n.trim().to_string(),
        None if asker.interactive && !asker.yes => {
            asker.text("Name for this source", Some(default_name))?
        }
        None => default_name.to_string(),
    };
    let mut keys = vec![("kind", kind.to_string())];
    match kind {
        "identity-center" => {
            keys.push(("start_url", first));
            keys.push(("region", second));
        }
        "entra-saml" => {
            keys.push(("tenant", first));
            keys.push(("app_identifier", second));
        }
        _ => {
            keys.push(("tenant", first));
            keys.push(("client_id", second));
        }
    }
    if kind != "identity-center" {
        if let Some(r) = &a.region {
            keys.push(("region", r.trim().to_string()));
        }
        if let Some(auth) = &a.authority {
            keys.push(("authority", auth.trim().to_string()));
        }
    }
    if let Some(e) = &a.endpoint_url {
        keys.push(("endpoint_url", e.trim().to_string()));
    }
    Ok(NewSource { name, keys })
}

/// `--role` ARNs (or, on a terminal for entra-oidc, one asked for) as (profile name, ARN).
fn role_profiles(
    a: &SetupArgs,
    asker: &Asker,
    kind: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut arns = a.roles.clone();
    if !arns.is_empty() && kind == "identity-center" {
        bail!("--role is for entra-saml and entra-oidc sources; identity-center profiles come from populate");
    }
    if arns.is_empty() && kind == "entra-oidc" && asker.interactive && !asker.yes {
        let arn = asker.text(
            "IAM role ARN to assume (arn:aws:iam::123456789012:role/Name; empty: later)",
            Some(""),
        )?;
        if !arn.is_empty() {
            arns.push(arn);
        }
    }
    arns.iter()
        .map(|arn| {
            let arn = arn.trim();
            let role = arn.rsplit('/').next().unwrap_or_default();
            if !arn.starts_with("arn:") || !arn.contains(":role/") || role.is_empty() {
                bail!("--role {arn:?} is not an IAM role ARN like arn:aws:iam::123456789012:role/Name");
            }
            Ok((super::populate::sanitize_name(role), arn.to_string()))
        })
        .collect()
}

/// Rebuilds the managed block of `~/.aws/config` from the profiles of `config_text`.
fn mirror_profiles(config_text: &str) -> anyhow::Result<()> {
    let aws_path = crate::awsconfig::config_path();
    let aws_text = match std::fs::read_to_string(&aws_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", aws_path.display())),
    };
    let exe = super::populate::rolecall_exe()?;
    let (new_aws, _) = super::populate::aws_update(&aws_text, config_text, &exe)
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", aws_path.display()))?;
    if new_aws != aws_text {
        crate::awsconfig::write_atomic(&aws_path, &new_aws)
            .with_context(|| format!("cannot write {}", aws_path.display()))?;
        println!("updated {}", aws_path.display());
    }
    Ok(())
}

fn shell_integration(a: &SetupArgs, asker: &Asker) -> anyhow::Result<()> {
    let shell = match a.shell_init {
        Some(s) => Some(s),
        None if asker.interactive && !asker.yes => {
            let guess = std::env::var("SHELL")
                .ok()
                .and_then(|s| s.rsplit('/').next().map(str::to_string))
                .and_then(|s| match s.as_str() {
                    "bash" => Some(Shell::Bash),
                    "zsh" => Some(Shell::Zsh),
                    "fish" => Some(Shell::Fish),
                    _ => None,
                });
            match guess {
                Some(sh)
                    if asker.confirm(
                        &format!(
                            "Add the prompt and `rolecall use` to your {} startup file?",
                            shell_name(sh)
                        ),
                        false,
                        false,
                    )? =>
                {
                    Some(sh)
                }
                _ => None,
            }
        }
        None => None,
    };
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    match (shell, home) {
        (Some(sh), Some(home)) => match files::shell_rc(sh, &home) {
            Some((rc, line)) => {
                if files::add_line(&rc, line)? {
                    println!("added to {}: {line}", rc.display());
                } else {
                    println!("{} already loads rolecall", rc.display());
                }
            }
            None => println!("add to your PowerShell $PROFILE: rolecall init powershell | Out-String | Invoke-Expression"),
        },
        _ => println!("shell prompt and `rolecall use`: see rolecall init --help (e.g. eval \"$(rolecall init bash)\")"),
    }
    Ok(())
}

fn shell_name(sh: Shell) -> &'static str {
    match sh {
        Shell::Bash => "bash",
        Shell::Zsh => "zsh",
        Shell::Fish => "fish",
        Shell::Powershell => "PowerShell",
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
