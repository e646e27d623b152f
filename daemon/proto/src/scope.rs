//! Scoped sessions (docs/scoped-sessions.md): what narrows the credentials of a profile for
//! one child process (`rolecall exec --read-only` / `--policy FILE`) or for every client of a
//! profile (its `session_policy` / `managed_session_policies`).
//!
//! Shared by the CLI (which reads and checks a policy file) and the daemon (which passes the
//! scope to STS `AssumeRole` and keeps it with the container token it mints).

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The managed policy `--read-only` passes (AWS's `ReadOnlyAccess`: reads of every service).
pub const READ_ONLY_POLICY_ARN: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

/// STS's limit on an inline session policy's plain text, which rolecall counts after packing
/// the JSON (no whitespace between tokens).
pub const MAX_POLICY_CHARS: usize = 2048;

/// STS's limit on managed session policies (`PolicyArns`).
pub const MAX_POLICY_ARNS: usize = 10;

/// What a scoped session is narrowed by, and who it is for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct SessionScope {
    /// The inline session policy, packed (see [`pack_policy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Managed session policies (IAM policy ARNs), at most [`MAX_POLICY_ARNS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_arns: Vec<String>,
    /// `SourceIdentity` for the session (`rolecall-exec@<tool>`), checked by [`source_identity_for`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
}

impl SessionScope {
    /// `sha256:<16 hex>` of the policies (not the source identity): what the audit log and the
    /// role session name show, the same for the same policies whatever their whitespace.
    pub fn policy_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.policy.as_deref().unwrap_or_default().as_bytes());
        for arn in &self.policy_arns {
            h.update(b"\n");
            h.update(arn.as_bytes());
        }
        format!("sha256:{}", &hex::encode(h.finalize())[..16])
    }

    /// Checks what the daemon is handed: the same limits as for a policy file.
    pub fn check(&self) -> Result<(), String> {
        if self.policy.is_none() && self.policy_arns.is_empty() {
            return Err("a scoped session needs a session policy or managed policy ARNs".into());
        }
        if let Some(p) = &self.policy {
            let packed = pack_policy(p)?;
            if &packed != p {
                return Err("the session policy must be sent packed".into());
            }
        }
        check_policy_arns(&self.policy_arns)?;
        if let Some(si) = &self.source_identity {
            if !is_source_identity(si) {
                return Err(format!(
                    "source identity {si:?} must be 2 to 64 characters of letters, digits and _+=,.@-"
                ));
            }
        }
        Ok(())
    }
}

/// `POST /v1/scoped/{profile}/token`: a container token bound to `bound_pid`, served only the
/// scoped session's credentials (answers a `crate::api::MintTokenReply`).
/// `POST /v1/scoped/{profile}/credentials?interactive=B&wait=S&via=V` takes a bare
/// [`SessionScope`] and answers `crate::output::ProcessCredentials`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScopedTokenRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_pid: Option<u32>,
    pub scope: SessionScope,
}

/// Parses a session policy and packs it (JSON without whitespace between tokens), refusing
/// what cannot be a policy document or is longer than STS allows, in one line.
pub fn pack_policy(text: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "is not JSON: {} (line {}, column {})",
            first_line(&e.to_string()),
            e.line(),
            e.column()
        )
    })?;
    let obj = value
        .as_object()
        .ok_or("is not a policy document: expected a JSON object with a Statement")?;
    if !obj.contains_key("Statement") {
        return Err("is not a policy document: it has no Statement".into());
    }
    let packed = serde_json::to_string(&value).map_err(|e| e.to_string())?;
    if packed.chars().count() > MAX_POLICY_CHARS {
        return Err(format!(
            "is {} characters packed, more than the {MAX_POLICY_CHARS} STS allows for a session policy",
            packed.chars().count()
        ));
    }
    if !packed
        .chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{ff}'))
    {
        return Err(
            "holds characters STS refuses in a policy (only tab, newline and U+0020-U+00FF)".into(),
        );
    }
    Ok(packed)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// At most ten IAM policy ARNs (`arn:<partition>:iam::<account|aws>:policy/…`).
