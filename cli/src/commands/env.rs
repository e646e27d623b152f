//! `rolecall env <profile> [--format sh|fish|powershell|json|dotenv]`: a profile's current
//! credentials as plain environment variables, quoted for the target shell.
//!
//! These keys do not refresh themselves (prefer `rolecall exec` or the container endpoint for
//! long-running programs); `AWS_CREDENTIAL_EXPIRATION` says when they end.

use crate::cli::{EnvArgs, EnvFormat};
use crate::client::Client;
use rolecall_proto::api::Status;
use rolecall_proto::audit::Interface;
use rolecall_proto::output::ProcessCredentials;
use rolecall_proto::request::Request;
use std::io::Write as _;

pub fn run(a: &EnvArgs, autostart: bool) -> anyhow::Result<i32> {
    let client = Client::connect(autostart)?;
    let (creds, region) = fetch(&client, &a.profile, Interface::Env)?;
    let vars = key_variables(&creds, region.as_deref());
    let text = render(&vars, a.format);
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(0)
}

/// The profile's credentials (waiting for a sign-in only when a person is at the terminal, as
/// `credential-process` does) and its configured region.
pub(super) fn fetch(
    client: &Client,
    profile: &str,
    via: Interface,
) -> anyhow::Result<(ProcessCredentials, Option<String>)> {
    let creds = credentials(client, profile, via)?;
    Ok((creds, fetch_region(client, profile)))
}

/// The profile's configured region: configuration, not part of the credentials reply, so
/// `status` has it.
pub(super) fn fetch_region(client: &Client, profile: &str) -> Option<String> {
    client
        .send::<Status>(&Request::Status)
        .ok()
        .and_then(|s| s.profiles.into_iter().find(|p| p.name == profile))
        .and_then(|p| p.region)
}

/// The profile's credentials; at a terminal the daemon may hold the request while a sign-in
/// runs (as for `credential-process`), otherwise a needed sign-in fails at once with its hint.
/// `via` names the command in the daemon's audit log.
pub(super) fn credentials(
    client: &Client,
    profile: &str,
    via: Interface,
) -> anyhow::Result<ProcessCredentials> {
    // SAFETY: isatty only inspects the descriptor.
    let interactive = unsafe { libc::isatty(0) } == 1;
    Ok(client.send(&Request::Credentials {
        profile: profile.to_string(),
        interactive,
        wait: None,
        via: Some(via.as_str().to_string()),
    })?)
}

/// The variables for plain keys, in a stable order.
pub(super) fn key_variables(
    c: &ProcessCredentials,
    region: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("AWS_ACCESS_KEY_ID", c.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", c.secret_access_key.clone()),
        ("AWS_SESSION_TOKEN", c.session_token.clone()),
        ("AWS_CREDENTIAL_EXPIRATION", c.expiration.clone()),
    ];
    if let Some(r) = region {
        v.push(("AWS_REGION", r.to_string()));
        v.push(("AWS_DEFAULT_REGION", r.to_string()));
    }
    v
}

fn render(vars: &[(&str, String)], format: EnvFormat) -> String {
    match format {
        EnvFormat::Sh => vars
            .iter()
            .map(|(k, v)| format!("export {k}={}\n", sh_quote(v)))
            .collect(),
        EnvFormat::Fish => vars
            .iter()
            .map(|(k, v)| format!("set -gx {k} {}\n", fish_quote(v)))
            .collect(),
        EnvFormat::Powershell => vars
            .iter()
            .map(|(k, v)| format!("$Env:{k} = {}\n", ps_quote(v)))
            .collect(),
        EnvFormat::Dotenv => vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect(),
        EnvFormat::Json => {
            let map: serde_json::Map<String, serde_json::Value> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
                .collect();
            format!("{}\n", serde_json::Value::Object(map))
        }
    }
}

/// The quoting `rolecall use` prints with (one implementation, property-tested against the real
/// shells there).
fn sh_quote(v: &str) -> String {
    quoted(super::use_profile::quote_posix, v)
}

fn fish_quote(v: &str) -> String {
    quoted(super::use_profile::quote_fish, v)
}

/// PowerShell single-quoted strings: `'` and the typographic quotes PowerShell also accepts
/// as single quotes are doubled.
fn ps_quote(v: &str) -> String {
    quoted(super::use_profile::quote_powershell, v)
}

fn quoted(quote: fn(&mut String, &str), v: &str) -> String {
    let mut s = String::new();
    quote(&mut s, v);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASTY: &str = r#"a'b\c"$d`e f"#;

    #[test]
    fn quoting_survives_each_shell() {
        assert_eq!(sh_quote(NASTY), r#"'a'\''b\c"$d`e f'"#);
        assert_eq!(fish_quote(NASTY), r#"'a\'b\\c"$d`e f'"#);
        assert_eq!(ps_quote(NASTY), r#"'a''b\c"$d`e f'"#);
        // PowerShell ends a single-quoted string at a typographic quote too.
        assert_eq!(ps_quote("a\u{2019}b"), "'a\u{2019}\u{2019}b'");
        // Round trip through a real POSIX shell.
        let out = crate::spawn::command("sh")
            .arg("-c")
            .arg(format!("export X={}; printf %s \"$X\"", sh_quote(NASTY)))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), NASTY);
    }

    #[test]
    fn formats_list_the_keys_and_regions() {
        let c = ProcessCredentials {
            version: 1,
            access_key_id: "ASIAX".into(),
            secret_access_key: "s'ecret".into(),
            session_token: "tok".into(),
            expiration: "2026-11-22T10:00:00Z".into(),
            account_id: "111111111111".into(),
        };
        let v = key_variables(&c, Some("eu-west-1"));
        let sh = render(&v, EnvFormat::Sh);
        assert!(sh.contains("export AWS_SECRET_ACCESS_KEY='s'\\''ecret'\n"));
        assert!(sh.contains("export AWS_DEFAULT_REGION='eu-west-1'\n"));
        let json: serde_json::Value = serde_json::from_str(&render(&v, EnvFormat::Json)).unwrap();
        assert_eq!(json["AWS_SESSION_TOKEN"], "tok");
        assert_eq!(json["AWS_REGION"], "eu-west-1");
        assert!(render(&v, EnvFormat::Dotenv).contains("AWS_ACCESS_KEY_ID=ASIAX\n"));
        assert!(render(&v, EnvFormat::Powershell).contains("$Env:AWS_ACCESS_KEY_ID = 'ASIAX'\n"));
        assert!(render(&key_variables(&c, None), EnvFormat::Fish)
            .lines()
            .all(|l| !l.contains("REGION")));
    }
}
