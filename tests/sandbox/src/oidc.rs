//! IAM Identity Center OIDC (`sso-oidc`, rest-json): RegisterClient, StartDeviceAuthorization,
//! CreateToken (device code, authorization code with PKCE S256, refresh token), and the browser
//! pages `/authorize` (PKCE) and `/device` (verification URI).
//!
//! Member names, HTTP statuses and error types follow botocore's `sso-oidc/2019-06-10` model.
//! Errors carry `x-amzn-errortype` (what SDKs read) and the OAuth `error` body.

use crate::http::{self, HandlerResult, Req, Resp};
use crate::pending::Decision;
use crate::Sandbox;
use ::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const GRANT_DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const GRANT_CODE: &str = "authorization_code";
pub const GRANT_REFRESH: &str = "refresh_token";
/// The scope that lets a token call the SSO portal (and makes refresh tokens come back).
pub const SCOPE_ACCOUNT_ACCESS: &str = "sso:account:access";

/// The modelled OIDC errors: (HTTP status, `x-amzn-errortype`, OAuth `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidcError {
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    InvalidGrant,
    AccessDenied,
    InvalidClient,
    InvalidRequest,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidClientMetadata,
    InvalidRedirectUri,
    InternalServer,
}

impl OidcError {
    fn parts(self) -> (StatusCode, &'static str, &'static str) {
        use OidcError::*;
        let bad = StatusCode::BAD_REQUEST;
        match self {
            AuthorizationPending => (
                bad,
                "AuthorizationPendingException",
                "authorization_pending",
            ),
            SlowDown => (bad, "SlowDownException", "slow_down"),
            ExpiredToken => (bad, "ExpiredTokenException", "expired_token"),
            InvalidGrant => (bad, "InvalidGrantException", "invalid_grant"),
            AccessDenied => (bad, "AccessDeniedException", "access_denied"),
            InvalidClient => (
                StatusCode::UNAUTHORIZED,
                "InvalidClientException",
                "invalid_client",
            ),
            InvalidRequest => (bad, "InvalidRequestException", "invalid_request"),
            UnauthorizedClient => (bad, "UnauthorizedClientException", "unauthorized_client"),
            UnsupportedGrantType => (
                bad,
                "UnsupportedGrantTypeException",
                "unsupported_grant_type",
            ),
            InvalidScope => (bad, "InvalidScopeException", "invalid_scope"),
            InvalidClientMetadata => (
                bad,
                "InvalidClientMetadataException",
                "invalid_client_metadata",
            ),
            InvalidRedirectUri => (bad, "InvalidRedirectUriException", "invalid_redirect_uri"),
            InternalServer => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "server_error",
            ),
        }
    }

    pub fn reply(self, description: &str) -> Resp {
        let (status, etype, code) = self.parts();
        http::aws_json_error(
            status,
            etype,
            json!({"error": code, "error_description": description}),
        )
    }
}

fn fail(e: OidcError, description: &str) -> HandlerResult {
    Ok(e.reply(description))
}

/// A client registration. Debug redacts the secret.
#[derive(Clone)]
pub struct Client {
    pub client_id: String,
    secret: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub issuer_url: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("grant_types", &self.grant_types)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Client {
    /// Whether this registration may use `grant` (legacy registrations without grant types
    /// are device-flow clients).
    fn allows(&self, grant: &str) -> bool {
        if self.grant_types.is_empty() {
            return grant == GRANT_DEVICE;
        }
        self.grant_types.iter().any(|g| g == grant)
    }

    fn issues_refresh_tokens(&self) -> bool {
        !self.scopes.is_empty() && (self.grant_types.is_empty() || self.allows(GRANT_REFRESH))
    }
}

#[derive(Debug, Clone)]
struct Device {
    client_id: String,
    pending_id: String,
    expires_at: i64,
    interval: u64,
    last_poll: Option<Instant>,
}

#[derive(Debug, Clone)]
struct AuthCode {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scopes: Vec<String>,
    user: String,
    expires_at: i64,
}

/// What an access or refresh token stands for.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Grant {
    pub user: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub session_id: String,
    pub expires_at: i64,
    pub revoked: bool,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<String, Client>,
    devices: HashMap<String, Device>,
    codes: HashMap<String, AuthCode>,
    access: HashMap<String, Grant>,
    refresh: HashMap<String, Grant>,
}

