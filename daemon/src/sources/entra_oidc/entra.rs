//! The Microsoft identity platform v2 endpoints rolecall calls: `/devicecode` and `/token`
//! (device code, authorization code and refresh token grants) as plain form posts, and the
//! `/authorize` URL the browser opens.
//!
//! Plain `reqwest` rather than the `oauth2` crate: Entra's answers carry what rolecall must
//! act on outside the standard fields — the `id_token` (the token STS receives), the AADSTS
//! code in `error_codes`/`error_description` (7000218 "public client flows off", 50173
//! revocation) — and the device flow's `slow_down` / `authorization_declined` handling is a
//! few lines here, where a generic client would need a custom token type and error mapping.

use serde::Deserialize;
use std::fmt;
use std::time::Duration;

pub const GRANT_DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// One request's bound (the device flow's polling waits between requests, not in them).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `{authority}/{tenant}/oauth2/v2.0` and an HTTP client for it.
#[derive(Debug, Clone)]
pub struct Entra {
    base: String,
    http: reqwest::Client,
}

/// A token endpoint answer. Tokens are secrets: the Debug impl redacts them.
#[derive(Deserialize, Default)]
pub struct TokenResponse {
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<serde_json::Value>,
    #[serde(default)]
    pub scope: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |o: &Option<String>| o.as_ref().map(|_| "** redacted **");
        f.debug_struct("TokenResponse")
            .field("access_token", &r(&self.access_token))
            .field("id_token", &r(&self.id_token))
            .field("refresh_token", &r(&self.refresh_token))
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

impl TokenResponse {
    /// `expires_in` in seconds (Entra has sent it both as a number and as a string).
    pub fn expires_in_secs(&self) -> Option<i64> {
        match self.expires_in.as_ref()? {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// The `/devicecode` answer.
#[derive(Deserialize)]
pub struct DeviceCode {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub interval: Option<u64>,
}

impl fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCode")
            .field("device_code", &"** redacted **")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .finish_non_exhaustive()
    }
}

/// A failed call: an OAuth error from Entra, or no usable answer at all.
#[derive(Debug, Clone)]
pub enum Failure {
    OAuth {
        status: u16,
        /// `invalid_grant`, `authorization_pending`, …
        error: String,
        /// The first AADSTS code, from `error_codes` or the description.
        aadsts: Option<u32>,
        /// The description's first line (Entra appends trace and correlation ids).
        description: String,
    },
    /// Connection refused or reset, timeout, unreadable body, unexpected status.
    Transport { message: String, retryable: bool },
}

impl Failure {
    pub fn error(&self) -> Option<&str> {
        match self {
            Failure::OAuth { error, .. } => Some(error),
            Failure::Transport { .. } => None,
        }
    }

    pub fn aadsts(&self) -> Option<u32> {
        match self {
            Failure::OAuth { aadsts, .. } => *aadsts,
            Failure::Transport { .. } => None,
        }
    }

    pub fn retryable(&self) -> bool {
        match self {
            Failure::OAuth { status, error, .. } => {
                *status == 429 || *status >= 500 || error == "temporarily_unavailable"
            }
            Failure::Transport { retryable, .. } => *retryable,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::OAuth {
                error,
                aadsts,
                description,
                ..
            } => {
                write!(f, "{error}")?;
                if !description.is_empty() {
                    // The description usually starts with "AADSTSnnnn:" already.
                    write!(f, ": {description}")?;
                } else if let Some(c) = aadsts {
                    write!(f, " (AADSTS{c})")?;
                }
                Ok(())
            }
            Failure::Transport { message, .. } => f.write_str(message),
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Option<Vec<u32>>,
}

/// The AADSTS number at the start of a description (`AADSTS7000218: …`).
fn aadsts_in(description: &str) -> Option<u32> {
    let rest = description.trim_start().strip_prefix("AADSTS")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The Entra client cannot be set up, or its URL built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot build an HTTP client: {0}")]
    HttpClient(reqwest::Error),
    #[error("bad authority URL: {0}")]
    BadAuthority(url::ParseError),
}

impl Entra {
    /// `authority` (e.g. `https://login.microsoftonline.com`) and the tenant (id or domain).
    pub fn new(authority: &str, tenant: &str) -> Result<Entra, SetupError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // Token endpoints never redirect; a redirect would carry the form elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rolecall/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SetupError::HttpClient)?;
        Ok(Entra {
            base: format!(
                "{}/{}/oauth2/v2.0",
                authority.trim_end_matches('/'),
                tenant.trim()
            ),
            http,
        })
    }

    pub fn authorize_endpoint(&self) -> String {
        format!("{}/authorize", self.base)
    }

    /// The browser's `/authorize` URL for the authorization-code flow with PKCE.
    pub fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        scope: &str,
        state: &str,
        challenge: &str,
    ) -> Result<String, SetupError> {
        let mut u =
            url::Url::parse(&self.authorize_endpoint()).map_err(SetupError::BadAuthority)?;
        u.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_mode", "query")
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(u.into())
    }

