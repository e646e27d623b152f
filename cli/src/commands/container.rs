//! `rolecall container <profile>`: mints a container token scoped to one profile and prints the
//! variables an SDK in a container needs; `--revoke` takes tokens back; `container setup`
//! prints (or applies) the one-time forwarding of 169.254.170.2.
//!
//! Exactly one of `AWS_CONTAINER_CREDENTIALS_FULL_URI` / `_RELATIVE_URI` is printed: SDKs
//! disagree on which wins when both are set. Both `AWS_REGION` and `AWS_DEFAULT_REGION` are
//! printed, since boto3 reads only the latter.

mod setup;

use crate::cli::{ContainerArgs, ContainerCommand, ContainerFormat};
use crate::client::Client;
use anyhow::{bail, Context as _};
use rolecall_proto::api::{MintTokenReply, MintTokenRequest, OkReply, RevokeTokenRequest};
use std::io::Write as _;
use std::path::Path;

pub fn run(a: &ContainerArgs, autostart: bool) -> anyhow::Result<i32> {
    if let Some(ContainerCommand::Setup(s)) = &a.command {
        return setup::run(s);
    }
    if a.revoke {
        return revoke(a, autostart);
    }
    let Some(profile) = &a.profile else {
        bail!("name a profile: rolecall container <profile> (or rolecall container setup)");
    };
    let client = Client::connect(autostart)?;
    let reply: MintTokenReply = client.post(
        "/v1/container/tokens",
        &MintTokenRequest {
            profile: profile.clone(),
            bound_pid: None,
        },
    )?;
    let token_var = match &a.token_file {
        Some(path) => {
            write_token_file(path, &reply.token)?;
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                abs.display().to_string(),
            )
        }
        None => ("AWS_CONTAINER_AUTHORIZATION_TOKEN", reply.token.clone()),
    };
    let vars = variables(&reply, a.relative, token_var);
    if reply.region.is_none() {
        eprintln!(
            "rolecall: profile '{profile}' has no region; set AWS_REGION and AWS_DEFAULT_REGION yourself (or add region to the profile)"
        );
    }
    let text = render(&vars, a.format);
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(0)
}

/// The variables, in a stable order.
fn variables(
    reply: &MintTokenReply,
    relative: bool,
    token_var: (&'static str, String),
) -> Vec<(&'static str, String)> {
    let mut vars = vec![if relative {
        (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            reply.relative_uri.clone(),
        )
    } else {
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", reply.full_uri.clone())
    }];
    vars.push(token_var);
    if let Some(region) = &reply.region {
        vars.push(("AWS_REGION", region.clone()));
        vars.push(("AWS_DEFAULT_REGION", region.clone()));
    }
    vars
}

/// `env`: dotenv lines, unquoted (`docker run --env-file` takes values literally);
/// `docker`: one line of `-e KEY=value` arguments; `compose`: an `environment:` block.
fn render(vars: &[(&str, String)], format: ContainerFormat) -> String {
    match format {
        ContainerFormat::Env => vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect(),
        ContainerFormat::Docker => {
            let args: Vec<String> = vars.iter().map(|(k, v)| format!("-e {k}={v}")).collect();
            format!("{}\n", args.join(" "))
        }
        ContainerFormat::Compose => {
            let mut out = String::from("environment:\n");
            for (k, v) in vars {
                out.push_str(&format!("  {k}: {}\n", yaml_quote(v)));
            }
            out
        }
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn yaml_quote(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| format!("\"{v}\""))
}

/// Writes the token 0600, replacing the file's content (no trailing newline: SDKs send the
/// file's bytes as the header value).
fn write_token_file(path: &Path, token: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write the token file {}", path.display()))?;
    // An existing file keeps its mode on open: tighten it before the secret goes in.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} private (0600)", path.display()))?;
    f.write_all(token.as_bytes())
        .with_context(|| format!("cannot write the token file {}", path.display()))?;
    Ok(())
}

fn revoke(a: &ContainerArgs, autostart: bool) -> anyhow::Result<i32> {
    let req = match (&a.profile, a.all) {
        (Some(_), true) => bail!("give either a profile or --all, not both"),
        (Some(p), false) => RevokeTokenRequest {
            id: None,
            profile: Some(p.clone()),
        },
        (None, true) => RevokeTokenRequest::default(),
        (None, false) => bail!("name the profile whose tokens to revoke, or --all"),
    };
    let client = Client::connect(autostart)?;
    let _: OkReply = client.delete("/v1/container/tokens", &req)?;
    match &req.profile {
        Some(p) => eprintln!("rolecall: revoked the container tokens of '{p}'"),
        None => eprintln!("rolecall: revoked all container tokens"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(region: Option<&str>) -> MintTokenReply {
        MintTokenReply {
            id: "abc".into(),
            token: "rct_TOKEN".into(),
            profile: "dev".into(),
            full_uri: "http://127.0.0.1:9911/v1/container/dev".into(),
            relative_uri: "/v1/container/dev".into(),
            region: region.map(str::to_string),
        }
    }

    #[test]
    fn env_format_is_plain_dotenv_with_exactly_one_uri() {
        let r = reply(Some("eu-west-1"));
        let v = variables(
            &r,
            false,
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", r.token.clone()),
        );
        assert_eq!(
            render(&v, ContainerFormat::Env),
            "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:9911/v1/container/dev\n\
             AWS_CONTAINER_AUTHORIZATION_TOKEN=rct_TOKEN\n\
             AWS_REGION=eu-west-1\n\
             AWS_DEFAULT_REGION=eu-west-1\n"
        );
        let v = variables(
            &r,
            true,
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/t".into()),
        );
        let out = render(&v, ContainerFormat::Env);
        assert!(out.starts_with("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v1/container/dev\n"));
        assert!(!out.contains("FULL_URI"));
        assert!(out.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/t\n"));
        assert!(!out.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN="));
    }

    #[test]
    fn docker_and_compose_formats() {
        let r = reply(None);
        let v = variables(
            &r,
            false,
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", r.token.clone()),
        );
        assert_eq!(
            render(&v, ContainerFormat::Docker),
            "-e AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:9911/v1/container/dev -e AWS_CONTAINER_AUTHORIZATION_TOKEN=rct_TOKEN\n"
        );
        assert_eq!(
            render(&v, ContainerFormat::Compose),
            "environment:\n  AWS_CONTAINER_CREDENTIALS_FULL_URI: \"http://127.0.0.1:9911/v1/container/dev\"\n  AWS_CONTAINER_AUTHORIZATION_TOKEN: \"rct_TOKEN\"\n"
        );
    }

    #[test]
    fn token_files_are_private_and_hold_only_the_token() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tok");
        std::fs::write(&p, "old content that is longer").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_token_file(&p, "rct_X").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "rct_X");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