/// Identity Center OIDC state (`sb.state::<oidc::State>()`).
#[derive(Default)]
pub struct State {
    inner: Mutex<Inner>,
}

/// Why a bearer token was refused by the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Unknown,
    Expired,
    Revoked,
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("oidc lock")
    }

    /// Checks a portal bearer token.
    pub fn check_access(&self, token: &str, now: i64) -> Result<Grant, TokenProblem> {
        let inner = self.lock();
        let g = inner.access.get(token).ok_or(TokenProblem::Unknown)?;
        if g.revoked {
            return Err(TokenProblem::Revoked);
        }
        if now >= g.expires_at {
            return Err(TokenProblem::Expired);
        }
        Ok(g.clone())
    }

    /// Ends the Identity Center session of an access token (portal Logout): its access and
    /// refresh tokens stop working.
    pub fn logout(&self, token: &str) -> bool {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(session) = inner.access.get(token).map(|g| g.session_id.clone()) else {
            return false;
        };
        for g in inner.access.values_mut().chain(inner.refresh.values_mut()) {
            if g.session_id == session {
                g.revoked = true;
            }
        }
        true
    }

    /// Makes matching access tokens expired now; returns how many.
    pub fn expire_access(
        &self,
        user: Option<&str>,
        client: Option<&str>,
        token: Option<&str>,
        now: i64,
    ) -> usize {
        let mut inner = self.lock();
        let mut n = 0;
        for (t, g) in inner.access.iter_mut() {
            if matches(g, user, client) && token.is_none_or(|x| x == t) && g.expires_at > now {
                g.expires_at = now;
                n += 1;
            }
        }
        n
    }

    /// Revokes matching refresh tokens; returns how many.
    pub fn revoke_refresh(&self, user: Option<&str>, client: Option<&str>) -> usize {
        let mut inner = self.lock();
        let mut n = 0;
        for g in inner.refresh.values_mut() {
            if matches(g, user, client) && !g.revoked {
                g.revoked = true;
                n += 1;
            }
        }
        n
    }

    /// Makes a client registration expired now.
    pub fn expire_client(&self, client_id: &str, now: i64) -> bool {
        match self.lock().clients.get_mut(client_id) {
            Some(c) => {
                c.expires_at = now;
                true
            }
            None => false,
        }
    }

    /// A summary for the admin API (no secrets, no tokens).
    pub fn summary(&self) -> Value {
        let inner = self.lock();
        let clients: Vec<Value> = inner
            .clients
            .values()
            .map(|c| {
                json!({"clientId": c.client_id, "clientName": c.name, "scopes": c.scopes,
                       "grantTypes": c.grant_types, "clientSecretExpiresAt": c.expires_at})
            })
            .collect();
        let sessions = |m: &HashMap<String, Grant>| -> Vec<Value> {
            m.values()
                .map(|g| {
                    json!({"user": g.user, "clientId": g.client_id, "sessionId": g.session_id,
                               "expiresAt": g.expires_at, "revoked": g.revoked})
                })
                .collect()
        };
        json!({"clients": clients, "accessTokens": sessions(&inner.access),
               "refreshTokens": sessions(&inner.refresh)})
    }
}

fn matches(g: &Grant, user: Option<&str>, client: Option<&str>) -> bool {
    user.is_none_or(|u| g.user.eq_ignore_ascii_case(u)) && client.is_none_or(|c| g.client_id == c)
}

pub async fn handle(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    match (req.method(), req.path()) {
        (&Method::POST, "/client/register") => register_client(sb, req).await,
        (&Method::POST, "/device_authorization") => start_device(sb, req).await,
        (&Method::POST, "/token") => create_token(sb, req).await,
        (&Method::GET, "/authorize") => authorize(sb, req).await,
        (&Method::GET, "/device") => device_page(sb, req).await,
        _ => Ok(http::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n",
        )),
    }
}

/// Reads the JSON body as an object; `Err` is the InvalidRequestException reply.
fn body_object(req: &Req) -> Result<serde_json::Map<String, Value>, Resp> {
    match req.json() {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(OidcError::InvalidRequest.reply("request body must be a JSON object")),
        Err(e) => Err(OidcError::InvalidRequest.reply(&e)),
    }
}

fn opt_str(m: &serde_json::Map<String, Value>, k: &str) -> Result<Option<String>, Resp> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(OidcError::InvalidRequest.reply(&format!("{k} must be a string"))),
    }
}

