//! AWS STS emulation, query protocol (`POST /`, `Action=…&Version=2011-06-15`), with the
//! response and error documents of the `sts/2011-06-15` model: `AssumeRoleWithSAML`,
//! `AssumeRoleWithWebIdentity` (both unsigned, as in AWS), `AssumeRole` and `GetCallerIdentity`
//! (SigV4 with keys the sandbox issued).

mod assume_role;
mod caller;
mod common;
pub(crate) mod saml_action;
mod web_identity;

use std::collections::HashMap;
use std::sync::Arc;

use ::http::StatusCode;

use crate::http::{HandlerResult, Req, Resp};
use crate::Sandbox;

pub use common::StsError;

pub const VERSION: &str = "2011-06-15";

/// Query-protocol parameters: the form body, then the query string (first value wins).
fn params(req: &Req) -> HashMap<String, String> {
    let mut p = req.form();
    for (k, v) in req.query() {
        p.entry(k).or_insert(v);
    }
    p
}

pub async fn handle(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    let p = params(req);
    let action = p.get("Action").cloned().unwrap_or_default();
    let op = format!("sts:{action}");
    if p.get("Version").map(String::as_str) != Some(VERSION) {
        sb.enter(&op).await?;
        return Ok(StsError::sender(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            &format!(
                "Could not find operation {action} for version {}",
                p.get("Version")
                    .map(String::as_str)
                    .unwrap_or("NO_VERSION_SPECIFIED")
            ),
        )
        .reply());
    }
    let result: Result<Resp, StsError> = match action.as_str() {
        "AssumeRoleWithSAML" => {
            sb.enter(&op).await?;
            saml_action::assume_role_with_saml(sb, &p)
        }
        "AssumeRoleWithWebIdentity" => {
            sb.enter(&op).await?;
            web_identity::assume_role_with_web_identity(sb, &p)
        }
        "AssumeRole" => {
            sb.enter(&op).await?;
            assume_role::assume_role(sb, req, &p)
        }
        "GetCallerIdentity" => {
            sb.enter(&op).await?;
            caller::get_caller_identity(sb, req)
        }
        _ => {
            sb.enter(&op).await?;
            Err(StsError::sender(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                &format!("Could not find operation {action} for version {VERSION}"),
            ))
        }
    };
    Ok(result.unwrap_or_else(|e| e.reply()))
}
