//! Where each AWS call of a source goes, and the SDK client configuration for it.
//!
//! Resolution follows the SDKs' own conventions (docs/design.md, *Endpoints*): a source's
//! `endpoint_url` setting wins (a daemon started by systemd or launchd inherits none of a shell's
//! variables); else the service variable (`AWS_ENDPOINT_URL_SSO_OIDC`, `AWS_ENDPOINT_URL_SSO`,
//! `AWS_ENDPOINT_URL_STS`); else `AWS_ENDPOINT_URL`; else the SDK's default for the region.
//! `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` turns the variables off, as in the SDKs.
//!
//! The environment is a snapshot taken at start and passed in, so tests control it.
//!
//! Transport rules (see docs/security.md): every URL rolecall sends tokens or assertions to, or
//! opens in a browser, is https, or plain http only to a loopback host (`127.0.0.0/8`, `::1`,
//! `localhost`: the sandbox, LocalStack). An override taken from the environment must name a
//! loopback host (http or https) and is logged as a warning: the environment of a shell is not
//! configuration, and a forgotten `AWS_ENDPOINT_URL` would otherwise receive refresh tokens.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use std::collections::HashMap;
use std::time::Duration;

/// The process environment captured once (at daemon start, or built by a test).
pub type EnvSnapshot = HashMap<String, String>;

/// The current process environment (non-UTF-8 variables are skipped).
pub fn env_snapshot() -> EnvSnapshot {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// A non-empty variable from the snapshot.
pub fn env_var<'a>(env: &'a EnvSnapshot, name: &str) -> Option<&'a str> {
    env.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// The AWS services rolecall calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// IAM Identity Center OIDC (`RegisterClient`, `CreateToken`, `/authorize`).
    SsoOidc,
    /// The Identity Center portal (`GetRoleCredentials`, `ListAccounts`, …).
    Sso,
    Sts,
}

impl Service {
    /// The service-specific variable, as the SDKs name it (from the service id).
    pub fn env_var(self) -> &'static str {
        match self {
            Service::SsoOidc => "AWS_ENDPOINT_URL_SSO_OIDC",
            Service::Sso => "AWS_ENDPOINT_URL_SSO",
            Service::Sts => "AWS_ENDPOINT_URL_STS",
        }
    }

    /// The public endpoint for `region` (aws partition), as the SDKs' rules build it. Needed
    /// where a URL is opened in a browser rather than called through an SDK client.
    pub fn default_endpoint(self, region: &str) -> String {
        let host = match self {
            Service::SsoOidc => "oidc",
            Service::Sso => "portal.sso",
            Service::Sts => "sts",
        };
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("https://{host}.{region}.{suffix}")
    }
}

