//! The JSON that AWS clients read from rolecall. Field order and names are fixed by the AWS
//! contracts (`credential_process`, the container credentials provider); see docs/design.md,
//! *Serving credentials*.

use serde::{Deserialize, Serialize};

/// `credential_process` output, printed exactly as
/// `{"Version":1,"AccessKeyId":…,"SecretAccessKey":…,"SessionToken":…,"Expiration":…,"AccountId":…}`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessCredentials {
    #[serde(rename = "Version")]
    pub version: u32,
    #[serde(rename = "AccessKeyId")]
    pub access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    pub secret_access_key: String,
    #[serde(rename = "SessionToken")]
    pub session_token: String,
    /// RFC 3339, UTC, seconds precision, `Z`.
    #[serde(rename = "Expiration")]
    pub expiration: String,
    #[serde(rename = "AccountId")]
    pub account_id: String,
}

impl std::fmt::Debug for ProcessCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &"** redacted **")
            .field("expiration", &self.expiration)
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// The container credentials endpoint's reply:
/// `{"AccessKeyId","SecretAccessKey","Token","Expiration","RoleArn","AccountId"}`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerCredentials {
    #[serde(rename = "AccessKeyId")]
    pub access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    pub secret_access_key: String,
    #[serde(rename = "Token")]
    pub token: String,
    #[serde(rename = "Expiration")]
    pub expiration: String,
    #[serde(rename = "RoleArn")]
    pub role_arn: String,
    #[serde(rename = "AccountId")]
    pub account_id: String,
}

impl std::fmt::Debug for ContainerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("token", &"** redacted **")
            .field("expiration", &self.expiration)
            .field("role_arn", &self.role_arn)
            .finish()
    }
}

/// The container endpoint's error body, in the shape SDKs log (`Code`/`Message`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerError {
    #[serde(rename = "Code")]
    pub code: String,
    #[serde(rename = "Message")]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_credentials_print_in_spec_order() {
        let c = ProcessCredentials {
            version: 1,
            access_key_id: "ASIA1".into(),
            secret_access_key: "s".into(),
            session_token: "t".into(),
            expiration: "2026-11-22T10:00:00Z".into(),
            account_id: "111111111111".into(),
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"Version":1,"AccessKeyId":"ASIA1","SecretAccessKey":"s","SessionToken":"t","Expiration":"2026-11-22T10:00:00Z","AccountId":"111111111111"}"#
        );
        assert!(!format!("{c:?}").contains("\"s\""));
    }
}
