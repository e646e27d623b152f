//! The socket API's requests as one type: the daemon's router parses every request into a
//! [`Request`] and the CLI's client builds its requests from one, so a path, a method or a
//! query parameter is written in exactly one place. Bodies are the types of [`crate::api`].

use std::fmt;

/// Longest long-poll a client may ask for (seconds); longer waits are cut to this.
pub const MAX_WAIT_SECS: u64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request of the socket API; the body each one carries is named in its doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `GET /v1/version` → [`crate::api::VersionReply`].
    Version,
    /// `GET /v1/credentials/{profile}` → [`crate::output::ProcessCredentials`].
    Credentials {
        profile: String,
        /// The caller's stdin is a terminal: it may wait for a login.
        interactive: bool,
        /// At most this many seconds for a login.
        wait: Option<u64>,
        /// The client's name in the audit log (`credential_process`, `exec`, `env`).
        via: Option<String>,
    },
    /// `POST /v1/login/{source}` with a [`crate::api::LoginRequest`] → [`crate::api::LoginState`].
    Login { source: String },
    /// `GET /v1/login/{source}?wait=S` → [`crate::api::LoginState`] once the login ends or
    /// after S seconds.
    LoginState { source: String, wait: Option<u64> },
    /// `POST /v1/logout` with a [`crate::api::LogoutRequest`] → [`crate::api::OkReply`].
    Logout,
    /// `GET /v1/status` → [`crate::api::Status`].
    Status,
    /// `POST /v1/reload` → [`crate::api::OkReply`].
    Reload,
    /// `POST /v1/shutdown` → [`crate::api::OkReply`].
    Shutdown,
    /// `POST /v1/container/tokens` with a [`crate::api::MintTokenRequest`].
    MintToken,
    /// `DELETE /v1/container/tokens` with a [`crate::api::RevokeTokenRequest`].
    RevokeTokens,
    /// `POST /v1/container/tokens/renew` with a [`crate::api::RenewTokenRequest`].
    RenewTokens,
    /// `GET /v1/whoami/{profile}` → [`crate::api::CallerIdentity`].
    Whoami { profile: String },
    /// `GET /v1/sources/{source}/roles` → [`crate::api::AvailableRoles`].
    Roles { source: String },
    /// `POST /v1/console` with a [`crate::api::ConsoleRequest`] → [`crate::api::ConsoleReply`].
    Console,
    /// `POST /v1/scoped/{profile}/credentials` with a [`crate::scope::SessionScope`] →
    /// [`crate::output::ProcessCredentials`] of the scoped session (query as for `Credentials`).
    ScopedCredentials {
        profile: String,
        interactive: bool,
        wait: Option<u64>,
        via: Option<String>,
    },
    /// `POST /v1/scoped/{profile}/token` with a [`crate::scope::ScopedTokenRequest`] →
    /// [`crate::api::MintTokenReply`].
    ScopedToken { profile: String },
    /// `POST /v1/setup/check` with a [`crate::setup::SetupCheckRequest`] →
    /// [`crate::setup::SetupCheckReply`].
    SetupCheck,
}

