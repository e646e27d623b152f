//! `kind = "aws-login"` (experimental): serves the credentials of a session the AWS CLI's
//! `aws login` (CLI ≥ 2.32) keeps in its cache, to tools that do not understand
//! `login_session` profiles. rolecall never starts such a session: `aws login` does. It reads
//! the cache file, serves its 15-minute credentials while they last, and refreshes them as the
//! AWS CLI does — Sign-In's `CreateOAuth2Token` with the cached refresh token and a DPoP proof
//! signed by the cached key — writing the refreshed document back for the CLI to use too.

pub mod cache;
pub mod config;
pub mod dpop;

use self::cache::ReadError;
use self::config::AwsLoginConfig;
use super::{LoginOptions, LoginProgress, RoleCredentials, SessionState, Source, SourceError};
use crate::config::ProfileConfig;
use crate::endpoints::{self, EnvSnapshot, Service};
use rolecall_proto::timefmt;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// Cached credentials with less than this left are refreshed first (botocore's mandatory
/// refresh window: serving less would make the SDKs fail).
const REFRESH_WHEN_LEFT: i64 = 10 * 60;

pub struct AwsLogin {
    name: String,
    login_session: String,
    path: PathBuf,
    region: String,
    endpoint: Option<String>,
    /// One refresh at a time: the refresh token is used once.
    refreshing: tokio::sync::Mutex<()>,
}

impl AwsLogin {
    pub fn new(name: &str, cfg: &AwsLoginConfig, env: &EnvSnapshot) -> Result<Self, SourceError> {
        config::validate(name, cfg).map_err(|(_, m)| SourceError::Config(m))?;
        let endpoint = endpoints::resolve(Service::Signin, cfg.endpoint_url.as_deref(), env)
            .map_err(|e| SourceError::Config(format!("source '{name}': {e}")))?;
        let dir = cache::dir(cfg.cache_dir.as_deref(), env);
        Ok(AwsLogin {
            name: name.to_string(),
            login_session: cfg.login_session.clone(),
            path: cache::file(&dir, &cfg.login_session),
            region: cfg.region.clone().unwrap_or_else(|| "us-east-1".into()),
            endpoint,
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    fn load(&self) -> Result<Value, SourceError> {
        match cache::read(&self.path) {
            Ok(v) => Ok(v),
            Err(ReadError::Missing) => Err(SourceError::NeedsLogin(format!(
                "no aws login session for {} — run: aws login (rolecall reads {})",
                self.login_session,
                self.path.display()
            ))),
            Err(ReadError::Refused(m)) => Err(SourceError::Config(m)),
        }
    }

    fn token_url(&self, doc: &Value) -> String {
        let base = match &self.endpoint {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => {
                let region = doc
                    .get("signInRegion")
                    .and_then(Value::as_str)
                    .unwrap_or(&self.region);
                format!("https://{region}.signin.aws.amazon.com")
            }
        };
        format!("{base}/v1/token")
    }

    /// Refreshes through Sign-In and writes the new document back; returns it.
    async fn refresh(&self, doc: Value) -> Result<Value, SourceError> {
        let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(client_id), Some(refresh), Some(pem)) =
            (text("clientId"), text("refreshToken"), text("dpopKey"))
        else {
            return Err(SourceError::NeedsLogin(format!(
                "{} has no refresh token, client id or DPoP key — run: aws login",
                self.path.display()
            )));
        };
        let refresh = Zeroizing::new(refresh);
        let key = dpop::DpopKey::from_pem(&pem).map_err(SourceError::Config)?;
        let url = self.token_url(&doc);
        endpoints::check_transport_str(&url, "the Sign-In endpoint")
            .map_err(SourceError::Config)?;
        // Where the answer will go, made before the refresh token is spent.
        let pending = cache::Pending::create(&self.path).map_err(|e| {
            SourceError::Config(format!(
                "cannot write to {} ({e}); not refreshing the aws login session, whose refresh token would be used up (under the systemd unit: the directory must exist before the service starts)",
                self.path.parent().unwrap_or(&self.path).display()
            ))
        })?;
        let proof = key
            .proof(&url, timefmt::now_epoch())
            .map_err(SourceError::Internal)?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| SourceError::Internal(format!("cannot build an HTTP client: {e}")))?;
        let resp = http
            .post(&url)
            .header("DPoP", proof)
            .json(&json!({
                "clientId": client_id,
                "refreshToken": refresh.as_str(),
                "grantType": "refresh_token",
            }))
            .send()
            .await
            .map_err(|e| SourceError::Upstream {
                message: format!(
                    "cannot reach Sign-In to refresh the aws login session: {}",
                    if e.is_timeout() {
                        "timed out"
                    } else {
                        "connection failed"
                    }
                ),
                retryable: true,
            })?;
        let status = resp.status().as_u16();
        let kind = resp
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or(v).to_string());
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status != 200 {
            let error = body.get("error").and_then(Value::as_str).unwrap_or("");
            let message = body.get("message").and_then(Value::as_str).unwrap_or("");
            let what = format!(
                "Sign-In refused to refresh the aws login session ({}{}{})",
                kind.as_deref().unwrap_or("HTTP error"),
                if error.is_empty() {
                    String::new()
                } else {
                    format!(" {error}")
                },
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                },
            );
            return Err(match (kind.as_deref(), error) {
                (Some("AccessDeniedException"), _) => {
                    SourceError::NeedsLogin(format!("{what} — run: aws login"))
                }
                _ if status == 429 || status >= 500 => SourceError::Upstream {
                    message: what,
                    retryable: true,
                },
                _ => SourceError::Upstream {
                    message: what,
                    retryable: false,
                },
            });
        }
        let out = &body;
        let access = &out["accessToken"];
        let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(akid), Some(secret), Some(token), Some(next), Some(expires_in)) = (
            field(access, "accessKeyId"),
            field(access, "secretAccessKey"),
            field(access, "sessionToken"),
            field(out, "refreshToken"),
            out.get("expiresIn").and_then(Value::as_i64),
        ) else {
            return Err(SourceError::Upstream {
                message: "Sign-In answered without credentials or a refresh token".into(),
                retryable: true,
            });
        };
        let mut doc = doc;
        let account = doc["accessToken"]["accountId"].clone();
        doc["accessToken"] = json!({
            "accessKeyId": akid,
            "secretAccessKey": secret,
            "sessionToken": token,
            "accountId": account,
            "expiresAt": timefmt::rfc3339(timefmt::now_epoch() + expires_in),
        });
        doc["refreshToken"] = json!(next);
        // The refresh token was used: the new one must reach the file, or the session is lost
        // for the AWS CLI too.
        pending.commit(&doc).map_err(|e| {
            SourceError::Internal(format!("cannot write {}: {e}", self.path.display()))
        })?;
        tracing::info!(source = %self.name, "refreshed the aws login session");
        Ok(doc)
    }

    fn credentials_of(&self, doc: &Value) -> Option<RoleCredentials> {
        let a = doc.get("accessToken")?;
        let s = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
        Some(RoleCredentials {
            access_key_id: s("accessKeyId")?,
            secret_access_key: Zeroizing::new(s("secretAccessKey")?),
            session_token: Zeroizing::new(s("sessionToken")?),
            expiration: timefmt::parse_rfc3339(&s("expiresAt")?)?,
            account_id: s("accountId").unwrap_or_else(|| {
                self.login_session
                    .split(':')
                    .nth(4)
                    .unwrap_or_default()
                    .to_string()
            }),
            role_arn: self.login_session.clone(),
        })
    }
}

