//! `POST /v1/setup/check`: before `rolecall setup` writes a source, the daemon confirms it can
//! work by asking the service it names — through the same endpoint resolution and HTTPS client
//! the source itself will use. Nothing is stored; a failure is one line for the user.
//!
//! - identity-center: a custom-domain start URL is followed to its portal; a client is
//!   registered and a device authorization started for the start URL, which the service only
//!   accepts for the start URL of an instance in that region (the authorization is left to
//!   expire unused).
//! - entra-saml: the tenant's federation metadata downloads and carries a signing certificate.
//! - entra-oidc: the tenant's OpenID configuration names device and authorization endpoints,
//!   and the device endpoint accepts the app registration's client id.

use crate::config::{self, EntraOidcConfig, EntraSamlConfig, IdentityCenterConfig, SourceConfig};
use crate::endpoints::{self, EnvSnapshot, Service};
use crate::sources::identity_center::{errors, start_url};
use std::time::Duration;

/// Parses `source_toml` (one `[sources.NAME]` table) with the config file's own validation and
/// asks the service. Returns what was confirmed, one line each.
pub async fn check(source_toml: &str, env: &EnvSnapshot) -> Result<Vec<String>, String> {
    let parsed = config::parse(source_toml, std::path::Path::new("the new source"))
        .map_err(|e| e.message)?;
    let mut sources = parsed.sources.into_iter();
    let (Some((name, source)), None) = (sources.next(), sources.next()) else {
        return Err("setup checks exactly one [sources.NAME] table".into());
    };
    match &source {
        SourceConfig::IdentityCenter(c) => identity_center(&name, c, env).await,
        SourceConfig::EntraSaml(c) => entra_saml(c).await,
        SourceConfig::EntraOidc(c) => entra_oidc(c).await,
        #[allow(unreachable_patterns)]
        other => Ok(vec![format!(
            "{} sources are not checked before sign-in",
            other.kind_name()
        )]),
    }
}

async fn identity_center(
    name: &str,
    c: &IdentityCenterConfig,
    env: &EnvSnapshot,
) -> Result<Vec<String>, String> {
    let mut confirmed = Vec::new();
    let portal = start_url::resolve(c.start_url.trim())
        .await
        .map_err(|e| e.to_string())?;
    if portal != c.start_url.trim() {
        confirmed.push(format!("start URL {} redirects to {portal}", c.start_url));
    }
    let endpoint = endpoints::resolve(Service::SsoOidc, c.endpoint_url.as_deref(), env)?;
    let oidc = endpoints::ssooidc_client(&c.region, endpoint.as_deref());
    let reg = oidc
        .register_client()
        .client_name(format!("rolecall-setup-{name}"))
        .client_type("public")
        .send()
        .await
        .map_err(|e| {
            format!(
                "IAM Identity Center in region {} did not answer: {}",
                c.region,
                errors::read(&e).message
            )
        })?;
    let (Some(id), Some(secret)) = (reg.client_id(), reg.client_secret()) else {
        return Err("IAM Identity Center registered no client (no client id in its answer)".into());
    };
    oidc.start_device_authorization()
        .client_id(id)
        .client_secret(secret)
        .start_url(&portal)
        .send()
        .await
        .map_err(|e| {
            let f = errors::read(&e);
            if f.status.is_some_and(|s| (400..500).contains(&s)) {
                format!(
                    "start URL {portal} is not an IAM Identity Center portal in region {} ({}) — check the URL and the region in the AWS access portal's settings",
                    c.region, f.message
                )
            } else {
                format!("IAM Identity Center in region {} did not answer: {}", c.region, f.message)
            }
        })?;
    confirmed.push(format!(
        "start URL {portal} is an IAM Identity Center portal in {}; sign-in can start",
        c.region
    ));
    Ok(confirmed)
}

const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

fn authority(a: &Option<String>) -> Result<String, String> {
    let a = a
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or(DEFAULT_AUTHORITY)
        .trim_end_matches('/')
        .to_string();
    endpoints::check_transport_str(&a, "authority")?;
    Ok(a)
}

fn http() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