/// Why a method and target are not a [`Request`]; the text is the one line the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// No such endpoint.
    NotFound { path: String },
    /// The endpoint exists but not with this method.
    MethodNotAllowed { method: String, path: String },
    /// A query parameter has a value it cannot have.
    BadQuery(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotFound { path } => write!(f, "no such endpoint: {path}"),
            ParseError::MethodNotAllowed { method, path } => {
                write!(f, "{method} is not supported on {path}")
            }
            ParseError::BadQuery(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ParseError {}

impl Request {
    pub fn method(&self) -> Method {
        match self {
            Request::Version
            | Request::Credentials { .. }
            | Request::LoginState { .. }
            | Request::Status
            | Request::Whoami { .. }
            | Request::Roles { .. } => Method::Get,
            Request::Login { .. }
            | Request::Logout
            | Request::Reload
            | Request::Shutdown
            | Request::MintToken
            | Request::RenewTokens
            | Request::Console
            | Request::ScopedCredentials { .. }
            | Request::ScopedToken { .. }
            | Request::SetupCheck => Method::Post,
            Request::RevokeTokens => Method::Delete,
        }
    }

    /// The request target: the path with its names percent-encoded, and the query.
    pub fn path(&self) -> String {
        match self {
            Request::Version => "/v1/version".into(),
            Request::Credentials {
                profile,
                interactive,
                wait,
                via,
            } => format!(
                "/v1/credentials/{}{}",
                path_segment(profile),
                credentials_query(*interactive, *wait, via.as_deref())
            ),
            Request::Login { source } => format!("/v1/login/{}", path_segment(source)),
            Request::LoginState { source, wait } => {
                let mut p = format!("/v1/login/{}", path_segment(source));
                if let Some(w) = wait {
                    p.push_str(&format!("?wait={w}"));
                }
                p
            }
            Request::Logout => "/v1/logout".into(),
            Request::Status => "/v1/status".into(),
            Request::Reload => "/v1/reload".into(),
            Request::Shutdown => "/v1/shutdown".into(),
            Request::MintToken | Request::RevokeTokens => "/v1/container/tokens".into(),
            Request::RenewTokens => "/v1/container/tokens/renew".into(),
            Request::Whoami { profile } => format!("/v1/whoami/{}", path_segment(profile)),
            Request::Roles { source } => format!("/v1/sources/{}/roles", path_segment(source)),
            Request::Console => "/v1/console".into(),
            Request::ScopedCredentials {
                profile,
                interactive,
                wait,
                via,
            } => format!(
                "/v1/scoped/{}/credentials{}",
                path_segment(profile),
                credentials_query(*interactive, *wait, via.as_deref())
            ),
            Request::ScopedToken { profile } => {
                format!("/v1/scoped/{}/token", path_segment(profile))
            }
            Request::SetupCheck => "/v1/setup/check".into(),
        }
    }

    /// Parses a method and a request target (path and query) into a request.
    pub fn parse(method: &str, target: &str) -> Result<Request, ParseError> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let not_found = || ParseError::NotFound {
            path: path.to_string(),
        };
        let segs: Vec<String> = path
            .strip_prefix("/v1/")
            .ok_or_else(not_found)?
            .split('/')
            .map(percent_decode)
            .collect::<Option<_>>()
            .ok_or_else(not_found)?;
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let query = Query::parse(query);
        let name = |s: &str| s.to_string();
        // The query is read only for a GET: a wrong method is named as such first.
        let is_get = method == "GET";
        let (get, post, delete) = match segs.as_slice() {
            ["version"] => (Some(Request::Version), None, None),
            ["credentials", profile] => {
                let get = is_get.then(|| -> Result<_, ParseError> {
                    let (interactive, wait, via) = query.credentials()?;
                    Ok(Request::Credentials {
                        profile: name(profile),
                        interactive,
                        wait,
                        via,
                    })
                });
                (get.transpose()?, None, None)
            }
            ["login", source] => {
                let get = is_get.then(|| -> Result<_, ParseError> {
                    Ok(Request::LoginState {
                        source: name(source),
                        wait: query.wait()?,
                    })
                });
                let post = Request::Login {
                    source: name(source),
                };
                (get.transpose()?, Some(post), None)
            }
            ["logout"] => (None, Some(Request::Logout), None),
            ["status"] => (Some(Request::Status), None, None),
            ["reload"] => (None, Some(Request::Reload), None),
            ["shutdown"] => (None, Some(Request::Shutdown), None),
            ["container", "tokens"] => {
                (None, Some(Request::MintToken), Some(Request::RevokeTokens))
            }
            ["container", "tokens", "renew"] => (None, Some(Request::RenewTokens), None),
            ["whoami", profile] => (
                Some(Request::Whoami {
                    profile: name(profile),
                }),
                None,
                None,
            ),
            ["sources", source, "roles"] => (
                Some(Request::Roles {
                    source: name(source),
                }),
                None,
                None,
            ),
            ["console"] => (None, Some(Request::Console), None),
            ["scoped", profile, "credentials"] => {
                // This POST carries the same query as a credentials GET.
                let post = (method == "POST").then(|| -> Result<_, ParseError> {
                    let (interactive, wait, via) = query.credentials()?;
                    Ok(Request::ScopedCredentials {
                        profile: name(profile),
                        interactive,
                        wait,
                        via,
                    })
                });
                (None, post.transpose()?, None)
            }
            ["scoped", profile, "token"] => (
                None,
                Some(Request::ScopedToken {
                    profile: name(profile),
                }),
                None,
            ),
            ["setup", "check"] => (None, Some(Request::SetupCheck), None),
            _ => return Err(not_found()),
        };
        let chosen = match method {
            "GET" => get,
            "POST" => post,
            "DELETE" => delete,
            _ => None,
        };
        chosen.ok_or_else(|| ParseError::MethodNotAllowed {
            method: method.to_string(),
            path: path.to_string(),
        })
    }
}

/// The query string's parameters, decoded.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Self {
        Query(
            q.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    let dec = |s: &str| percent_decode(&s.replace('+', " ")).unwrap_or_default();
                    (dec(k), dec(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> Result<bool, ParseError> {
        match self.get(key) {
            None => Ok(false),
            Some("1" | "true" | "yes") => Ok(true),
            Some("0" | "false" | "no" | "") => Ok(false),
            Some(v) => Err(ParseError::BadQuery(format!(
                "{key} must be 1 or 0, got {v:?}"
            ))),
        }
    }

    /// The query of a credentials request: `interactive`, `wait`, `via`.
    fn credentials(&self) -> Result<(bool, Option<u64>, Option<String>), ParseError> {
        Ok((
            self.flag("interactive")?,
            self.wait()?,
            self.get("via").map(str::to_string),
        ))
    }

    fn wait(&self) -> Result<Option<u64>, ParseError> {
        match self.get("wait") {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(|s| Some(s.min(MAX_WAIT_SECS)))
                .map_err(|_| {
                    ParseError::BadQuery(format!("wait must be a number of seconds, got {v:?}"))
                }),
        }
    }
}

/// The query of a credentials request (plain or scoped), as [`Query::credentials`] reads it.
fn credentials_query(interactive: bool, wait: Option<u64>, via: Option<&str>) -> String {
    let mut q = format!("?interactive={}", u8::from(interactive));
    if let Some(w) = wait {
        q.push_str(&format!("&wait={w}"));
    }
    if let Some(v) = via {
        q.push_str(&format!("&via={}", path_segment(v)));
    }
    q
}

/// Percent-encodes one path segment (a profile or source name).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; `None` when the result is not UTF-8 or an escape is malformed.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests;
