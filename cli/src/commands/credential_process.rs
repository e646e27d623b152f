//! `rolecall credential-process <profile>`: the `credential_process` of AWS profiles.
//!
//! On success stdout carries exactly the `ProcessCredentials` JSON line; on failure stdout stays
//! empty, stderr gets one line (`rolecall: message — run: hint`) and the exit code is 1. This
//! runs on every AWS call, so it reads no config and makes one socket round trip when warm.

use crate::cli::ProfileArg;
use crate::client::{Client, ClientError};
use rolecall_proto::api::{LoginPhase, LoginState, Status};
use rolecall_proto::output::ProcessCredentials;
use rolecall_proto::request::Request;
use std::io::Write;
use std::time::Duration;

/// How long an interactive caller waits before saying what it waits for.
const NOTE_AFTER: Duration = Duration::from_millis(700);

pub fn run(a: &ProfileArg, autostart: bool) -> anyhow::Result<i32> {
    // SAFETY: isatty only inspects the descriptor.
    let interactive = unsafe { libc::isatty(0) } == 1;
    let client = Client::connect(autostart)?;
    let request = Request::Credentials {
        profile: a.profile.clone(),
        interactive,
        wait: None,
        via: Some(
            rolecall_proto::audit::Interface::CredentialProcess
                .as_str()
                .to_string(),
        ),
    };
    let creds: ProcessCredentials = if interactive {
        fetch_interactive(&client, &request)?
    } else {
        client.send(&request)?
    };
    let mut line = serde_json::to_vec(&creds)?;
    line.push(b'\n');
    std::io::stdout().lock().write_all(&line)?;
    Ok(0)
}

/// A person at a terminal (the `aws` CLI in a shell): the daemon holds the request while a
/// sign-in runs. When the reply is slow, say which sign-in we wait for — with the URL and code
/// of a device-flow login, which the user could not see otherwise.
fn fetch_interactive(
    client: &Client,
    request: &Request,
) -> Result<ProcessCredentials, ClientError> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let noter = std::thread::spawn(move || {
        if rx.recv_timeout(NOTE_AFTER).is_err() {
            describe_pending_logins();
        }
    });
    let result = client.send(request);
    let _ = tx.send(());
    let _ = noter.join();
    result
}

/// Prints a short note per source with a login in progress. Best effort: any failure is silent
/// (the credentials request itself reports what matters).
fn describe_pending_logins() {
    let Ok(c) = Client::connect(false) else {
        return;
    };
    c.set_read_timeout(Some(Duration::from_secs(2)));
    let Ok(status) = c.send::<Status>(&Request::Status) else {
        return;
    };
    for s in status.sources.iter().filter(|s| s.login_in_progress) {
        let state = Client::connect(false).ok().and_then(|c| {
            c.set_read_timeout(Some(Duration::from_secs(2)));
            c.send::<LoginState>(&Request::LoginState {
                source: s.name.clone(),
                wait: Some(0),
            })
            .ok()
        });
        match state {
            Some(st) if st.phase == LoginPhase::Pending && st.user_code.is_some() => {
                let uri = st
                    .verification_uri
                    .or(st.verification_uri_complete)
                    .unwrap_or_default();
                eprintln!(
                    "rolecall: waiting for sign-in to '{}': open {uri} and enter code {}",
                    s.name,
                    st.user_code.unwrap_or_default()
                );
            }
            _ => eprintln!(
                "rolecall: waiting for sign-in to '{}' in your browser…",
                s.name
            ),
        }
    }
}