pub fn check_policy_arns(arns: &[String]) -> Result<(), String> {
    if arns.len() > MAX_POLICY_ARNS {
        return Err(format!(
            "{} managed session policies, more than the {MAX_POLICY_ARNS} STS allows",
            arns.len()
        ));
    }
    for arn in arns {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ok = parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "iam"
            && parts[3].is_empty()
            && (parts[4] == "aws"
                || (parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit())))
            && parts[5].len() > "policy/".len()
            && parts[5].starts_with("policy/")
            && (20..=2048).contains(&arn.len());
        if !ok {
            return Err(format!(
                "{arn:?} is not an IAM policy ARN like arn:aws:iam::aws:policy/ReadOnlyAccess"
            ));
        }
    }
    Ok(())
}

/// STS's `SourceIdentity`: 2 to 64 of `[\w+=,.@-]`, not starting with `aws:`.
pub fn is_source_identity(s: &str) -> bool {
    (2..=64).contains(&s.len())
        && !s.to_ascii_lowercase().starts_with("aws:")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// The source identity naming the tool a scoped session is for: `rolecall-exec@<program>`,
/// the program's file name with what STS refuses replaced by `_`, cut to 64 characters.
pub fn source_identity_for(program: &str) -> String {
    let name = program.rsplit('/').next().unwrap_or(program);
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut si = format!("rolecall-exec@{clean}");
    si.truncate(64);
    si
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_packed_and_checked() {
        let p = pack_policy("{ \"Version\": \"2012-10-17\",\n \"Statement\": [] }").unwrap();
        assert_eq!(p, r#"{"Statement":[],"Version":"2012-10-17"}"#);
        assert!(pack_policy("{nope").unwrap_err().starts_with("is not JSON"));
        assert!(pack_policy("[1]").unwrap_err().contains("JSON object"));
        assert!(pack_policy("{}").unwrap_err().contains("no Statement"));
        let long = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{}"}}]}}"#,
            "b".repeat(2048)
        );
        assert!(pack_policy(&long)
            .unwrap_err()
            .contains("more than the 2048"));
    }

    #[test]
    fn hashes_ignore_whitespace_and_the_source_identity() {
        let a = SessionScope {
            policy: Some(pack_policy("{\"Statement\": []}").unwrap()),
            ..Default::default()
        };
        let b = SessionScope {
            policy: Some(pack_policy("{ \"Statement\" : [ ] }").unwrap()),
            source_identity: Some("rolecall-exec@x".into()),
            ..Default::default()
        };
        assert_eq!(a.policy_hash(), b.policy_hash());
        assert!(a.policy_hash().starts_with("sha256:") && a.policy_hash().len() == 23);
        let c = SessionScope {
            policy_arns: vec![READ_ONLY_POLICY_ARN.into()],
            ..Default::default()
        };
        assert_ne!(a.policy_hash(), c.policy_hash());
    }

    #[test]
    fn arns_and_source_identities() {
        assert!(check_policy_arns(&[READ_ONLY_POLICY_ARN.into()]).is_ok());
        assert!(
            check_policy_arns(&["arn:aws:iam::123456789012:policy/team/Reader".into()]).is_ok()
        );
        assert!(check_policy_arns(&["ReadOnlyAccess".into()]).is_err());
        assert!(check_policy_arns(&["arn:aws:iam::aws:role/X".into()]).is_err());
        assert!(check_policy_arns(&vec![READ_ONLY_POLICY_ARN.to_string(); 11]).is_err());
        assert_eq!(
            source_identity_for("/usr/bin/python3"),
            "rolecall-exec@python3"
        );
        assert_eq!(source_identity_for("my tool:x"), "rolecall-exec@my_tool_x");
        assert_eq!(source_identity_for(&"a".repeat(100)).len(), 64);
        assert!(is_source_identity(&source_identity_for("claude")));
    }
}
