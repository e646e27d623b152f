//! `GetCallerIdentity`: SigV4-authenticated with credentials the sandbox issued; names the
//! assumed role. Errors as AWS answers them (InvalidClientTokenId, SignatureDoesNotMatch,
//! ExpiredToken, MissingAuthenticationToken, IncompleteSignature).
//!
//! The credential scope's region must be the one the endpoint serves. AWS's global endpoint
//! (`sts.amazonaws.com`) takes `us-east-1`, a regional one (`sts.<region>.amazonaws.com`) its
//! own region. The sandbox learns which endpoint a request was addressed to from its `Host`
//! header; its own loopback address names no region (it stands in for whichever regional
//! endpoint the client was configured for), so there any well-formed region name is accepted.

use ::http::StatusCode;

use super::common::{self, StsError};
use crate::http::{escape_xml, Req, Resp};
use crate::issued::IssuedCredential;
use crate::sigv4::{self, SigV4Error, SignedRequest};
use crate::Sandbox;

fn forbidden(code: &'static str, message: &str) -> StsError {
    StsError::sender(StatusCode::FORBIDDEN, code, message)
}

pub fn get_caller_identity(sb: &Sandbox, req: &Req) -> Result<Resp, StsError> {
    let issued = authenticate(sb, req)?;
    let inner = format!(
        "<UserId>{}</UserId><Account>{}</Account><Arn>{}</Arn>",
        escape_xml(&issued.user_id),
        escape_xml(&issued.account_id),
        escape_xml(&issued.arn)
    );
    Ok(common::success("GetCallerIdentity", &inner))
}

/// The caller of a SigV4-signed STS action: credentials the sandbox issued, unexpired, with
/// their session token, and a signature made with their secret.
pub fn authenticate(sb: &Sandbox, req: &Req) -> Result<IssuedCredential, StsError> {
    let headers = req.header_pairs();
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
    if let Err(message) = check_scope_region(&cred.region, req.header("host").unwrap_or_default()) {
        return Err(forbidden("SignatureDoesNotMatch", &message));
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
    Ok(issued)
}

/// The region an STS host name serves: `us-east-1` for the global endpoint, `<region>` for
/// `sts.<region>.amazonaws.com` (also `sts-fips.…` and `….amazonaws.com.cn`), `None` for a
/// host that names no region (the sandbox's own address).
fn endpoint_region(host: &str) -> Option<String> {
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
        .to_ascii_lowercase();
    if name == "sts.amazonaws.com" {
        return Some("us-east-1".into());
    }
    let rest = name
        .strip_prefix("sts.")
        .or_else(|| name.strip_prefix("sts-fips."))?;
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))?;
    Some(region.to_string())
}

/// Checks the credential scope's region against the endpoint the request was addressed to;
/// `Err` is the message AWS gives with `SignatureDoesNotMatch`.
fn check_scope_region(scope_region: &str, host: &str) -> Result<(), String> {
    let ok = match endpoint_region(host) {
        Some(served) => scope_region == served,
        None => sigv4::is_region_name(scope_region),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Credential should be scoped to a valid region, not '{scope_region}'. "
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_region_follows_the_endpoint() {
        assert!(check_scope_region("us-east-1", "sts.amazonaws.com").is_ok());
        assert!(check_scope_region("eu-west-1", "sts.amazonaws.com").is_err());
        assert!(check_scope_region("eu-west-1", "sts.eu-west-1.amazonaws.com:443").is_ok());
        assert!(check_scope_region("us-east-1", "sts.eu-west-1.amazonaws.com").is_err());
        assert!(check_scope_region("cn-north-1", "sts.cn-north-1.amazonaws.com.cn").is_ok());
        assert!(check_scope_region("us-east-2", "sts-fips.us-east-2.amazonaws.com").is_ok());
        // The sandbox's own address names no region: any well-formed one.
        assert!(check_scope_region("ap-southeast-2", "127.0.0.1:4566").is_ok());
        assert!(check_scope_region("eu-west-1", "localhost").is_ok());
        let e = check_scope_region("moon-base-1", "127.0.0.1:4566").unwrap_err();
        assert_eq!(
            e,
            "Credential should be scoped to a valid region, not 'moon-base-1'. "
        );
    }
}