/// The endpoint override for `service`, or `None` for the SDK default. An override that is
/// not an absolute http(s) URL is a configuration error (the message names where it came from).
pub fn resolve(
    service: Service,
    config_endpoint: Option<&str>,
    env: &EnvSnapshot,
) -> Result<Option<String>, String> {
    if let Some(u) = config_endpoint.filter(|u| !u.trim().is_empty()) {
        return check(u.trim(), "endpoint_url", false).map(Some);
    }
    let ignore = env_var(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if ignore {
        return Ok(None);
    }
    for var in [service.env_var(), "AWS_ENDPOINT_URL"] {
        if let Some(u) = env_var(env, var) {
            let u = check(u.trim(), var, true)?;
            tracing::warn!(
                service = ?service,
                variable = var,
                endpoint = %u,
                "using an endpoint override from the environment (loopback only; set endpoint_url in the config to make it permanent)"
            );
            return Ok(Some(u));
        }
    }
    Ok(None)
}

/// Where a browser should go for this service: the override, or the regional default.
pub fn resolve_or_default(
    service: Service,
    config_endpoint: Option<&str>,
    env: &EnvSnapshot,
    region: &str,
) -> Result<String, String> {
    Ok(resolve(service, config_endpoint, env)?.unwrap_or_else(|| service.default_endpoint(region)))
}

fn check(u: &str, origin: &str, from_env: bool) -> Result<String, String> {
    let parsed = match url::Url::parse(u) {
        Ok(p) if (p.scheme() == "http" || p.scheme() == "https") && p.host().is_some() => p,
        _ => {
            return Err(format!(
                "{origin} {u:?} is not an absolute http(s) URL (like \"http://127.0.0.1:4566\")"
            ))
        }
    };
    if from_env && !is_loopback(&parsed) {
        return Err(format!(
            "{origin} {u:?} from the environment is not a loopback address; only 127.0.0.1, ::1 or localhost may be set there — put other endpoints in the source's endpoint_url in the config"
        ));
    }
    check_transport(&parsed, origin)?;
    Ok(u.trim_end_matches('/').to_string())
}

/// Whether `u` names a loopback host: `127.0.0.0/8`, `::1` or `localhost`.
pub fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// https anywhere, plain http only to a loopback host; `what` names the setting in the error.
/// Tokens, assertions and sign-in pages must not cross a network in the clear.
pub fn check_transport(u: &url::Url, what: &str) -> Result<(), String> {
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(u) => Ok(()),
        "http" => Err(format!(
            "{what} {:?} uses plain http to a host that is not loopback; use https (plain http is allowed only to 127.0.0.1, ::1 or localhost)",
            u.as_str()
        )),
        other => Err(format!(
            "{what} {:?} is not an http(s) URL (scheme {other:?})",
            u.as_str()
        )),
    }
}

/// [`check_transport`] for a URL given as text.
pub fn check_transport_str(u: &str, what: &str) -> Result<(), String> {
    let parsed = url::Url::parse(u).map_err(|_| format!("{what} {u:?} is not a URL"))?;
    check_transport(&parsed, what)
}

/// Connect timeout for every AWS call.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One attempt's bound.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole operation's bound, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// An SDK configuration for one service call site: region, optional endpoint override, the
/// standard retry (3 attempts, throttling and transient errors), rolecall's timeouts, and
/// credentials only when given: sso-oidc and the portal are unsigned bearer-token APIs (their
/// operations are modelled with no auth, so the SDK sends them unsigned), and STS's
/// `AssumeRoleWith*` need none either.
pub fn sdk_config(
    region: &str,
    endpoint: Option<&str>,
    credentials: Option<SharedCredentialsProvider>,
) -> SdkConfig {
    let mut b = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
    if let Some(e) = endpoint {
        b = b.endpoint_url(e);
    }
    if let Some(c) = credentials {
        b = b.credentials_provider(c);
    }
    b.build()
}

/// An Identity Center OIDC client.
pub fn ssooidc_client(region: &str, endpoint: Option<&str>) -> aws_sdk_ssooidc::Client {
    aws_sdk_ssooidc::Client::new(&sdk_config(region, endpoint, None))
}

/// An Identity Center portal client.
pub fn sso_client(region: &str, endpoint: Option<&str>) -> aws_sdk_sso::Client {
    aws_sdk_sso::Client::new(&sdk_config(region, endpoint, None))
}

