//! `AssumeRoleWithWebIdentity`: an RS256 JWT signed by a key the issuer publishes, whose `iss`
//! is an IAM OIDC provider of the role's account, `aud` among that provider's client ids,
//! within `nbf`..`exp`, for a role that trusts the provider.

use std::collections::HashMap;

use serde_json::Value;

use super::common::{self, StsError};
use crate::http::{escape_xml, Resp};
use crate::issued::IssueRequest;
use crate::jwt::{self, JwtError};
use crate::Sandbox;

/// Tolerated clock skew on `exp`/`nbf` (seconds).
const SKEW_SECS: i64 = 60;

fn claim_str<'a>(c: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
    c.get(k).and_then(Value::as_str)
}

pub fn assume_role_with_web_identity(
    sb: &Sandbox,
    p: &HashMap<String, String>,
) -> Result<Resp, StsError> {
    let role_arn = common::arn_param(p, "RoleArn", "roleArn")?;
    let session_name = common::required(p, "RoleSessionName", "roleSessionName")?;
    let token = common::required(p, "WebIdentityToken", "webIdentityToken")?;
    common::check_session_name(session_name)?;
    let (account, role_name) = common::parse_role_arn(role_arn)?;
    let scope = common::session_scope(p)?;
    let packed = scope.packed_size_xml.clone();

    let claims = jwt::verify(token).map_err(|e| match e {
        JwtError::UnknownKey => StsError::invalid_token(
            "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements",
        ),
        JwtError::BadSignature => StsError::invalid_token(
            "The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request.",
        ),
        other => StsError::invalid_token(&other.to_string()),
    })?;
    let iss = claim_str(&claims, "iss").unwrap_or_default().to_string();
    let (provider, role) = {
        let dir = sb.dir();
        let provider = dir
            .oidc_provider_for_issuer(&iss)
            .into_iter()
            .find(|pr| pr.arn.split(':').nth(4) == Some(account.as_str()))
            .cloned();
        (provider, dir.iam_role(role_arn).cloned())
    };
    let provider = provider.ok_or_else(|| {
        StsError::invalid_token(&format!(
            "No OpenIDConnect provider found in your account for {iss}"
        ))
    })?;
    let auds: Vec<String> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    let audience = auds
        .iter()
        .find(|a| provider.audiences.contains(a))
        .cloned()
        .ok_or_else(|| StsError::invalid_token("Incorrect token audience"))?;
    let now = sb.clock.now();
    let now_s = now.unix_timestamp();
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| StsError::invalid_token("The token has no expiration (exp) claim"))?;
    if now_s - SKEW_SECS >= exp {
        return Err(StsError::expired(&format!(
            "Token expired: current date/time {now_s} must be before the expiration date/time {exp}"
        )));
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64) {
        if now_s + SKEW_SECS < nbf {
            return Err(StsError::invalid_token("Token is not valid yet (nbf)"));
        }
    }
    let denied =
        || StsError::access_denied("Not authorized to perform sts:AssumeRoleWithWebIdentity");
    let role = role.ok_or_else(denied)?;
    if !role.trusted_providers.contains(&provider.arn) {
        return Err(denied());
    }
    let granted = common::duration(p, role.max_session_duration_secs)?;
    let lifetime = common::lifetime(sb, granted);
    let cred = sb.issued.issue(IssueRequest {
        account_id: &account,
        role_name: &role_name,
        session_name,
        expiration: now + time::Duration::seconds(lifetime as i64),
        issued_by: "sts:AssumeRoleWithWebIdentity",
    });
    sb.issued.annotate(&cred.access_key_id, |c| {
        c.session_policy = scope.policy.clone();
        c.policy_arns = scope.policy_arns.clone();
    });
    // Provider: the issuer without its scheme, as AWS reports it.
    let provider_host = iss.strip_prefix("https://").unwrap_or(&iss).to_string();
    let sub = claim_str(&claims, "sub").unwrap_or_default();
    let inner = format!(
        "{}<SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken>{}{packed}<Provider>{}</Provider><Audience>{}</Audience>",
        common::credentials_xml(&cred),
        escape_xml(sub),
        common::assumed_role_user_xml(&cred),
        escape_xml(&provider_host),
        escape_xml(&audience),
    );
    Ok(common::success("AssumeRoleWithWebIdentity", &inner))
}