fn unreachable(what: &str, e: &reqwest::Error) -> String {
    let why = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    format!("cannot reach {what}: {why}")
}

async fn entra_saml(c: &EntraSamlConfig) -> Result<Vec<String>, String> {
    let base = authority(&c.authority)?;
    let tenant = c.tenant.trim();
    let url = format!("{base}/{tenant}/federationmetadata/2007-06/federationmetadata.xml");
    let resp = http()?
        .get(&url)
        .query(&[("appid", c.app_identifier.trim())])
        .send()
        .await
        .map_err(|e| unreachable(&format!("the federation metadata of tenant {tenant}"), &e))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!(
            "tenant {tenant} has no federation metadata (HTTP {}) — check the tenant id or domain",
            status.as_u16()
        ));
    }
    let entity = attribute(&body, "entityID");
    if !body.contains("EntityDescriptor") || !body.contains("X509Certificate") || entity.is_none() {
        return Err(format!(
            "the federation metadata of tenant {tenant} is not SAML metadata with a signing certificate"
        ));
    }
    Ok(vec![format!(
        "federation metadata of tenant {tenant} downloaded (issuer {}); the app {} is confirmed at sign-in",
        entity.unwrap_or_default(),
        c.app_identifier
    )])
}

/// The value of the first `name="…"` attribute in `xml` (enough for one known attribute of a
/// metadata document; the signature checks happen with the real parser at sign-in).
fn attribute(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("{name}=\""))? + name.len() + 2;
    let len = xml[start..].find('"')?;
    Some(xml[start..start + len].to_string())
}

async fn entra_oidc(c: &EntraOidcConfig) -> Result<Vec<String>, String> {
    let base = authority(&c.authority)?;
    let tenant = c.tenant.trim();
    let client = http()?;
    let url = format!("{base}/{tenant}/v2.0/.well-known/openid-configuration");
    let resp =
        client.get(&url).send().await.map_err(|e| {
            unreachable(&format!("the OpenID configuration of tenant {tenant}"), &e)
        })?;
    if !resp.status().is_success() {
        return Err(format!(
            "tenant {tenant} has no OpenID configuration (HTTP {}) — check the tenant id or domain",
            resp.status().as_u16()
        ));
    }
    let doc: serde_json::Value = resp
        .json()
        .await
        .map_err(|_| format!("the OpenID configuration of tenant {tenant} is not JSON"))?;
    let field = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let (Some(device), Some(_authorize)) = (
        field("device_authorization_endpoint"),
        field("authorization_endpoint"),
    ) else {
        return Err(format!(
            "the OpenID configuration of tenant {tenant} names no device or authorization endpoint"
        ));
    };
    endpoints::check_transport_str(&device, "the device authorization endpoint")?;
    let resp = client
        .post(&device)
        .form(&[("client_id", c.client_id.trim()), ("scope", "openid")])
        .send()
        .await
        .map_err(|e| unreachable("the device authorization endpoint", &e))?;
    if !resp.status().is_success() {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let why = body
            .get("error_description")
            .and_then(|v| v.as_str())
            .and_then(|s| s.lines().next())
            .unwrap_or("refused")
            .to_string();
        return Err(format!(
            "tenant {tenant} refused app registration {}: {why}",
            c.client_id
        ));
    }
    Ok(vec![format!(
        "app registration {} of tenant {tenant} answers the device and authorization endpoints",
        c.client_id
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_malformed_table_is_one_line_without_network() {
        let env = EnvSnapshot::new();
        let e = check("[sources.x]\nkind = \"identity-center\"\nstart_url = \"nope\"\nregion = \"eu-west-1\"\n", &env)
            .await
            .unwrap_err();
        assert!(e.contains("start_url"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = check("", &env).await.unwrap_err();
        assert!(e.contains("exactly one"), "{e}");
    }

    #[test]
    fn reads_the_entity_id() {
        let xml = r#"<EntityDescriptor ID="_1" entityID="https://sts.windows.net/t/">"#;
        assert_eq!(
            attribute(xml, "entityID").as_deref(),
            Some("https://sts.windows.net/t/")
        );
        assert_eq!(attribute(xml, "nothing"), None);
    }
}