/// An STS client, signed with `credentials` when given.
pub fn sts_client(
    region: &str,
    endpoint: Option<&str>,
    credentials: Option<SharedCredentialsProvider>,
) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&sdk_config(region, endpoint, credentials))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvSnapshot {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn config_wins_over_environment() {
        let e = env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_SSO", "http://127.0.0.1:2"),
        ]);
        assert_eq!(
            resolve(Service::Sso, Some("http://127.0.0.1:9/"), &e).unwrap(),
            Some("http://127.0.0.1:9".into())
        );
    }

    #[test]
    fn service_variable_wins_over_global() {
        let e = env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_SSO_OIDC", "http://127.0.0.1:3"),
        ]);
        assert_eq!(
            resolve(Service::SsoOidc, None, &e).unwrap().as_deref(),
            Some("http://127.0.0.1:3")
        );
        // Another service's variable does not leak across.
        assert_eq!(
            resolve(Service::Sso, None, &e).unwrap().as_deref(),
            Some("http://127.0.0.1:1")
        );
        assert_eq!(
            resolve(Service::Sts, None, &e).unwrap().as_deref(),
            Some("http://127.0.0.1:1")
        );
    }

    #[test]
    fn nothing_set_means_sdk_default() {
        let e = env(&[("AWS_ENDPOINT_URL_STS", "")]);
        assert_eq!(resolve(Service::Sts, None, &e).unwrap(), None);
        assert_eq!(resolve(Service::Sts, Some(" "), &e).unwrap(), None);
        assert_eq!(
            resolve_or_default(Service::SsoOidc, None, &e, "eu-west-1").unwrap(),
            "https://oidc.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            Service::Sso.default_endpoint("cn-north-1"),
            "https://portal.sso.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn ignore_flag_turns_variables_off_but_not_config() {
        let e = env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        assert_eq!(resolve(Service::Sso, None, &e).unwrap(), None);
        assert_eq!(
            resolve(Service::Sso, Some("http://127.0.0.1:9"), &e)
                .unwrap()
                .as_deref(),
            Some("http://127.0.0.1:9")
        );
    }

    #[test]
    fn bad_urls_are_named() {
        let e = env(&[("AWS_ENDPOINT_URL_SSO", "localhost:4566")]);
        let err = resolve(Service::Sso, None, &e).unwrap_err();
        assert!(err.contains("AWS_ENDPOINT_URL_SSO") && err.contains("localhost:4566"));
        let err = resolve(Service::Sso, Some("ftp://x"), &e).unwrap_err();
        assert!(err.starts_with("endpoint_url"), "{err}");
    }

    #[test]
    fn plain_http_is_refused_for_non_loopback_hosts() {
        let none = env(&[]);
        for ok in [
            "https://oidc.eu-west-1.amazonaws.com",
            "https://10.0.0.5:4566",
            "http://127.0.0.1:4566",
            "http://127.9.8.7",
            "http://[::1]:4566",
            "http://localhost:4566",
            "http://LOCALHOST",
        ] {
            assert!(
                resolve(Service::Sso, Some(ok), &none).is_ok(),
                "{ok} refused"
            );
        }
        for bad in [
            "http://10.0.0.5:4566",
            "http://sso.example.com",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "http://[::2]",
        ] {
            let e = resolve(Service::Sso, Some(bad), &none).unwrap_err();
            assert!(
                e.contains("plain http") && e.contains("endpoint_url"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn environment_overrides_must_be_loopback() {
        let e = env(&[("AWS_ENDPOINT_URL", "https://sts.attacker.example")]);
        let err = resolve(Service::Sts, None, &e).unwrap_err();
        assert!(
            err.contains("AWS_ENDPOINT_URL") && err.contains("not a loopback address"),
            "{err}"
        );
        let e = env(&[("AWS_ENDPOINT_URL_STS", "https://localhost:4566")]);
        assert_eq!(
            resolve(Service::Sts, None, &e).unwrap().as_deref(),
            Some("https://localhost:4566")
        );
        // The config file may name any https endpoint (a VPC endpoint, a proxy of the company).
        assert_eq!(
            resolve(Service::Sts, Some("https://sts.vpce.example"), &e)
                .unwrap()
                .as_deref(),
            Some("https://sts.vpce.example")
        );
    }

    #[test]
    fn sdk_config_carries_region_endpoint_and_bounds() {
        let c = sdk_config("eu-west-1", Some("http://127.0.0.1:4566"), None);
        assert_eq!(c.region().unwrap().as_ref(), "eu-west-1");
        assert_eq!(c.endpoint_url(), Some("http://127.0.0.1:4566"));
        assert!(c.credentials_provider().is_none());
        let t = c.timeout_config().unwrap();
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(t.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert_eq!(c.retry_config().unwrap().max_attempts(), 3);
    }
}