fn req_str(m: &serde_json::Map<String, Value>, k: &str) -> Result<String, Resp> {
    match opt_str(m, k)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(OidcError::InvalidRequest.reply(&format!("{k} is required"))),
    }
}

fn str_list(m: &serde_json::Map<String, Value>, k: &str) -> Result<Vec<String>, Resp> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    OidcError::InvalidRequest.reply(&format!("{k} must be a list of strings"))
                })
            })
            .collect(),
        Some(_) => Err(OidcError::InvalidRequest.reply(&format!("{k} must be a list of strings"))),
    }
}

fn known_scope(s: &str) -> bool {
    s == SCOPE_ACCOUNT_ACCESS
        || s == "openid"
        || s.starts_with("sso:")
        || s.starts_with("sso-portal:")
        || s.starts_with("codewhisperer:")
}

/// Loopback `http` redirect URIs (any host else is refused), or `https` ones.
fn valid_redirect_uri(s: &str) -> bool {
    match url::Url::parse(s) {
        Ok(u) if u.scheme() == "https" => u.host().is_some(),
        Ok(u) if u.scheme() == "http" => is_loopback_host(&u),
        _ => false,
    }
}

fn is_loopback_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Whether `requested` matches a registered redirect URI: exactly, or — for a registered
/// loopback URI without a port — the same scheme, host and path on any port (as AWS and
/// RFC 8252 section 7.3 allow for native apps).
pub fn redirect_matches(registered: &[String], requested: &str) -> bool {
    let Ok(req) = url::Url::parse(requested) else {
        return false;
    };
    registered.iter().any(|r| {
        if r == requested {
            return true;
        }
        let Ok(reg) = url::Url::parse(r) else {
            return false;
        };
        reg.scheme() == "http"
            && req.scheme() == "http"
            && is_loopback_host(&reg)
            && reg.port().is_none()
            && reg.host() == req.host()
            && reg.path() == req.path()
            && req.query().is_none()
    })
}

