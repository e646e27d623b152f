//! The JSON documents credentials are handed out as, one function per client contract. Each
//! is what the clients' own parsers read (botocore, the JS SDK, the AWS CLI check them in the
//! black-box tests), so field names and order are fixed here and nowhere else.
//!
//! The bodies hold the secret key and session token: callers hand the bytes to the transport
//! and keep no other copy than the one they mean to reuse.

use super::RoleCredentials;
use rolecall_proto::output::{ContainerCredentials, ProcessCredentials};
use rolecall_proto::timefmt;
use serde::Serialize;

/// `credential_process` output:
/// `{"Version":1,"AccessKeyId","SecretAccessKey","SessionToken","Expiration","AccountId"}`.
pub fn process_json(c: &RoleCredentials) -> Vec<u8> {
    to_vec(&ProcessCredentials {
        version: 1,
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.to_string(),
        session_token: c.session_token.to_string(),
        expiration: timefmt::rfc3339(c.expiration),
        account_id: c.account_id.clone(),
    })
}

/// The container credentials endpoint's reply (`/v1/container/<profile>`):
/// `{"AccessKeyId","SecretAccessKey","Token","Expiration","RoleArn","AccountId"}`.
pub fn container_json(c: &RoleCredentials) -> Vec<u8> {
    to_vec(&ContainerCredentials {
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.to_string(),
        token: c.session_token.to_string(),
        expiration: timefmt::rfc3339(c.expiration),
        role_arn: c.role_arn.clone(),
        account_id: c.account_id.clone(),
    })
}

/// The EKS Pod Identity Agent's reply (`/v1/credentials`):
/// `{"AccessKeyId","SecretAccessKey","Token","AccountId","Expiration"}`. `RoleArn` is not part
/// of it (the agent does not send one); `AccountId` is, and lets the SDKs use account-based
/// endpoints.
pub fn pod_identity_json(c: &RoleCredentials) -> Vec<u8> {
    #[derive(Serialize)]
    struct PodIdentityCredentials<'a> {
        #[serde(rename = "AccessKeyId")]
        access_key_id: &'a str,
        #[serde(rename = "SecretAccessKey")]
        secret_access_key: &'a str,
        #[serde(rename = "Token")]
        token: &'a str,
        #[serde(rename = "AccountId")]
        account_id: &'a str,
        #[serde(rename = "Expiration")]
        expiration: String,
    }
    to_vec(&PodIdentityCredentials {
        access_key_id: &c.access_key_id,
        secret_access_key: &c.secret_access_key,
        token: &c.session_token,
        account_id: &c.account_id,
        expiration: timefmt::rfc3339(c.expiration),
    })
}

/// The IMDS reply (`/latest/meta-data/iam/security-credentials/<role>`), `LastUpdated` being
/// `now` (epoch seconds):
/// `{"Code":"Success","LastUpdated","Type":"AWS-HMAC","AccessKeyId","SecretAccessKey","Token","Expiration"}`.
pub fn imds_json(c: &RoleCredentials, now: i64) -> Vec<u8> {
    #[derive(Serialize)]
    struct ImdsCredentials<'a> {
        #[serde(rename = "Code")]
        code: &'static str,
        #[serde(rename = "LastUpdated")]
        last_updated: String,
        #[serde(rename = "Type")]
        kind: &'static str,
        #[serde(rename = "AccessKeyId")]
        access_key_id: &'a str,
        #[serde(rename = "SecretAccessKey")]
        secret_access_key: &'a str,
        #[serde(rename = "Token")]
        token: &'a str,
        #[serde(rename = "Expiration")]
        expiration: String,
    }
    to_vec(&ImdsCredentials {
        code: "Success",
        last_updated: timefmt::rfc3339(now),
        kind: "AWS-HMAC",
        access_key_id: &c.access_key_id,
        secret_access_key: &c.secret_access_key,
        token: &c.session_token,
        expiration: timefmt::rfc3339(c.expiration),
    })
}

fn to_vec<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain structs of strings and numbers: serialisation cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-04T11:00:00Z
    const EXPIRY: i64 = 1_796_382_000;

    fn creds() -> RoleCredentials {
        RoleCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "se\"cret/+".to_string().into(),
            session_token: "tok\\en".to_string().into(),
            expiration: EXPIRY,
            account_id: "111111111111".into(),
            role_arn: "arn:aws:sts::111111111111:assumed-role/Dev/me".into(),
        }
    }

    fn text(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn expiry_fixture_is_the_time_the_goldens_name() {
        assert_eq!(timefmt::rfc3339(EXPIRY), "2026-12-04T11:00:00Z");
    }

    #[test]
    fn credential_process_json_is_exactly_the_documented_object() {
        assert_eq!(
            text(process_json(&creds())),
            r#"{"Version":1,"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"se\"cret/+","SessionToken":"tok\\en","Expiration":"2026-12-04T11:00:00Z","AccountId":"111111111111"}"#
        );
    }

    #[test]
    fn container_json_is_exactly_the_documented_object() {
        assert_eq!(
            text(container_json(&creds())),
            r#"{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"se\"cret/+","Token":"tok\\en","Expiration":"2026-12-04T11:00:00Z","RoleArn":"arn:aws:sts::111111111111:assumed-role/Dev/me","AccountId":"111111111111"}"#
        );
    }

    #[test]
    fn pod_identity_json_has_the_agents_fields_and_no_role_arn() {
        assert_eq!(
            text(pod_identity_json(&creds())),
            r#"{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"se\"cret/+","Token":"tok\\en","AccountId":"111111111111","Expiration":"2026-12-04T11:00:00Z"}"#
        );
    }

    #[test]
    fn imds_json_is_exactly_what_ec2_answers() {
        assert_eq!(
            text(imds_json(&creds(), EXPIRY - 3600)),
            r#"{"Code":"Success","LastUpdated":"2026-12-04T10:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"se\"cret/+","Token":"tok\\en","Expiration":"2026-12-04T11:00:00Z"}"#
        );
    }
}
