//! The AWS sign-in federation endpoint (`signin.aws.amazon.com/federation`), as a custom identity
//! broker uses it to open the console with temporary credentials:
//!
//! - `GET /federation?Action=getSigninToken&Session=<json>[&SessionDuration=N]`: the session is
//!   `{"sessionId","sessionKey","sessionToken"}` of credentials the sandbox issued and that have
//!   not expired (sandbox clock); the answer is `{"SigninToken":"…"}`. `SessionDuration` must be
//!   900–43200 seconds, and at most 3600 for role-chained credentials (issued by `AssumeRole`
//!   from a role session), as AWS documents. Anything else is `400` with a short error, like AWS.
//! - `GET /federation?Action=login&SigninToken=…&Destination=…[&Issuer=…]`: a valid token (15
//!   minutes, as AWS's) sets a console session cookie and redirects to `/console`, the sandbox's
//!   stand-in for the console (a real redirect to the Destination would leave loopback); an
//!   unknown or expired token is an error page.
//! - `GET /console`: the page of the console session, naming the role and the destination.
//!
//! Nothing here logs a token, a session or a query string.

use crate::http::{escape_xml, html, random_token, redirect, text, HandlerResult, Req};
use crate::Sandbox;
use ::http::{header, HeaderValue, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// How long a sign-in token may be used (AWS: 15 minutes).
const TOKEN_LIFETIME_SECS: i64 = 15 * 60;
/// `SessionDuration` bounds AWS accepts, and the cap for role-chained credentials.
const MIN_SESSION: i64 = 900;
const MAX_SESSION: i64 = 43_200;
const MAX_CHAINED_SESSION: i64 = 3_600;
const COOKIE: &str = "sandbox-console";

/// What a sign-in token or a console session stands for.
#[derive(Debug, Clone)]
struct ConsoleSession {
    arn: String,
    access_key_id: String,
    /// When the token (for sign-in tokens) or the session (for cookies) ends.
    until: OffsetDateTime,
    destination: String,
}

#[derive(Debug, Default)]
struct FederationState {
    tokens: Mutex<HashMap<String, ConsoleSession>>,
    sessions: Mutex<HashMap<String, ConsoleSession>>,
}

pub async fn handle(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    if req.path() == "/console" {
        sb.enter("signin:Console").await?;
        return Ok(console_page(sb, req));
    }
    let q = req.query();
    match q.get("Action").map(String::as_str) {
        Some("getSigninToken") => {
            sb.enter("signin:GetSigninToken").await?;
            Ok(get_signin_token(sb, &q))
        }
        Some("login") => {
            sb.enter("signin:Login").await?;
            Ok(login(sb, &q))
        }
        _ => {
            sb.enter("signin:Unknown").await?;
            Ok(text(StatusCode::BAD_REQUEST, "Invalid Action parameter\n"))
        }
    }
}

fn bad(msg: &str) -> crate::http::Resp {
    text(StatusCode::BAD_REQUEST, format!("{msg}\n"))
}

fn get_signin_token(sb: &Arc<Sandbox>, q: &HashMap<String, String>) -> crate::http::Resp {
    let Some(session) = q.get("Session") else {
        return bad("Missing Session parameter");
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(session) else {
        return bad("Invalid Session parameter: malformed JSON");
    };
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default();
    let (id, key, token) = (
        field("sessionId"),
        field("sessionKey"),
        field("sessionToken"),
    );
    let now = sb.clock.now();
    let issued = match sb.issued.get(id) {
        Some(c) if c.secret_access_key == key && c.session_token == token => c,
        _ => return bad("Invalid credentials parameter"),
    };
    if issued.expiration <= now {
        return bad("Invalid credentials parameter: the session has expired");
    }
    if let Some(d) = q.get("SessionDuration") {
        let Ok(d) = d.parse::<i64>() else {
            return bad("Invalid SessionDuration parameter");
        };
        if !(MIN_SESSION..=MAX_SESSION).contains(&d) {
            return bad("Invalid SessionDuration parameter: must be between 900 and 43200");
        }
        // Role chaining: AssumeRole called with a role session's credentials.
        if issued.issued_by == "sts:AssumeRole" && d > MAX_CHAINED_SESSION {
            return bad("Invalid SessionDuration parameter: role chaining limits the console session to 3600 seconds");
        }
    }
    let signin_token = random_token(48);
    let st = sb.state::<FederationState>();
    st.tokens.lock().expect("tokens lock").insert(
        signin_token.clone(),
        ConsoleSession {
            arn: issued.arn.clone(),
            access_key_id: issued.access_key_id.clone(),
            until: now + time::Duration::seconds(TOKEN_LIFETIME_SECS),
            destination: String::new(),
        },
    );
    crate::http::json(
        StatusCode::OK,
        &serde_json::json!({ "SigninToken": signin_token }),
    )
}

fn error_page(status: StatusCode, msg: &str) -> crate::http::Resp {
    html(
        status,
        format!(
            "<!doctype html><html><head><title>Amazon Web Services Sign-In</title></head>\
             <body><h1>Amazon Web Services Sign-In</h1><p id=\"error\">{}</p></body></html>\n",
            escape_xml(msg)
        ),
    )
}

fn login(sb: &Arc<Sandbox>, q: &HashMap<String, String>) -> crate::http::Resp {
    let Some(destination) = q.get("Destination").filter(|d| !d.is_empty()) else {
        return error_page(StatusCode::BAD_REQUEST, "Missing Destination parameter");
    };
    let token = q.get("SigninToken").map(String::as_str).unwrap_or_default();
    let st = sb.state::<FederationState>();
    let now = sb.clock.now();
    let found = st.tokens.lock().expect("tokens lock").get(token).cloned();
    let Some(mut s) = found.filter(|s| s.until > now) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Your request included an invalid or expired sign-in token",
        );
    };
    // The console session lasts as long as the credentials it came from.
    s.until = sb
        .issued
        .get(&s.access_key_id)
        .map(|c| c.expiration)
        .unwrap_or(now);
    s.destination = destination.clone();
    let cookie = random_token(32);
    st.sessions
        .lock()
        .expect("sessions lock")
        .insert(cookie.clone(), s);
    let mut r = redirect("/console");
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Lax"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn console_page(sb: &Arc<Sandbox>, req: &Req) -> crate::http::Resp {
    let cookie = req
        .header("cookie")
        .unwrap_or_default()
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string());
    let st = sb.state::<FederationState>();
    let now = sb.clock.now();
    let session = cookie
        .and_then(|c| st.sessions.lock().expect("sessions lock").get(&c).cloned())
        .filter(|s| s.until > now);
    match session {
        Some(s) => html(
            StatusCode::OK,
            format!(
                "<!doctype html><html><head><title>AWS Management Console (sandbox)</title></head>\
                 <body><h1>AWS Management Console (sandbox)</h1>\
                 <p>Signed in as <span id=\"role\">{}</span></p>\
                 <p>Destination: <span id=\"destination\">{}</span></p></body></html>\n",
                escape_xml(&s.arn),
                escape_xml(&s.destination)
            ),
        ),
        None => error_page(
            StatusCode::UNAUTHORIZED,
            "You are not signed in to the console",
        ),
    }
}
