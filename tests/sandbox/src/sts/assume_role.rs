//! `AssumeRole`, SigV4-signed with credentials the sandbox issued. Every such credential is a
//! role session (portal or STS), so every `AssumeRole` here is role chaining, and AWS's limit
//! for it holds: `DurationSeconds` at most 3600. Trust: any credentials may assume any role of
//! the directory's `iam_roles`, with the role's `external_id` when it names one, except its own
//! role unless that role `trusts_itself`; and the caller's own permissions must allow
//! `sts:AssumeRole` on the role (so a session narrowed by a session policy stays narrowed).
//! `Policy` and `PolicyArns` scope the new session; `SourceIdentity` sticks to it and to every
//! later link.

use std::collections::HashMap;

use super::caller::authenticate;
use super::common::{self, StsError};
use crate::http::{escape_xml, Req, Resp};
use crate::issued::IssueRequest;
use crate::Sandbox;

/// AWS's cap on sessions of roles assumed with role credentials.
const CHAINED_MAX_SECS: u64 = 3600;

pub fn assume_role(sb: &Sandbox, req: &Req, p: &HashMap<String, String>) -> Result<Resp, StsError> {
    let caller = authenticate(sb, req)?;
    let role_arn = common::arn_param(p, "RoleArn", "roleArn")?;
    let session_name = common::required(p, "RoleSessionName", "roleSessionName")?;
    common::check_session_name(session_name)?;
    let (account, role_name) = common::parse_role_arn(role_arn)?;
    let scope = common::session_scope(p)?;
    let source_identity = p.get("SourceIdentity").filter(|s| !s.is_empty());
    if let Some(si) = source_identity {
        if si.len() < 2
            || si.len() > 64
            || !si
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        {
            return Err(StsError::validation(&format!(
                "1 validation error detected: Value '{si}' at 'sourceIdentity' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
            )));
        }
        if si.to_ascii_lowercase().starts_with("aws:") {
            return Err(StsError::validation(
                "SourceIdentity must not begin with the prefix aws:",
            ));
        }
    }
    let tags = (1..)
        .map_while(|n| p.get(&format!("Tags.member.{n}.Key")))
        .count();
    if tags > 50 {
        return Err(StsError::validation(
            "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50",
        ));
    }
    let denied = || {
        StsError::access_denied(&format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            caller.arn
        ))
    };
    let role = sb.dir().iam_role(role_arn).cloned().ok_or_else(denied)?;
    // A role session assuming its own role needs a trust policy that names the role.
    let caller_role = caller.arn.split('/').nth(1).unwrap_or_default();
    if caller.account_id == account && caller_role == role_name && !role.trusts_itself {
        return Err(denied());
    }
    // The caller's own permissions (its role's policy within its session policies) must allow
    // sts:AssumeRole on the role: a narrowed session cannot step out of its narrowing.
    let outcome = crate::iam::session_outcome(sb, &caller, "sts:AssumeRole", role_arn);
    if let Some(message) = outcome.denial(&caller.arn, "sts:AssumeRole", role_arn) {
        return Err(StsError::access_denied(&message));
    }
    // A source identity, once set, stays with every later session of the chain.
    let source_identity = match (&caller.source_identity, source_identity) {
        (Some(kept), Some(asked)) if kept != asked => {
            return Err(StsError::access_denied(&format!(
                "User: {} is not authorized to perform: sts:SetSourceIdentity on resource: {role_arn}: the session's source identity '{kept}' cannot be changed",
                caller.arn
            )))
        }
        (Some(kept), _) => Some(kept.clone()),
        (None, asked) => asked.cloned(),
    };
    if let Some(required) = &role.external_id {
        if p.get("ExternalId") != Some(required) {
            return Err(denied());
        }
    }
    let asked: Option<u64> = p.get("DurationSeconds").and_then(|d| d.parse().ok());
    if asked.is_some_and(|d| d > CHAINED_MAX_SECS) {
        return Err(StsError::validation(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    let granted = common::duration(p, role.max_session_duration_secs.min(CHAINED_MAX_SECS))?;
    let lifetime = common::lifetime(sb, granted);
    let cred = sb.issued.issue(IssueRequest {
        account_id: &account,
        role_name: &role_name,
        session_name,
        expiration: sb.clock.now() + time::Duration::seconds(lifetime as i64),
        issued_by: "sts:AssumeRole",
    });
    sb.issued.annotate(&cred.access_key_id, |c| {
        c.source_identity = source_identity.clone();
        c.session_policy = scope.policy.clone();
        c.policy_arns = scope.policy_arns.clone();
    });
    let packed = scope.packed_size_xml;
    let source_identity = source_identity
        .map(|si| format!("<SourceIdentity>{}</SourceIdentity>", escape_xml(&si)))
        .unwrap_or_default();
    let inner = format!(
        "{}{}{packed}{source_identity}",
        common::credentials_xml(&cred),
        common::assumed_role_user_xml(&cred),
    );
    Ok(common::success("AssumeRole", &inner))
}
