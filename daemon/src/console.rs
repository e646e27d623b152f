//! `POST /v1/console`: an AWS Management Console sign-in URL for a profile's credentials, the
//! way a custom identity broker makes one (docs/console.md): the served credentials go to the
//! sign-in federation endpoint (`Action=getSigninToken`), whose `SigninToken` goes into an
//! `Action=login` URL with the console page as `Destination`.
//!
//! The URL is a bearer secret for 15 minutes (anyone holding it gets the role's console): it is
//! never logged, only returned to the socket's caller or handed to the browser command.

use crate::broker::whoami::{source_endpoint, source_region};
use crate::broker::{Broker, CredentialRequest};
use crate::endpoints::{self, EnvSnapshot, Service};
use rolecall_proto::api::{ConsoleReply, ConsoleRequest, ErrorBody, ErrorCode};
use std::sync::Arc;
use std::time::Duration;

/// `SessionDuration` bounds of the federation endpoint (seconds).
pub const MIN_SESSION_DURATION: u32 = 900;
pub const MAX_SESSION_DURATION: u32 = 43_200;
/// Who made the URL, shown by AWS on the sign-in page.
const ISSUER: &str = "rolecall";
/// Longest error text from the endpoint passed on to the user.
const MAX_ERROR_TEXT: usize = 200;

fn bad(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, msg)
}

/// A console path segment or region: lower-case letters, digits and dashes only, so that it
/// cannot change the destination's host, path or query.
fn check_name(what: &str, v: &str) -> Result<(), ErrorBody> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "{what} {v:?} is not valid: use lower-case letters, digits and dashes (like \"s3\" or \"eu-west-1\")"
        )))
    }
}

/// The console's address for the partition of `region`.
pub fn console_base(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "https://console.amazonaws.cn"
    } else if region.starts_with("us-gov-") {
        "https://console.amazonaws-us-gov.com"
    } else {
        "https://console.aws.amazon.com"
    }
}

/// The console page the sign-in leads to.
pub fn destination(region: &str, service: Option<&str>) -> String {
    let path = service.unwrap_or("console");
    format!("{}/{path}/home?region={region}", console_base(region))
}

/// The `getSigninToken` request URL. It carries the credentials: never log it.
fn token_request_url(
    federation: &str,
    creds: &crate::sources::RoleCredentials,
    session_duration: Option<u32>,
) -> String {
    let session = serde_json::json!({
        "sessionId": creds.access_key_id,
        "sessionKey": creds.secret_access_key.as_str(),
        "sessionToken": creds.session_token.as_str(),
    })
    .to_string();
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("Action", "getSigninToken");
    if let Some(d) = session_duration {
        q.append_pair("SessionDuration", &d.to_string());
    }
    q.append_pair("Session", &session);
    format!("{federation}?{}", q.finish())
}

/// The `Action=login` URL: the sign-in token and where to go.
pub fn login_url(federation: &str, destination: &str, signin_token: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "login")
        .append_pair("Issuer", ISSUER)
        .append_pair("Destination", destination)
        .append_pair("SigninToken", signin_token)
        .finish();
    format!("{federation}?{q}")
}

/// Asks the federation endpoint for a sign-in token.
async fn signin_token(
    profile: &str,
    federation: &str,
    creds: &crate::sources::RoleCredentials,
    session_duration: Option<u32>,
) -> Result<String, ErrorBody> {
    let upstream = |msg: String| ErrorBody::new(ErrorCode::Upstream, msg);
    // Like the SDK clients: no proxy variables, bounded waits, and no redirects (a redirect
    // could carry the session to another host).
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(endpoints::CONNECT_TIMEOUT)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| upstream(format!("cannot build an HTTP client: {e}")))?;
    let resp = client
        .get(token_request_url(federation, creds, session_duration))
        .send()
        .await
        // The request URL holds the credentials: keep it out of the message.
        .map_err(|e| {
            upstream(format!(
                "cannot reach the AWS sign-in endpoint {federation}: {}",
                e.without_url()
            ))
        })?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        let detail: String = body
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .chars()
            .take(MAX_ERROR_TEXT)
            .collect();
        let code = if status.is_client_error() {
            ErrorCode::AccessDenied
        } else {
            ErrorCode::Upstream
        };
        return Err(ErrorBody::new(
            code,
            format!(
                "the AWS sign-in endpoint refused the credentials of profile '{profile}' (HTTP {}): {detail}",
                status.as_u16()
            ),
        ));
    }
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|_| {
        upstream("the AWS sign-in endpoint answered something that is not JSON".into())
    })?;
    v.get("SigninToken")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .ok_or_else(|| upstream("the AWS sign-in endpoint answered without a SigninToken".into()))
}

