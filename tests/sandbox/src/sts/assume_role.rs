//! `AssumeRole`, SigV4-signed with credentials the sandbox issued. Every such credential is a
//! role session (portal or STS), so every `AssumeRole` here is role chaining, and AWS's limit
//! for it holds: `DurationSeconds` at most 3600. Trust: any credentials may assume any role of
//! the directory's `iam_roles`, with the role's `external_id` when it names one.

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
    let packed = common::session_policy(p)?;
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
    let source_identity = source_identity
        .map(|si| format!("<SourceIdentity>{}</SourceIdentity>", escape_xml(si)))
        .unwrap_or_default();
    let inner = format!(
        "{}{}{packed}{source_identity}",
        common::credentials_xml(&cred),
        common::assumed_role_user_xml(&cred),
    );
    Ok(common::success("AssumeRole", &inner))
}
