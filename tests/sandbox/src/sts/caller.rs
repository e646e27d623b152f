//! `GetCallerIdentity`: SigV4-authenticated with credentials the sandbox issued; names the
//! assumed role. Errors as AWS answers them (InvalidClientTokenId, SignatureDoesNotMatch,
//! ExpiredToken, MissingAuthenticationToken, IncompleteSignature).

use ::http::StatusCode;

use super::common::{self, StsError};
use crate::http::{escape_xml, Req, Resp};
use crate::sigv4::{self, SigV4Error, SignedRequest};
use crate::Sandbox;

fn forbidden(code: &'static str, message: &str) -> StsError {
    StsError::sender(StatusCode::FORBIDDEN, code, message)
}

pub fn get_caller_identity(sb: &Sandbox, req: &Req) -> Result<Resp, StsError> {
    let headers: Vec<(String, String)> = req
        .parts
        .headers
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_string(), v.to_string()))
        })
        .collect();
    let signed = SignedRequest {
        method: req.method().as_str(),
        path: req.path(),
        query: req.parts.uri.query().unwrap_or(""),
        headers: &headers,
        body: &req.body,
    };
    let map = |e: SigV4Error| match e {
        SigV4Error::Missing => forbidden("MissingAuthenticationToken", &e.to_string()),
        SigV4Error::Incomplete(m) => forbidden("IncompleteSignature", &m),
        SigV4Error::Mismatch | SigV4Error::Skewed { .. } => {
            forbidden("SignatureDoesNotMatch", &e.to_string())
        }
    };
    let (cred, names, signature) = sigv4::parse_authorization(&signed).map_err(map)?;
    let invalid = || {
        forbidden(
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        )
    };
    let issued = sb.issued.get(&cred.access_key_id).ok_or_else(invalid)?;
    if cred.service != "sts" {
        return Err(forbidden(
            "SignatureDoesNotMatch",
            "Credential should be scoped to correct service: 'sts'. ",
        ));
    }
    // The request time is checked against the wall clock: SDKs sign with the real time, while
    // the sandbox clock's offset only simulates time passing for what the sandbox issued.
    let wall = time::OffsetDateTime::now_utc();
    sigv4::verify(
        &signed,
        &cred,
        &names,
        &signature,
        &issued.secret_access_key,
        wall,
    )
    .map_err(map)?;
    let now = sb.clock.now();
    let token = req.header("x-amz-security-token").unwrap_or_default();
    if token != issued.session_token {
        return Err(invalid());
    }
    if now >= issued.expiration {
        return Err(forbidden(
            "ExpiredToken",
            "The security token included in the request is expired",
        ));
    }
    let inner = format!(
        "<UserId>{}</UserId><Account>{}</Account><Arn>{}</Arn>",
        escape_xml(&issued.user_id),
        escape_xml(&issued.account_id),
        escape_xml(&issued.arn)
    );
    Ok(common::success("GetCallerIdentity", &inner))
}