pub async fn console(
    broker: &Arc<Broker>,
    env: &EnvSnapshot,
    browser: &dyn crate::opener::Browser,
    req: &ConsoleRequest,
) -> Result<ConsoleReply, ErrorBody> {
    let profile = req.profile.as_str();
    if let Some(s) = &req.service {
        check_name("service", s)?;
    }
    if let Some(d) = req.session_duration {
        if !(MIN_SESSION_DURATION..=MAX_SESSION_DURATION).contains(&d) {
            return Err(bad(format!(
                "session duration {d}s is out of range: AWS accepts {MIN_SESSION_DURATION} to {MAX_SESSION_DURATION} seconds"
            )));
        }
    }
    let pc = broker.profile(profile).ok_or_else(|| {
        ErrorBody::new(
            ErrorCode::UnknownProfile,
            format!("unknown profile '{profile}'"),
        )
        .with_hint("rolecall status")
    })?;
    let reg = broker.registry();
    let source_cfg = reg.config.sources.get(&pc.source);
    let region = req
        .region
        .clone()
        .or_else(|| pc.region.clone())
        .or_else(|| source_region(source_cfg))
        .unwrap_or_else(|| "us-east-1".to_string());
    check_name("region", &region)?;
    let base =
        endpoints::resolve_or_default(Service::Signin, source_endpoint(source_cfg), env, &region)
            .map_err(|e| ErrorBody::new(ErrorCode::ConfigInvalid, e))?;
    let federation = format!("{base}/federation");
    let creds = broker
        .credentials(profile, CredentialRequest::default())
        .await?;
    let token = signin_token(profile, &federation, &creds, req.session_duration).await?;
    let dest = destination(&region, req.service.as_deref());
    let url = login_url(&federation, &dest, &token);
    if req.open {
        browser.open(&url, env).map_err(|e| {
            ErrorBody::new(
                ErrorCode::Unsupported,
                format!("cannot open a browser: {e}"),
            )
            .with_hint(format!("rolecall console {profile} --print"))
        })?;
        tracing::info!(%profile, destination = %dest, "opened a console sign-in in a browser");
        return Ok(ConsoleReply {
            url: None,
            opened: true,
            destination: dest,
        });
    }
    tracing::info!(%profile, destination = %dest, "made a console sign-in URL");
    Ok(ConsoleReply {
        url: Some(url),
        opened: false,
        destination: dest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_follow_the_partition() {
        assert_eq!(
            destination("eu-west-1", Some("s3")),
            "https://console.aws.amazon.com/s3/home?region=eu-west-1"
        );
        assert_eq!(
            destination("cn-north-1", None),
            "https://console.amazonaws.cn/console/home?region=cn-north-1"
        );
        assert!(destination("us-gov-west-1", Some("ec2"))
            .starts_with("https://console.amazonaws-us-gov.com/ec2/"));
    }

    #[test]
    fn names_cannot_escape_the_destination() {
        for bad in ["s3/../x", "S3", "s3?x=1", "", "a b", "s3#", "evil.example"] {
            assert!(check_name("service", bad).is_err(), "{bad}");
        }
        assert!(check_name("service", "cloudwatch").is_ok());
        assert!(check_name("region", "ap-southeast-2").is_ok());
    }

    #[test]
    fn login_url_encodes_every_part() {
        let u = login_url(
            "https://signin.aws.amazon.com/federation",
            "https://console.aws.amazon.com/s3/home?region=eu-west-1",
            "tok+/=",
        );
        assert_eq!(
            u,
            "https://signin.aws.amazon.com/federation?Action=login&Issuer=rolecall&Destination=https%3A%2F%2Fconsole.aws.amazon.com%2Fs3%2Fhome%3Fregion%3Deu-west-1&SigninToken=tok%2B%2F%3D"
        );
    }
}
