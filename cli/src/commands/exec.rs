//! `rolecall exec <profile> [--static] -- cmd…`: runs a command whose SDKs get
//! self-refreshing credentials from the container endpoint.
//!
//! A token scoped to the profile and bound to this process (`bound_pid`) is minted; the child
//! gets `AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN`, the region
//! and `ROLECALL_PROFILE`, and loses every variable an SDK would try before the container
//! provider (profiles, keys) as aws-vault does. The token is bound to `rolecall exec` itself,
//! which lives exactly as long as the child: it revokes the token when the child ends, and the
//! daemon revokes it by itself if this process is killed outright.
//!
//! `--static` exports the profile's current keys instead (no refresh). `--read-only` and
//! `--policy FILE` serve the child a scoped session instead of the profile's own credentials
//! (see `scoped`).

mod aws_files;
mod scoped;
mod signals;

use crate::cli::ExecArgs;
use crate::client::Client;
use anyhow::bail;
use rolecall_proto::api::{MintTokenReply, MintTokenRequest, OkReply, RevokeTokenRequest};
use rolecall_proto::audit::Interface;
use rolecall_proto::request::Request;

/// Removed from the child's environment: each would be tried before, or conflict with, the
/// credentials rolecall provides. (`AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE` are
/// replaced, not removed: removed, they would mean `~/.aws/config` and `~/.aws/credentials`.)
const REMOVED: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CREDENTIAL_FILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

pub fn run(a: &ExecArgs, autostart: bool) -> anyhow::Result<i32> {
    // A bad policy file is refused before anything else happens.
    let scope = scoped::requested(a)?;
    let client = Client::connect(autostart)?;
    let mut cmd = crate::spawn::command(&a.command[0]);
    cmd.args(&a.command[1..]);
    for k in REMOVED {
        cmd.env_remove(k);
    }
    cmd.env("ROLECALL_PROFILE", &a.profile);

    let mut token_id = None;
    let runtime = rolecall_proto::paths::runtime_dir();
    // Removed (after the child ends) when this goes out of scope.
    let aws_files;
    if let (Some(scope), true) = (&scope, a.static_keys) {
        let creds = scoped::credentials(&client, &a.profile, scope)?;
        let region = super::env::fetch_region(&client, &a.profile);
        for (k, v) in super::env::key_variables(&creds, region.as_deref()) {
            cmd.env(k, v);
        }
        aws_files = aws_files::AwsFiles::create(&runtime, region.as_deref())?;
    } else if a.static_keys {
        let (creds, region) = super::env::fetch(&client, &a.profile, Interface::Exec)?;
        for (k, v) in super::env::key_variables(&creds, region.as_deref()) {
            cmd.env(k, v);
        }
        aws_files = aws_files::AwsFiles::create(&runtime, region.as_deref())?;
    } else {
        // Sign in first when needed (waiting at a terminal, failing with the hint otherwise), so
        // the command does not start only to meet credential errors.
        let reply: MintTokenReply = match &scope {
            Some(scope) => {
                scoped::credentials(&client, &a.profile, scope)?;
                scoped::mint_token(&client, &a.profile, scope)?
            }
            None => {
                super::env::credentials(&client, &a.profile, Interface::Exec)?;
                client.send_json(
                    &Request::MintToken,
                    &MintTokenRequest {
                        profile: a.profile.clone(),
                        bound_pid: Some(std::process::id()),
                    },
                )?
            }
        };
        cmd.env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &reply.full_uri);
        cmd.env("AWS_CONTAINER_AUTHORIZATION_TOKEN", &reply.token);
        if let Some(r) = &reply.region {
            cmd.env("AWS_REGION", r);
            cmd.env("AWS_DEFAULT_REGION", r);
        }
        token_id = Some(reply.id);
        aws_files = aws_files::AwsFiles::create(&runtime, reply.region.as_deref())?;
    }
    aws_files.apply(&mut cmd);

    let status = signals::run_forwarding(&mut cmd);
    drop(aws_files);
    if let Some(id) = token_id {
        // Best effort: the daemon also revokes it once this process is gone.
        if let Ok(c) = Client::connect(false) {
            let _ = c.send_json::<_, OkReply>(
                &Request::RevokeTokens,
                &RevokeTokenRequest {
                    id: Some(id),
                    profile: None,
                },
            );
        }
    }
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            let code = match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                std::io::ErrorKind::PermissionDenied => 126,
                _ => 1,
            };
            eprintln!("rolecall: cannot run '{}': {e}", a.command[0]);
            return Ok(code);
        }
    };
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(c), _) => Ok(c),
        (None, Some(sig)) => Ok(128 + sig),
        (None, None) => bail!("the command ended in an unknown way"),
    }
}
