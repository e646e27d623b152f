//! Registry of the AWS credentials the sandbox issued (portal `GetRoleCredentials` and STS),
//! so that STS can check SigV4 signatures made with them and name the assumed role.

use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use time::OffsetDateTime;

/// One set of temporary credentials. Debug redacts the secret and the session token.
#[derive(Clone, Serialize)]
pub struct IssuedCredential {
    pub access_key_id: String,
    #[serde(skip)]
    pub secret_access_key: String,
    #[serde(skip)]
    pub session_token: String,
    pub account_id: String,
    /// `arn:aws:sts::<acct>:assumed-role/<role>/<session>`.
    pub arn: String,
    /// `AROA…:<session>` as GetCallerIdentity's `UserId`.
    pub user_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expiration: OffsetDateTime,
    /// Which operation issued it (`sso:GetRoleCredentials`, `sts:AssumeRoleWithSAML`, ...).
    pub issued_by: String,
    /// The session's `SourceIdentity` (set by `AssumeRole`, kept by every later link).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    /// The inline session policy the session was created with, as passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_policy: Option<String>,
    /// The managed session policies (`PolicyArns`) the session was created with.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policy_arns: Vec<String>,
}

impl fmt::Debug for IssuedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCredential")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("arn", &self.arn)
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// What to issue; the registry makes up the keys.
#[derive(Debug, Clone)]
pub struct IssueRequest<'a> {
    pub account_id: &'a str,
    /// Role name as it appears in the assumed-role ARN.
    pub role_name: &'a str,
    pub session_name: &'a str,
    pub expiration: OffsetDateTime,
    pub issued_by: &'a str,
}

#[derive(Debug, Default)]
pub struct Issued {
    by_key: Mutex<HashMap<String, IssuedCredential>>,
}

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

impl Issued {
    pub fn issue(&self, r: IssueRequest<'_>) -> IssuedCredential {
        use base64::Engine;
        use rand::RngCore;
        let access_key_id = format!("ASIA{}", crate::http::random_from(UPPER_ALNUM, 16));
        let secret_access_key = crate::http::random_from(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            40,
        );
        let mut tok = vec![0u8; 240];
        rand::thread_rng().fill_bytes(&mut tok);
        let session_token = format!(
            "IQoJb3JpZ2luX2Vj{}",
            base64::engine::general_purpose::STANDARD.encode(tok)
        );
        let cred = IssuedCredential {
            access_key_id: access_key_id.clone(),
            secret_access_key,
            session_token,
            account_id: r.account_id.to_string(),
            arn: format!(
                "arn:aws:sts::{}:assumed-role/{}/{}",
                r.account_id, r.role_name, r.session_name
            ),
            user_id: format!("{}:{}", role_id(r.account_id, r.role_name), r.session_name),
            expiration: r.expiration,
            issued_by: r.issued_by.to_string(),
            source_identity: None,
            session_policy: None,
            policy_arns: Vec::new(),
        };
        self.by_key
            .lock()
            .expect("issued lock")
            .insert(access_key_id, cred.clone());
        cred
    }

    /// Changes what is recorded of an issued credential (its session's scope).
    pub fn annotate(&self, access_key_id: &str, f: impl FnOnce(&mut IssuedCredential)) {
        if let Some(c) = self
            .by_key
            .lock()
            .expect("issued lock")
            .get_mut(access_key_id)
        {
            f(c);
        }
    }

    pub fn get(&self, access_key_id: &str) -> Option<IssuedCredential> {
        self.by_key
            .lock()
            .expect("issued lock")
            .get(access_key_id)
            .cloned()
    }

    pub fn list(&self) -> Vec<IssuedCredential> {
        let mut v: Vec<_> = self
            .by_key
            .lock()
            .expect("issued lock")
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|c| c.expiration);
        v
    }
}

/// A stable role id (`AROA` + 17 chars) per account and role, as IAM gives each role one.
pub fn role_id(account_id: &str, role_name: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{account_id}/{role_name}").as_bytes());
    let s: String = h
        .iter()
        .take(17)
        .map(|b| UPPER_ALNUM[(*b as usize) % UPPER_ALNUM.len()] as char)
        .collect();
    format!("AROA{s}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_and_lookup() {
        let reg = Issued::default();
        let c = reg.issue(IssueRequest {
            account_id: "111111111111",
            role_name: "AWSReservedSSO_Dev_0123456789abcdef",
            session_name: "alice@example.com",
            expiration: OffsetDateTime::now_utc(),
            issued_by: "sso:GetRoleCredentials",
        });
        assert!(c.access_key_id.starts_with("ASIA") && c.access_key_id.len() == 20);
        assert_eq!(c.secret_access_key.len(), 40);
        assert_eq!(
            c.arn,
            "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Dev_0123456789abcdef/alice@example.com"
        );
        assert_eq!(
            reg.get(&c.access_key_id).unwrap().session_token,
            c.session_token
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(&c.secret_access_key) && !dbg.contains(&c.session_token));
        assert_eq!(role_id("1", "a"), role_id("1", "a"));
        assert_ne!(role_id("1", "a"), role_id("1", "b"));
    }
}