async fn register_client(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("ssooidc:RegisterClient").await?;
    let m = match body_object(req) {
        Ok(m) => m,
        Err(r) => return Ok(r),
    };
    let parsed = (|| -> Result<_, Resp> {
        Ok((
            req_str(&m, "clientName")?,
            req_str(&m, "clientType")?,
            str_list(&m, "scopes")?,
            str_list(&m, "grantTypes")?,
            str_list(&m, "redirectUris")?,
            opt_str(&m, "issuerUrl")?,
        ))
    })();
    let (name, ctype, scopes, grant_types, redirect_uris, issuer_url) = match parsed {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    if ctype != "public" {
        return fail(
            OidcError::InvalidClientMetadata,
            "clientType must be 'public'",
        );
    }
    if let Some(bad) = scopes.iter().find(|s| !known_scope(s)) {
        return fail(OidcError::InvalidScope, &format!("unknown scope '{bad}'"));
    }
    if let Some(bad) = grant_types
        .iter()
        .find(|g| ![GRANT_DEVICE, GRANT_CODE, GRANT_REFRESH].contains(&g.as_str()))
    {
        return fail(
            OidcError::UnsupportedGrantType,
            &format!("unsupported grant type '{bad}'"),
        );
    }
    if let Some(bad) = redirect_uris.iter().find(|u| !valid_redirect_uri(u)) {
        return fail(
            OidcError::InvalidRedirectUri,
            &format!("invalid redirect URI '{bad}'"),
        );
    }
    if grant_types.iter().any(|g| g == GRANT_CODE) && redirect_uris.is_empty() {
        return fail(
            OidcError::InvalidRedirectUri,
            "redirectUris are required for the authorization_code grant",
        );
    }
    if let Some(u) = &issuer_url {
        if url::Url::parse(u).is_err() {
            return fail(OidcError::InvalidRequest, "issuerUrl is not a URL");
        }
    }
    let now = sb.clock.now_unix();
    let lifetime = sb.lifetimes().client_registration_secs as i64;
    let client = Client {
        client_id: http::random_token(16),
        secret: format!("eyJraWQiOiJzYW5kYm94In0.{}", http::random_token(180)),
        name,
        scopes,
        grant_types,
        redirect_uris,
        issuer_url,
        issued_at: now,
        expires_at: now + lifetime,
    };
    let reply = json!({
        "clientId": client.client_id,
        "clientSecret": client.secret,
        "clientIdIssuedAt": client.issued_at,
        "clientSecretExpiresAt": client.expires_at,
        "authorizationEndpoint": format!("{}/authorize", sb.base_url),
        "tokenEndpoint": format!("{}/token", sb.base_url),
    });
    sb.state::<State>()
        .lock()
        .clients
        .insert(client.client_id.clone(), client);
    Ok(http::json(StatusCode::OK, &reply))
}

/// Looks up and authenticates a client (id + secret, not expired).
fn authenticate(st: &State, client_id: &str, secret: &str, now: i64) -> Result<Client, Resp> {
    let inner = st.lock();
    let Some(c) = inner.clients.get(client_id) else {
        return Err(OidcError::InvalidClient.reply("Invalid client"));
    };
    let same: bool = subtle::ConstantTimeEq::ct_eq(c.secret.as_bytes(), secret.as_bytes()).into();
    if !same {
        return Err(OidcError::InvalidClient.reply("Invalid client secret"));
    }
    if now >= c.expires_at {
        return Err(OidcError::InvalidClient.reply("Client registration has expired"));
    }
    Ok(c.clone())
}

async fn start_device(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("ssooidc:StartDeviceAuthorization").await?;
    let m = match body_object(req) {
        Ok(m) => m,
        Err(r) => return Ok(r),
    };
    let parsed = (|| -> Result<_, Resp> {
        Ok((
            req_str(&m, "clientId")?,
            req_str(&m, "clientSecret")?,
            req_str(&m, "startUrl")?,
        ))
    })();
    let (client_id, secret, start_url) = match parsed {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let now = sb.clock.now_unix();
    let st = sb.state::<State>();
    let client = match authenticate(&st, &client_id, &secret, now) {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    if !client.allows(GRANT_DEVICE) {
        return fail(
            OidcError::UnauthorizedClient,
            "client is not registered for the device code grant",
        );
    }
    if !matches!(url::Url::parse(&start_url), Ok(u) if u.scheme() == "https" || u.scheme() == "http")
    {
        return fail(OidcError::InvalidRequest, "startUrl is not a URL");
    }
    let lt = sb.lifetimes();
    let user_code = format!(
        "{}-{}",
        http::random_from(b"BCDFGHJKLMNPQRSTVWXZ", 4),
        http::random_from(b"BCDFGHJKLMNPQRSTVWXZ", 4)
    );
    let device_code = http::random_token(48);
    let pending_id = sb.pending.register(
        "ssooidc:device",
        &client_id,
        Some(user_code.clone()),
        sb.clock.now(),
    );
    st.lock().devices.insert(
        device_code.clone(),
        Device {
            client_id,
            pending_id,
            expires_at: now + lt.device_code_secs as i64,
            interval: lt.device_interval_secs,
            last_poll: None,
        },
    );
    let verification_uri = format!("{}/device", sb.base_url);
    Ok(http::json(
        StatusCode::OK,
        &json!({
            "deviceCode": device_code,
            "userCode": user_code,
            "verificationUri": verification_uri,
            "verificationUriComplete": format!("{verification_uri}?user_code={user_code}"),
            "expiresIn": lt.device_code_secs,
            "interval": lt.device_interval_secs,
        }),
    ))
}

async fn create_token(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("ssooidc:CreateToken").await?;
    let m = match body_object(req) {
        Ok(m) => m,
        Err(r) => return Ok(r),
    };
    let parsed = (|| -> Result<_, Resp> {
        Ok((
            req_str(&m, "clientId")?,
            req_str(&m, "clientSecret")?,
            req_str(&m, "grantType")?,
            str_list(&m, "scope")?,
        ))
    })();
    let (client_id, secret, grant, scope) = match parsed {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let now = sb.clock.now_unix();
    let st = sb.state::<State>();
    let client = match authenticate(&st, &client_id, &secret, now) {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    if ![GRANT_DEVICE, GRANT_CODE, GRANT_REFRESH].contains(&grant.as_str()) {
        return fail(
            OidcError::UnsupportedGrantType,
            &format!("unsupported grant type '{grant}'"),
        );
    }
    if !client.allows(&grant) {
        return fail(
            OidcError::UnauthorizedClient,
            &format!("client is not registered for '{grant}'"),
        );
    }
    if let Some(bad) = scope.iter().find(|s| !client.scopes.contains(s)) {
        return fail(
            OidcError::InvalidScope,
            &format!("scope '{bad}' was not registered"),
        );
    }
    let lt = sb.lifetimes();
    let issued = match grant.as_str() {
        GRANT_DEVICE => {
            let code = match req_str(&m, "deviceCode") {
                Ok(c) => c,
                Err(r) => return Ok(r),
            };
            redeem_device(sb, &st, &client, &code, now)
        }
        GRANT_CODE => {
            let fields = (|| -> Result<_, Resp> {
                Ok((
                    req_str(&m, "code")?,
                    req_str(&m, "codeVerifier")?,
                    req_str(&m, "redirectUri")?,
                ))
            })();
            match fields {
                Ok((code, verifier, redirect)) => {
                    redeem_code(&st, &client, &code, &verifier, &redirect, now)
                }
                Err(r) => return Ok(r),
            }
        }
        _ => {
            let rt = match req_str(&m, "refreshToken") {
                Ok(c) => c,
                Err(r) => return Ok(r),
            };
            redeem_refresh(&st, &client, &rt, now)
        }
    };
    let (user, scopes, session) = match issued {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let scopes = if scope.is_empty() { scopes } else { scope };
    let mut inner = st.lock();
    // A new login opens a session; a refresh stays within its session's end.
    let (session_id, session_end) = match session {
        Some(s) => s,
        None => (
            uuid::Uuid::new_v4().to_string(),
            now + lt.refresh_token_secs as i64,
        ),
    };
    let access_token = format!("aoa{}", http::random_token(120));
    let expires_at = (now + lt.access_token_secs as i64).min(session_end.max(now + 1));
    inner.access.insert(
        access_token.clone(),
        Grant {
            user: user.clone(),
            client_id: client.client_id.clone(),
            scopes: scopes.clone(),
            session_id: session_id.clone(),
            expires_at,
            revoked: false,
        },
    );
    let mut reply = json!({
        "accessToken": access_token,
        "tokenType": "Bearer",
        "expiresIn": expires_at - now,
    });
    if client.issues_refresh_tokens() {
        let refresh_token = format!("aor{}", http::random_token(200));
        inner.refresh.insert(
            refresh_token.clone(),
            Grant {
                user,
                client_id: client.client_id.clone(),
                scopes,
                session_id,
                expires_at: session_end,
                revoked: false,
            },
        );
        reply["refreshToken"] = Value::String(refresh_token);
    }
    Ok(http::json(StatusCode::OK, &reply))
}

type Redeemed = Result<(String, Vec<String>, Option<(String, i64)>), Resp>;

fn redeem_device(sb: &Sandbox, st: &State, client: &Client, code: &str, now: i64) -> Redeemed {
    let mut inner = st.lock();
    let Some(dev) = inner.devices.get_mut(code) else {
        return Err(OidcError::InvalidGrant.reply("Invalid device code provided"));
    };
    if dev.client_id != client.client_id {
        return Err(OidcError::InvalidGrant.reply("Device code was issued to another client"));
    }
    if now >= dev.expires_at {
        let pid = dev.pending_id.clone();
        inner.devices.remove(code);
        sb.pending.remove(&pid);
        return Err(OidcError::ExpiredToken.reply("Device code has expired"));
    }
    let polled_at = Instant::now();
    let too_fast = dev.interval > 0
        && dev.last_poll.is_some_and(|t| {
            polled_at.duration_since(t) + Duration::from_millis(100)
                < Duration::from_secs(dev.interval)
        });
    dev.last_poll = Some(polled_at);
    match sb.pending.decision(&dev.pending_id) {
        Some(Decision::Approved { user }) => {
            let pid = dev.pending_id.clone();
            inner.devices.remove(code);
            sb.pending.remove(&pid);
            Ok((user, client.scopes.clone(), None))
        }
        Some(Decision::Denied) => {
            let pid = dev.pending_id.clone();
            inner.devices.remove(code);
            sb.pending.remove(&pid);
            Err(OidcError::AccessDenied.reply("The user denied the authorization request"))
        }
        _ if too_fast => Err(OidcError::SlowDown.reply("Client is polling too fast")),
        _ => Err(OidcError::AuthorizationPending.reply("Authorization is pending")),
    }
}

/// PKCE S256: base64url(SHA-256(verifier)) without padding.
pub fn s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn redeem_code(
    st: &State,
    client: &Client,
    code: &str,
    verifier: &str,
    redirect: &str,
    now: i64,
) -> Redeemed {
    let mut inner = st.lock();
    // A code is single-use: it goes whatever the outcome.
    let Some(ac) = inner.codes.remove(code) else {
        return Err(OidcError::InvalidGrant.reply("Invalid authorization code"));
    };
    if ac.client_id != client.client_id {
        return Err(
            OidcError::InvalidGrant.reply("Authorization code was issued to another client")
        );
    }
    if now >= ac.expires_at {
        return Err(OidcError::InvalidGrant.reply("Authorization code has expired"));
    }
    if ac.redirect_uri != redirect {
        return Err(
            OidcError::InvalidGrant.reply("redirectUri does not match the authorization request")
        );
    }
    if !(43..=128).contains(&verifier.len()) {
        return Err(OidcError::InvalidRequest.reply("codeVerifier must be 43 to 128 characters"));
    }
    let ok: bool =
        subtle::ConstantTimeEq::ct_eq(s256(verifier).as_bytes(), ac.challenge.as_bytes()).into();
    if !ok {
        return Err(OidcError::InvalidGrant.reply("codeVerifier does not match the code challenge"));
    }
    Ok((ac.user, ac.scopes, None))
}

fn redeem_refresh(st: &State, client: &Client, token: &str, now: i64) -> Redeemed {
    let inner = st.lock();
    let Some(g) = inner.refresh.get(token) else {
        return Err(OidcError::InvalidGrant.reply("Invalid refresh token provided"));
    };
    if g.client_id != client.client_id {
        return Err(OidcError::InvalidGrant.reply("Refresh token was issued to another client"));
    }
    if g.revoked {
        return Err(OidcError::InvalidGrant.reply("Refresh token has been revoked"));
    }
    if now >= g.expires_at {
        return Err(OidcError::ExpiredToken.reply("Refresh token has expired"));
    }
    Ok((
        g.user.clone(),
        g.scopes.clone(),
        Some((g.session_id.clone(), g.expires_at)),
    ))
}

fn page(status: StatusCode, title: &str, msg: &str) -> Resp {
    http::html(
        status,
        format!(
            "<!doctype html><html><head><title>{t}</title></head><body><h1>{t}</h1><p>{m}</p></body></html>\n",
            t = http::escape_xml(title),
            m = http::escape_xml(msg)
        ),
    )
}

/// The browser step of the PKCE flow. It holds the request until the login is decided
/// (auto-approve decides at once), then redirects to the client's loopback callback.
async fn authorize(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("ssooidc:Authorize").await?;
    let q = req.query();
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let client_id = get("client_id");
    let redirect_uri = get("redirect_uri");
    let now = sb.clock.now_unix();
    let st = sb.state::<State>();
    let client = st.lock().clients.get(client_id).cloned();
    let Some(client) = client else {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "Unknown client_id.",
        ));
    };
    if now >= client.expires_at {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The client registration has expired.",
        ));
    }
    // Never redirect to an unregistered URI (RFC 6749 section 4.1.2.1): show an error page instead.
    if redirect_uri.is_empty() || !redirect_matches(&client.redirect_uris, redirect_uri) {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "redirect_uri does not match a registered redirect URI.",
        ));
    }
    let state = q.get("state").cloned();
    let back = |params: &[(&str, &str)]| -> Resp {
        let mut u = url::Url::parse(redirect_uri).expect("checked above");
        {
            let mut qp = u.query_pairs_mut();
            for (k, v) in params {
                qp.append_pair(k, v);
            }
            if let Some(s) = &state {
                qp.append_pair("state", s);
            }
        }
        http::redirect(u.as_str())
    };
    if get("response_type") != "code" {
        return Ok(back(&[("error", "unsupported_response_type")]));
    }
    if !client.allows(GRANT_CODE) {
        return Ok(back(&[("error", "unauthorized_client")]));
    }
    let challenge = get("code_challenge");
    if get("code_challenge_method") != "S256" || challenge.len() != 43 {
        return Ok(back(&[
            ("error", "invalid_request"),
            (
                "error_description",
                "code_challenge with code_challenge_method=S256 is required",
            ),
        ]));
    }
    let scopes: Vec<String> = get("scopes")
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if scopes.iter().any(|s| !client.scopes.contains(s)) {
        return Ok(back(&[("error", "invalid_scope")]));
    }
    let pid = sb
        .pending
        .register("ssooidc:authorize", &client.client_id, None, sb.clock.now());
    sb.pending.mark_visited(&pid);
    if sb.auto_approve() {
        let user = sb.dir().default_user().upn.clone();
        sb.pending.decide_id(&pid, Decision::Approved { user });
    }
    let wait = Duration::from_secs(sb.lifetimes().authorize_request_secs);
    let decision = sb.pending.wait_decided(&pid, wait).await;
    sb.pending.remove(&pid);
    match decision {
        Some(Decision::Approved { user }) => {
            let code = http::random_token(32);
            st.lock().codes.insert(
                code.clone(),
                AuthCode {
                    client_id: client.client_id.clone(),
                    redirect_uri: redirect_uri.to_string(),
                    challenge: challenge.to_string(),
                    scopes: if scopes.is_empty() {
                        client.scopes.clone()
                    } else {
                        scopes
                    },
                    user,
                    expires_at: sb.clock.now_unix() + sb.lifetimes().auth_code_secs as i64,
                },
            );
            Ok(back(&[("code", &code)]))
        }
        Some(Decision::Denied) => Ok(back(&[
            ("error", "access_denied"),
            ("error_description", "The user denied the request"),
        ])),
        _ => Ok(page(
            StatusCode::REQUEST_TIMEOUT,
            "Sign-in timed out",
            "Nobody approved this sign-in request in time.",
        )),
    }
}