    pub async fn device_code(&self, client_id: &str, scope: &str) -> Result<DeviceCode, Failure> {
        self.post("devicecode", &[("client_id", client_id), ("scope", scope)])
            .await
    }

    /// One poll of the device code grant.
    pub async fn redeem_device_code(
        &self,
        client_id: &str,
        device_code: &str,
    ) -> Result<TokenResponse, Failure> {
        self.post(
            "token",
            &[
                ("grant_type", GRANT_DEVICE),
                ("client_id", client_id),
                ("device_code", device_code),
            ],
        )
        .await
    }

    pub async fn redeem_code(
        &self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        scope: &str,
    ) -> Result<TokenResponse, Failure> {
        self.post(
            "token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
                ("scope", scope),
            ],
        )
        .await
    }

    pub async fn refresh(
        &self,
        client_id: &str,
        refresh_token: &str,
        scope: &str,
    ) -> Result<TokenResponse, Failure> {
        self.post(
            "token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("refresh_token", refresh_token),
                ("scope", scope),
            ],
        )
        .await
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> Result<T, Failure> {
        let url = format!("{}/{endpoint}", self.base);
        let resp = self
            .http
            .post(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| Failure::Transport {
                // reqwest's message may name the URL, never the form body.
                message: if e.is_timeout() {
                    format!("{endpoint}: timed out")
                } else if e.is_connect() {
                    format!("{endpoint}: cannot connect to {}", self.base)
                } else {
                    format!("{endpoint}: request failed")
                },
                retryable: true,
            })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|_| Failure::Transport {
            message: format!("{endpoint}: the answer was cut off"),
            retryable: true,
        })?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body).map_err(|_| Failure::Transport {
                message: format!("{endpoint}: unreadable answer (HTTP {status})"),
                retryable: false,
            });
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => {
                let description = e
                    .error_description
                    .as_deref()
                    .and_then(|d| d.lines().next())
                    .unwrap_or("")
                    .trim()
                    .to_string();
                let aadsts = e
                    .error_codes
                    .as_ref()
                    .and_then(|c| c.first().copied())
                    .or_else(|| aadsts_in(&description));
                Err(Failure::OAuth {
                    status,
                    error: e.error,
                    aadsts,
                    description,
                })
            }
            Err(_) => Err(Failure::Transport {
                message: format!("{endpoint}: HTTP {status}"),
                retryable: status == 429 || status >= 500,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aadsts_codes_are_read_from_descriptions() {
        assert_eq!(
            aadsts_in("AADSTS7000218: The request body …"),
            Some(7_000_218)
        );
        assert_eq!(aadsts_in("nothing"), None);
    }

    #[test]
    fn authorize_url_has_pkce_and_the_scope() {
        let e = Entra::new("http://127.0.0.1:5/", "contoso.onmicrosoft.com").unwrap();
        let u = e
            .authorize_url(
                "cid",
                "http://127.0.0.1:9/oauth/callback",
                "openid offline_access",
                "st",
                "ch",
            )
            .unwrap();
        assert_eq!(
            u,
            "http://127.0.0.1:5/contoso.onmicrosoft.com/oauth2/v2.0/authorize?client_id=cid&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Foauth%2Fcallback&response_mode=query&scope=openid+offline_access&state=st&code_challenge=ch&code_challenge_method=S256"
        );
    }

    #[test]
    fn debug_redacts_tokens() {
        let t = TokenResponse {
            id_token: Some("eyJsecret".into()),
            refresh_token: Some("0.Asecret".into()),
            ..TokenResponse::default()
        };
        let d = format!("{t:?}");
        assert!(!d.contains("secret"), "{d}");
    }
}
