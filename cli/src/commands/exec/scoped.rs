//! `rolecall exec --read-only` / `--policy FILE` (docs/scoped-sessions.md): the child gets
//! credentials of a scoped session — the profile's role assumed again with session policies,
//! tagged with a `SourceIdentity` naming the program — instead of the profile's own.

use crate::cli::ExecArgs;
use crate::client::Client;
use anyhow::bail;
use rolecall_proto::api::MintTokenReply;
use rolecall_proto::audit::Interface;
use rolecall_proto::output::ProcessCredentials;
use rolecall_proto::request::Request;
use rolecall_proto::scope::{
    pack_policy, source_identity_for, ScopedTokenRequest, SessionScope, READ_ONLY_POLICY_ARN,
};

/// A policy file larger than this cannot pack to STS's 2048 characters in any sensible way.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// The scope the flags ask for, `None` without `--read-only` or `--policy`. A bad policy file
/// is one line naming the file.
pub fn requested(a: &ExecArgs) -> anyhow::Result<Option<SessionScope>> {
    let policy = match &a.policy {
        None => None,
        Some(path) => {
            use std::io::Read as _;
            let shown = path.display();
            let file = std::fs::File::open(path)
                .map_err(|e| anyhow::anyhow!("--policy {shown}: cannot read it: {e}"))?;
            let mut text = String::new();
            file.take(MAX_FILE_BYTES + 1)
                .read_to_string(&mut text)
                .map_err(|e| anyhow::anyhow!("--policy {shown}: cannot read it: {e}"))?;
            if text.len() as u64 > MAX_FILE_BYTES {
                bail!("--policy {shown}: is larger than {MAX_FILE_BYTES} bytes");
            }
            Some(pack_policy(&text).map_err(|e| anyhow::anyhow!("--policy {shown}: {e}"))?)
        }
    };
    let policy_arns = if a.read_only {
        vec![READ_ONLY_POLICY_ARN.to_string()]
    } else {
        Vec::new()
    };
    if policy.is_none() && policy_arns.is_empty() {
        return Ok(None);
    }
    Ok(Some(SessionScope {
        policy,
        policy_arns,
        source_identity: Some(source_identity_for(&a.command[0])),
    }))
}

/// The scoped session's credentials, signing in first when a person is at the terminal (as
/// for the profile's own credentials).
pub fn credentials(
    client: &Client,
    profile: &str,
    scope: &SessionScope,
) -> anyhow::Result<ProcessCredentials> {
    // SAFETY: isatty only inspects the descriptor.
    let interactive = unsafe { libc::isatty(0) } == 1;
    Ok(client.send_json(
        &Request::ScopedCredentials {
            profile: profile.to_string(),
            interactive,
            wait: None,
            via: Some(Interface::Exec.as_str().to_string()),
        },
        scope,
    )?)
}

/// A container token bound to this process, served only the scoped session's credentials.
pub fn mint_token(
    client: &Client,
    profile: &str,
    scope: &SessionScope,
) -> anyhow::Result<MintTokenReply> {
    Ok(client.send_json(
        &Request::ScopedToken {
            profile: profile.to_string(),
        },
        &ScopedTokenRequest {
            bound_pid: Some(std::process::id()),
            scope: scope.clone(),
        },
    )?)
}