/// The verification URI. Visiting it with a user code marks the device login as visited and,
/// with auto-approve, approves it; otherwise it stays pending for the admin API.
async fn device_page(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("ssooidc:DevicePage").await?;
    let q = req.query();
    let Some(code) = q.get("user_code").filter(|c| !c.is_empty()) else {
        return Ok(page(
            StatusCode::OK,
            "Authorize request",
            "Enter the code shown by your application (add ?user_code=...).",
        ));
    };
    let Some(p) = sb
        .pending
        .find_by_user_code(code)
        .filter(|p| p.kind == "ssooidc:device")
    else {
        return Ok(page(
            StatusCode::NOT_FOUND,
            "Invalid code",
            "This code is not valid or has expired.",
        ));
    };
    sb.pending.mark_visited(&p.id);
    let decided = match p.decision {
        Decision::Pending if sb.auto_approve() => {
            let user = sb.dir().default_user().upn.clone();
            sb.pending.decide_id(&p.id, Decision::Approved { user });
            Some(true)
        }
        Decision::Pending => None,
        Decision::Approved { .. } => Some(true),
        Decision::Denied => Some(false),
    };
    Ok(match decided {
        Some(true) => page(
            StatusCode::OK,
            "Request approved",
            "You can close this window.",
        ),
        Some(false) => page(StatusCode::OK, "Request denied", "The request was denied."),
        None => page(
            StatusCode::OK,
            "Waiting for approval",
            "This request is waiting for approval.",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_rfc7636_vector() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn loopback_redirect_any_port() {
        let reg = vec!["http://127.0.0.1/oauth/callback".to_string()];
        assert!(redirect_matches(
            &reg,
            "http://127.0.0.1:5123/oauth/callback"
        ));
        assert!(redirect_matches(&reg, "http://127.0.0.1/oauth/callback"));
        assert!(!redirect_matches(&reg, "http://127.0.0.1:5123/other"));
        assert!(!redirect_matches(
            &reg,
            "http://evil.example:5123/oauth/callback"
        ));
        assert!(!redirect_matches(
            &reg,
            "http://localhost:5123/oauth/callback"
        ));
        assert!(!redirect_matches(
            &reg,
            "https://127.0.0.1:5123/oauth/callback"
        ));
        let fixed = vec!["http://127.0.0.1:8080/cb".to_string()];
        assert!(!redirect_matches(&fixed, "http://127.0.0.1:8081/cb"));
    }

    #[test]
    fn redirect_registration_rules() {
        assert!(valid_redirect_uri("http://127.0.0.1/oauth/callback"));
        assert!(valid_redirect_uri("https://app.example/cb"));
        assert!(!valid_redirect_uri("http://app.example/cb"));
        assert!(!valid_redirect_uri("not a url"));
    }
}
