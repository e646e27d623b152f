//! What the STS actions share: errors, parameter validation, ARNs, durations, and the
//! response documents.

use std::collections::HashMap;

use ::http::StatusCode;
use time::OffsetDateTime;

use crate::http::{self, escape_xml, Resp};
use crate::issued::IssuedCredential;

/// An STS error reply: status, `Type` (Sender/Receiver), `Code`, `Message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl StsError {
    pub fn sender(status: StatusCode, code: &'static str, message: &str) -> StsError {
        StsError {
            status,
            code,
            message: message.to_string(),
        }
    }

    pub fn validation(message: &str) -> StsError {
        Self::sender(StatusCode::BAD_REQUEST, "ValidationError", message)
    }

    pub fn invalid_token(message: &str) -> StsError {
        Self::sender(StatusCode::BAD_REQUEST, "InvalidIdentityToken", message)
    }

    pub fn expired(message: &str) -> StsError {
        Self::sender(StatusCode::BAD_REQUEST, "ExpiredTokenException", message)
    }

    pub fn access_denied(message: &str) -> StsError {
        Self::sender(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    pub fn reply(&self) -> Resp {
        crate::faults::sts_error(self.status, "Sender", self.code, &self.message)
    }
}

/// A required parameter, with the model's "must not be null" error when absent.
pub fn required<'a>(
    p: &'a HashMap<String, String>,
    name: &str,
    member: &str,
) -> Result<&'a str, StsError> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| {
        StsError::validation(&format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// Checks an ARN parameter's length (the model: 20..2048).
pub fn arn_param<'a>(
    p: &'a HashMap<String, String>,
    name: &str,
    member: &str,
) -> Result<&'a str, StsError> {
    let v = required(p, name, member)?;
    if v.len() < 20 || v.len() > 2048 {
        return Err(StsError::validation(&format!(
            "1 validation error detected: Value '{v}' at '{member}' failed to satisfy constraint: Member must have length greater than or equal to 20"
        )));
    }
    Ok(v)
}

/// `arn:aws:iam::<account>:role/<path/>name` → (account, role name).
pub fn parse_role_arn(arn: &str) -> Result<(String, String), StsError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iam" || !parts[5].starts_with("role/")
    {
        return Err(StsError::validation(&format!("{arn} is invalid")));
    }
    let account = parts[4];
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StsError::validation(&format!("{arn} is invalid")));
    }
    let name = parts[5].rsplit('/').next().unwrap_or_default();
    Ok((account.to_string(), name.to_string()))
}