fn expires_at(doc: &Value) -> Option<i64> {
    doc.get("accessToken")?
        .get("expiresAt")?
        .as_str()
        .and_then(timefmt::parse_rfc3339)
}

#[async_trait::async_trait]
impl Source for AwsLogin {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "aws-login"
    }

    async fn session_state(&self) -> SessionState {
        match cache::read(&self.path) {
            Ok(doc) if doc.get("refreshToken").is_some() => SessionState::SignedIn {
                expires: expires_at(&doc),
            },
            _ => SessionState::NeedsLogin,
        }
    }

    async fn login(&self, _: LoginOptions, _: &LoginProgress) -> Result<(), SourceError> {
        // The session belongs to the AWS CLI; once it exists rolecall uses it.
        match self.load() {
            Ok(_) => Ok(()),
            Err(SourceError::NeedsLogin(m)) => Err(SourceError::LoginCancelled(m)),
            Err(e) => Err(e),
        }
    }

    async fn logout(&self) -> Result<(), SourceError> {
        // The cache is the AWS CLI's (`aws logout` ends it); rolecall keeps nothing of its own.
        Ok(())
    }

    async fn credentials(&self, profile: &ProfileConfig) -> Result<RoleCredentials, SourceError> {
        let _ = profile;
        let _one = self.refreshing.lock().await;
        // Read again under the lock: the AWS CLI (or a previous call) may have refreshed.
        let doc = self.load()?;
        let left = expires_at(&doc).map_or(0, |e| e - timefmt::now_epoch());
        let doc = if left > REFRESH_WHEN_LEFT {
            doc
        } else {
            self.refresh(doc).await?
        };
        self.credentials_of(&doc).ok_or_else(|| {
            SourceError::NeedsLogin(format!(
                "{} has no usable credentials — run: aws login",
                self.path.display()
            ))
        })
    }

    async fn renew_session(&self) -> Result<(), SourceError> {
        Ok(())
    }
}
