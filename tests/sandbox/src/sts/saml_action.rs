//! `AssumeRoleWithSAML`: what AWS enforces before it trusts an Entra assertion — signature by
//! the provider's certificate (wrapping-safe), an AWS sign-in Recipient and Audience, the time
//! window, the Role pair in the assertion, the role's trust and MaxSessionDuration.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use super::common::{self, StsError};
use crate::http::{escape_xml, Resp};
use crate::issued::IssueRequest;
use crate::saml::verify::{verify_response, VerifiedAssertion};
use crate::{jwt, keys, Sandbox};

/// Clock skew AWS tolerates on assertion time bounds (seconds).
const SKEW_SECS: i64 = 60;

/// Whether `url` is an AWS sign-in SAML endpoint: global, regional, GovCloud, China, or the
/// encrypted-assertion ACS form `…/saml/acs/<id>` of any of them.
pub fn is_aws_signin(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path_ok = path == "saml"
        || path.strip_prefix("saml/acs/").is_some_and(|id| {
            !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    let host_ok = match host {
        "signin.aws.amazon.com" | "signin.amazonaws-us-gov.com" | "signin.amazonaws.cn" => true,
        h => h
            .strip_suffix(".signin.aws.amazon.com")
            .is_some_and(|region| {
                !region.is_empty()
                    && region
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && region.split('-').count() >= 3
            }),
    };
    path_ok && host_ok
}

/// The switch `POST /_sandbox/sts/saml-single-use {"enabled": bool}` and what it remembers.
/// Off by default (today's AWS accepts one assertion for several roles within its validity);
/// on, a second `AssumeRoleWithSAML` with the same response is refused with
/// `InvalidIdentityToken`, the code STS answers a rejected assertion with, so that clients
/// must be able to fall back to a fresh assertion per role.
#[derive(Default)]
pub struct SingleUse {
    enabled: std::sync::atomic::AtomicBool,
    /// SHA-1 of each redeemed response, until its end (unix seconds).
    used: std::sync::Mutex<HashMap<[u8; 20], i64>>,
}

impl SingleUse {
    pub fn set(&self, on: bool) {
        self.enabled.store(on, std::sync::atomic::Ordering::Relaxed);
        if !on {
            self.used.lock().expect("single-use lock").clear();
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the response was redeemed before (a refused call does not count as a use).
    fn used_before(&self, assertion: &str, now: i64) -> bool {
        let digest: [u8; 20] = Sha1::digest(assertion.as_bytes()).into();
        let mut used = self.used.lock().expect("single-use lock");
        used.retain(|_, end| *end > now);
        used.contains_key(&digest)
    }

    /// Records a successful redemption, remembered until the response could no longer pass.
    fn record(&self, assertion: &str, until: i64) {
        let digest: [u8; 20] = Sha1::digest(assertion.as_bytes()).into();
        self.used
            .lock()
            .expect("single-use lock")
            .insert(digest, until);
    }
}

pub fn assume_role_with_saml(sb: &Sandbox, p: &HashMap<String, String>) -> Result<Resp, StsError> {
    let role_arn = common::arn_param(p, "RoleArn", "roleArn")?;
    let principal_arn = common::arn_param(p, "PrincipalArn", "principalArn")?;
    let assertion = common::required(p, "SAMLAssertion", "sAMLAssertion")?;
    let (account, role_name) = common::parse_role_arn(role_arn)?;
    let scope = common::session_scope(p)?;
    let packed = scope.packed_size_xml.clone();

    let a = verify_response(assertion, &keys::saml_key().cert_der)
        .map_err(|e| StsError::invalid_token(&e.to_string()))?;

    let (tenant_id, provider_known, role) = {
        let dir = sb.dir();
        (
            dir.tenant.id.clone(),
            dir.saml_providers.iter().any(|s| s.arn == principal_arn),
            dir.iam_role(role_arn).cloned(),
        )
    };
    if !provider_known {
        return Err(StsError::invalid_token(&format!(
            "SAML provider {principal_arn} does not exist in account {account}"
        )));
    }
    if a.issuer != jwt::v1_issuer(&tenant_id) {
        return Err(StsError::invalid_token(
            "Issuer not valid for this SAML provider",
        ));
    }
    check_claims(&a, sb.clock.now())?;
    let pair_ok = a.roles.iter().any(|v| {
        let parts: Vec<&str> = v.split(',').map(str::trim).collect();
        parts.len() == 2
            && ((parts[0] == role_arn && parts[1] == principal_arn)
                || (parts[1] == role_arn && parts[0] == principal_arn))
    });
    let denied = || StsError::access_denied("Not authorized to perform sts:AssumeRoleWithSAML");
    if !pair_ok {
        return Err(denied());
    }
    let role = role.ok_or_else(denied)?;
    if !role.trusted_providers.iter().any(|t| t == principal_arn) {
        return Err(denied());
    }
    let session_name = a
        .session_name
        .clone()
        .ok_or_else(|| StsError::invalid_token("RoleSessionName is required in AuthnResponse"))?;
    common::check_session_name(&session_name)
        .map_err(|_| StsError::invalid_token("RoleSessionName in AuthnResponse is invalid"))?;

    let single = sb.state::<SingleUse>();
    if single.enabled() && single.used_before(assertion, now_unix(sb)) {
        return Err(StsError::invalid_token(
            "The SAML assertion has already been used",
        ));
    }

    let mut granted = common::duration(p, role.max_session_duration_secs)?;
    // The session ends at DurationSeconds, the SessionDuration attribute or the assertion's
    // SessionNotOnOrAfter, whichever comes first.
    if let Some(sd) = a
        .session_duration
        .as_deref()
        .and_then(|s| s.parse::<u64>().ok())
    {
        granted = granted.min(sd);
    }
    let now = sb.clock.now();
    if let Some(end) = a.session_not_on_or_after {
        let left = (end - now).whole_seconds();
        if left <= 0 {
            return Err(StsError::expired(
                "The session of this assertion has ended (SessionNotOnOrAfter)",
            ));
        }
        granted = granted.min(left as u64);
    }
    let lifetime = common::lifetime(sb, granted);
    let cred = sb.issued.issue(IssueRequest {
        account_id: &account,
        role_name: &role_name,
        session_name: &session_name,
        expiration: now + time::Duration::seconds(lifetime as i64),
        issued_by: "sts:AssumeRoleWithSAML",
    });
    sb.issued.annotate(&cred.access_key_id, |c| {
        c.session_policy = scope.policy.clone();
        c.policy_arns = scope.policy_arns.clone();
    });
    if single.enabled() {
        let until = a
            .not_on_or_after
            .map_or(now.unix_timestamp() + 3600, |t| t.unix_timestamp())
            + SKEW_SECS;
        single.record(assertion, until);
    }
    let provider_name = principal_arn.rsplit('/').next().unwrap_or_default();
    let name_qualifier = STANDARD.encode(Sha1::digest(
        format!("{}{}/{}", a.issuer, account, provider_name).as_bytes(),
    ));
    let subject_type = a
        .name_id_format
        .as_deref()
        .map(|f| {
            f.strip_prefix("urn:oasis:names:tc:SAML:2.0:nameid-format:")
                .unwrap_or(f)
                .to_string()
        })
        .unwrap_or_else(|| "unspecified".into());
    let recipient = a
        .recipients
        .iter()
        .find(|r| is_aws_signin(r))
        .cloned()
        .unwrap_or_default();
    let mut inner = format!(
        "{}{}{packed}<Subject>{}</Subject><SubjectType>{}</SubjectType><Issuer>{}</Issuer><Audience>{}</Audience><NameQualifier>{}</NameQualifier>",
        common::credentials_xml(&cred),
        common::assumed_role_user_xml(&cred),
        escape_xml(&a.name_id),
        escape_xml(&subject_type),
        escape_xml(&a.issuer),
        escape_xml(&recipient),
        escape_xml(&name_qualifier),
    );
    if let Some(si) = &a.source_identity {
        inner.push_str(&format!(
            "<SourceIdentity>{}</SourceIdentity>",
            escape_xml(si)
        ));
    }
    Ok(common::success("AssumeRoleWithSAML", &inner))
}

fn now_unix(sb: &Sandbox) -> i64 {
    sb.clock.now().unix_timestamp()
}

/// Recipient, Audience and time bounds.
fn check_claims(a: &VerifiedAssertion, now: time::OffsetDateTime) -> Result<(), StsError> {
    if !a.recipients.iter().any(|r| is_aws_signin(r)) {
        return Err(StsError::invalid_token(
            "The SAML assertion's Recipient is not an AWS sign-in endpoint",
        ));
    }
    // AWS compares the audience without a fragment: Entra's "…/saml#1" identifiers pass.
    let audience_ok = a
        .audiences
        .iter()
        .any(|au| is_aws_signin(au.split('#').next().unwrap_or_default()));
    if !audience_ok {
        return Err(StsError::invalid_token(
            "Audience of the SAML assertion is not valid",
        ));
    }
    let skew = time::Duration::seconds(SKEW_SECS);
    if let Some(nb) = a.not_before {
        if now + skew < nb {
            return Err(StsError::invalid_token(
                "The SAML assertion is not yet valid (NotBefore)",
            ));
        }
    }
    for end in [a.not_on_or_after, a.confirmation_not_on_or_after]
        .into_iter()
        .flatten()
    {
        if now - skew >= end {
            return Err(StsError::expired(
                "Token must be redeemed within its validity period (NotOnOrAfter has passed)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_aws_signin;

    #[test]
    fn signin_endpoints() {
        for ok in [
            "https://signin.aws.amazon.com/saml",
            "https://eu-west-1.signin.aws.amazon.com/saml",
            "https://signin.amazonaws-us-gov.com/saml",
            "https://signin.amazonaws.cn/saml",
            "https://signin.aws.amazon.com/saml/acs/SAMLSP4ABCDEF",
        ] {
            assert!(is_aws_signin(ok), "{ok}");
        }
        for bad in [
            "http://signin.aws.amazon.com/saml",
            "http://127.0.0.1:8080/saml",
            "https://signin.aws.amazon.com.evil.example/saml",
            "https://evil.example/saml",
            "https://signin.aws.amazon.com/other",
            "https://x.signin.aws.amazon.com/saml",
        ] {
            assert!(!is_aws_signin(bad), "{bad}");
        }
    }
}
