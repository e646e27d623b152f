//! Profile-wide scoped sessions: `session_policy` (inline JSON), `session_policy_file` and
//! `managed_session_policies` (docs/scoped-sessions.md). Checked when the config loads — the
//! JSON parses, is a policy document and packs to at most 2048 characters, at most ten policy
//! ARNs — and the file read in, so that `session_policy` holds the packed policy afterwards.

use super::{Config, SourceConfig};
use rolecall_proto::scope::{check_policy_arns, pack_policy};
use std::path::{Path, PathBuf};

/// A policy file larger than this cannot pack to 2048 characters in any sensible way.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// What went wrong: the profile, the key to point at, the one-line message.
pub(crate) type Refusal = (String, &'static str, String);

/// Checks every profile's session policies and reads `session_policy_file` into
/// `session_policy` (packed). `config_path` anchors relative file names.
pub(crate) fn load_policies(config: &mut Config, config_path: &Path) -> Result<(), Refusal> {
    let base = config_path.parent().unwrap_or(Path::new("."));
    let mut packed = Vec::new();
    for (name, pc) in &config.profiles {
        let scoped = pc.session_policy.is_some()
            || pc.session_policy_file.is_some()
            || !pc.managed_session_policies.is_empty();
        if !scoped {
            continue;
        }
        let key = if pc.session_policy_file.is_some() {
            "session_policy_file"
        } else if pc.session_policy.is_some() {
            "session_policy"
        } else {
            "managed_session_policies"
        };
        let refuse = |key: &'static str, msg: String| -> Result<(), Refusal> {
            Err((name.clone(), key, msg))
        };
        if pc.session_policy.is_some() && pc.session_policy_file.is_some() {
            return refuse(
                "session_policy_file",
                format!(
                    "profile '{name}': session_policy and session_policy_file exclude each other"
                ),
            );
        }
        let identity_center = pc.via.is_none()
            && matches!(
                config.sources.get(&pc.source),
                Some(SourceConfig::IdentityCenter(_))
            );
        if identity_center {
            return refuse(
                key,
                format!("profile '{name}': a session policy cannot narrow an identity-center profile (its AWSReservedSSO_* role trusts only IAM Identity Center and cannot be assumed again); chain a role from it (via = \"{name}\") and put the session policy there"),
            );
        }
        let text = match (&pc.session_policy, &pc.session_policy_file) {
            (Some(inline), _) => Some(("session_policy".to_string(), inline.clone())),
            (None, Some(file)) => {
                let path = resolve(base, file);
                let text = match read_small(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        return refuse(
                            "session_policy_file",
                            format!(
                                "profile '{name}': session_policy_file {}: {e}",
                                path.display()
                            ),
                        )
                    }
                };
                Some((format!("session_policy_file {}", path.display()), text))
            }
            (None, None) => None,
        };
        if let Some((what, text)) = text {
            match pack_policy(&text) {
                Ok(p) => packed.push((name.clone(), p)),
                Err(e) => return refuse(key, format!("profile '{name}': {what} {e}")),
            }
        }
        if let Err(e) = check_policy_arns(&pc.managed_session_policies) {
            return refuse(
                "managed_session_policies",
                format!("profile '{name}': managed_session_policies: {e}"),
            );
        }
    }
    for (name, p) in packed {
        if let Some(pc) = config.profiles.get_mut(&name) {
            pc.session_policy = Some(p);
        }
    }
    Ok(())
}

/// `~/x` from the home directory, a relative name from the config file's directory.
fn resolve(base: &Path, file: &Path) -> PathBuf {
    if let Ok(rest) = file.strip_prefix("~") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    if file.is_absolute() {
        file.to_path_buf()
    } else {
        base.join(file)
    }
}

/// Reads a policy file of at most [`MAX_FILE_BYTES`].
pub fn read_small(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut text = String::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("is larger than {MAX_FILE_BYTES} bytes"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    const BASE: &str = r#"
[sources.corp]
kind = "identity-center"
start_url = "https://d-1234567890.awsapps.com/start"
region = "eu-west-1"

[profiles.dev-admin]
source = "corp"
account = "111111111111"
role = "DeveloperAdmin"
"#;

    fn err(extra: &str, dir: &Path) -> String {
        parse(&format!("{BASE}{extra}"), &dir.join("config.toml"))
            .expect_err("config should be refused")
            .to_string()
    }

    #[test]
    fn inline_and_file_policies_are_packed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("agent.json"),
            "{\n  \"Statement\": [ {\"Effect\": \"Allow\", \"Action\": \"s3:Get*\", \"Resource\": \"*\"} ]\n}\n",
        )
        .unwrap();
        let text = format!(
            "{BASE}\n[profiles.agent]\nvia = \"dev-admin\"\nrole_arn = \"arn:aws:iam::222222222222:role/Deployer\"\nsession_policy_file = \"agent.json\"\n\n[profiles.ro]\nvia = \"dev-admin\"\nrole_arn = \"arn:aws:iam::222222222222:role/Deployer\"\nsession_policy = '{{ \"Statement\": [] }}'\nmanaged_session_policies = [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\n"
        );
        let c = parse(&text, &dir.path().join("config.toml")).unwrap();
        assert_eq!(
            c.profiles["agent"].session_policy.as_deref(),
            Some(r#"{"Statement":[{"Action":"s3:Get*","Effect":"Allow","Resource":"*"}]}"#)
        );
        assert_eq!(
            c.profiles["ro"].session_policy.as_deref(),
            Some(r#"{"Statement":[]}"#)
        );
    }

    #[test]
    fn bad_policies_are_one_located_line() {
        let dir = tempfile::tempdir().unwrap();
        let chained = "\n[profiles.agent]\nvia = \"dev-admin\"\nrole_arn = \"arn:aws:iam::222222222222:role/Deployer\"\n";
        let e = err(
            &format!("{chained}session_policy = '{{\"Statement\": ['\n"),
            dir.path(),
        );
        assert!(
            e.contains("profile 'agent': session_policy is not JSON"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
        let e = err(
            &format!("{chained}session_policy_file = \"missing.json\"\n"),
            dir.path(),
        );
        assert!(
            e.contains("session_policy_file") && e.contains("missing.json: cannot read it"),
            "{e}"
        );
        let long = format!(
            "{chained}session_policy = '{{\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::{}\"}}]}}'\n",
            "b".repeat(2100)
        );
        assert!(err(&long, dir.path()).contains("more than the 2048 STS allows"));
        let arns = format!(
            "{chained}managed_session_policies = [{}]\n",
            ["\"arn:aws:iam::aws:policy/ReadOnlyAccess\""; 11].join(",")
        );
        assert!(err(&arns, dir.path()).contains("more than the 10 STS allows"));
        let ic = "\nsession_policy = '{\"Statement\": []}'\n";
        let e = err(
            &format!(
                "\n[profiles.x]\nsource = \"corp\"\naccount = \"111111111111\"\nrole = \"R\"{ic}"
            ),
            dir.path(),
        );
        assert!(
            e.contains("cannot narrow an identity-center profile"),
            "{e}"
        );
        let line = format!("{BASE}{chained}session_policy = '{{'\n")
            .lines()
            .position(|l| l.starts_with("session_policy"))
            .unwrap()
            + 1;
        let e = err(&format!("{chained}session_policy = '{{'\n"), dir.path());
        assert!(e.contains(&format!("config.toml:{line}:1:")), "{e}");
    }
}