/// DurationSeconds: default 3600, at least 900, at most the role's MaxSessionDuration.
pub fn duration(p: &HashMap<String, String>, role_max: u64) -> Result<u64, StsError> {
    let Some(raw) = p.get("DurationSeconds") else {
        return Ok(3600.min(role_max));
    };
    let d: u64 = raw.parse().map_err(|_| {
        StsError::validation(&format!(
            "1 validation error detected: Value '{raw}' at 'durationSeconds' failed to satisfy constraint: Member must be a number"
        ))
    })?;
    if d < 900 {
        return Err(StsError::validation(&format!(
            "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
        )));
    }
    if d > 43200 {
        return Err(StsError::validation(&format!(
            "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"
        )));
    }
    if d > role_max {
        return Err(StsError::validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    Ok(d)
}

/// RoleSessionName: 2..64 characters of `[\w+=,.@-]`.
pub fn check_session_name(name: &str) -> Result<(), StsError> {
    if name.len() < 2 || name.len() > 64 {
        return Err(StsError::validation(&format!(
            "1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy constraint: Member must have length {} 2 and 64",
            "between"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        return Err(StsError::validation(&format!(
            "1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )));
    }
    Ok(())
}

/// What `Policy` and `PolicyArns.member.N.arn` ask for, checked.
#[derive(Debug, Default)]
pub struct SessionScope {
    pub policy: Option<String>,
    pub policy_arns: Vec<String>,
    /// The `PackedPolicySize` element to add (AWS reports it only when a policy was passed).
    pub packed_size_xml: String,
}

/// AWS's limit on the packed session policies (inline and managed) and tags, as the sandbox
/// models it (see [`crate::iam::packed_len`]).
pub const PACKED_LIMIT: usize = 2048;

/// The optional inline session `Policy` (at most 2048 characters of a policy document IAM
/// accepts) and managed `PolicyArns` (at most 10, each an IAM policy the sandbox knows).
/// Packed, they must fit in [`PACKED_LIMIT`]: else `PackedPolicyTooLarge`.
pub fn session_scope(p: &HashMap<String, String>) -> Result<SessionScope, StsError> {
    let policy = p.get("Policy").cloned();
    if let Some(policy) = &policy {
        if policy.is_empty() || policy.len() > 2048 {
            return Err(StsError::validation(
                "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length between 1 and 2048",
            ));
        }
        crate::iam::Policy::parse(policy).map_err(|m| {
            StsError::sender(StatusCode::BAD_REQUEST, "MalformedPolicyDocument", &m)
        })?;
    }
    let policy_arns: Vec<String> = (1..)
        .map_while(|n| p.get(&format!("PolicyArns.member.{n}.arn")).cloned())
        .collect();
    if policy_arns.len() > 10 {
        return Err(StsError::validation(
            "1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10",
        ));
    }
    let tags: usize = (1..)
        .map_while(|n| {
            let k = p.get(&format!("Tags.member.{n}.Key"))?;
            let v = p.get(&format!("Tags.member.{n}.Value"))?;
            Some(k.len() + v.len())
        })
        .sum();
    let packed = policy.as_deref().map_or(0, crate::iam::packed_len)
        + policy_arns.iter().map(String::len).sum::<usize>()
        + tags;
    let percent = (packed * 100).div_ceil(PACKED_LIMIT);
    if packed > PACKED_LIMIT {
        return Err(StsError::sender(
            StatusCode::BAD_REQUEST,
            "PackedPolicyTooLarge",
            &format!(
                "Packed size of the session policies and tags exceeds the limit: {percent}% of the allowed size"
            ),
        ));
    }
    for arn in &policy_arns {
        if crate::iam::managed_policy(arn).is_none() {
            return Err(StsError::validation(&format!(
                "Policy {arn} does not exist or is not attachable."
            )));
        }
    }
    let packed_size_xml = if policy.is_some() || !policy_arns.is_empty() {
        format!("<PackedPolicySize>{}</PackedPolicySize>", percent.max(1))
    } else {
        String::new()
    };
    Ok(SessionScope {
        policy,
        policy_arns,
        packed_size_xml,
    })
}

/// ISO 8601 as STS writes `Expiration` (seconds, `Z`).
pub fn iso(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(fmt)
        .unwrap_or_default()
}

pub fn credentials_xml(c: &IssuedCredential) -> String {
    format!(
        "<Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>",
        escape_xml(&c.access_key_id),
        escape_xml(&c.secret_access_key),
        escape_xml(&c.session_token),
        iso(c.expiration)
    )
}

pub fn assumed_role_user_xml(c: &IssuedCredential) -> String {
    format!(
        "<AssumedRoleUser><AssumedRoleId>{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser>",
        escape_xml(&c.user_id),
        escape_xml(&c.arn)
    )
}

/// Wraps a result body in `<{Action}Response><{Action}Result>…` with a RequestId.
pub fn success(action: &str, result_inner: &str) -> Resp {
    let body = format!(
        "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <{action}Result>{result_inner}</{action}Result>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        uuid::Uuid::new_v4()
    );
    http::xml(StatusCode::OK, body)
}

/// The credential lifetime: the admin override if set, else the granted duration.
pub fn lifetime(sb: &crate::Sandbox, granted: u64) -> u64 {
    sb.lifetimes().role_credentials_secs.unwrap_or(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_and_names() {
        assert_eq!(
            parse_role_arn("arn:aws:iam::333333333333:role/path/EntraAdmin").unwrap(),
            ("333333333333".into(), "EntraAdmin".into())
        );
        assert!(parse_role_arn("arn:aws:iam::3:role/x").is_err());
        assert!(parse_role_arn("arn:aws:iam::333333333333:user/x").is_err());
        assert!(check_session_name("alice@contoso.onmicrosoft.com").is_ok());
        assert!(check_session_name("a").is_err());
        assert!(check_session_name("a b").is_err());
        assert!(check_session_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn policies() {
        let mut p = HashMap::new();
        assert_eq!(session_scope(&p).unwrap().packed_size_xml, "");
        p.insert(
            "Policy".to_string(),
            r#"{"Version":"2012-10-17","Statement":[]}"#.to_string(),
        );
        assert!(session_scope(&p)
            .unwrap()
            .packed_size_xml
            .starts_with("<PackedPolicySize>"));
        p.insert("Policy".to_string(), "{not json".to_string());
        assert_eq!(
            session_scope(&p).unwrap_err().code,
            "MalformedPolicyDocument"
        );
        p.insert("Policy".to_string(), "x".repeat(2049));
        assert_eq!(session_scope(&p).unwrap_err().code, "ValidationError");
        // 2000 packed characters of policy and one long managed ARN: over the packed limit.
        let big = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{}"}}]}}"#,
            "b".repeat(1920)
        );
        p.insert("Policy".to_string(), big);
        p.insert(
            "PolicyArns.member.1.arn".to_string(),
            "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".to_string(),
        );
        assert_eq!(session_scope(&p).unwrap_err().code, "PackedPolicyTooLarge");
        p.remove("Policy");
        p.insert(
            "PolicyArns.member.1.arn".to_string(),
            "arn:aws:iam::aws:policy/NoSuchPolicy".to_string(),
        );
        assert_eq!(session_scope(&p).unwrap_err().code, "ValidationError");
    }

    #[test]
    fn durations() {
        let mut p = HashMap::new();
        assert_eq!(duration(&p, 3600).unwrap(), 3600);
        p.insert("DurationSeconds".to_string(), "7200".to_string());
        assert_eq!(duration(&p, 14400).unwrap(), 7200);
        assert!(duration(&p, 3600)
            .unwrap_err()
            .message
            .contains("MaxSessionDuration"));
        p.insert("DurationSeconds".to_string(), "60".to_string());
        assert!(duration(&p, 3600).is_err());
    }
}
