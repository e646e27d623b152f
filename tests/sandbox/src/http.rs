//! Small HTTP helpers shared by every emulated service, and the handler contract.
//!
//! Every service module exposes
//! `pub async fn handle(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult`
//! (`crate::oidc`, `crate::portal`, `crate::entra`, `crate::sts`, `crate::admin`). A handler
//! first calls `sb.enter("<service>:<Operation>").await?`, which counts the call and applies an
//! injected fault: `?` then returns an `Interrupt` (a fault reply, or "drop the connection"),
//! which the server turns into a reply or a closed TCP connection.
//! Module state that is not part of the shared `Sandbox` lives in `sb.state::<T>()` (a typed
//! slot created on first use), so modules add state without touching `lib.rs`.

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;

pub type Body = Full<Bytes>;
pub type Resp = hyper::Response<Body>;

/// Why a handler stops before its normal reply.
pub enum Interrupt {
    /// Answer this instead (an injected status or throttling error).
    Reply(Resp),
    /// Close the TCP connection without any response.
    Drop,
}

/// Shows the status only: reply bodies can carry tokens and credentials.
impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Interrupt::Reply(r) => write!(f, "Interrupt::Reply({})", r.status()),
            Interrupt::Drop => f.write_str("Interrupt::Drop"),
        }
    }
}

impl From<Resp> for Interrupt {
    fn from(r: Resp) -> Self {
        Interrupt::Reply(r)
    }
}

pub type HandlerResult = Result<Resp, Interrupt>;

/// A fully read request (bodies are small and capped by the server).
pub struct Req {
    pub parts: http::request::Parts,
    pub body: Bytes,
    pub peer: SocketAddr,
}

/// Shows the method, path and body size only: query strings, headers and bodies carry client
/// secrets, codes, tokens and assertions.
impl std::fmt::Debug for Req {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Req")
            .field("method", &self.parts.method)
            .field("path", &self.parts.uri.path())
            .field("body_len", &self.body.len())
            .field("peer", &self.peer)
            .finish()
    }
}

impl Req {
    pub fn method(&self) -> &Method {
        &self.parts.method
    }

    pub fn path(&self) -> &str {
        self.parts.uri.path()
    }

    /// Path segments without empty ones: `/a/b/` → `["a","b"]`.
    pub fn segments(&self) -> Vec<&str> {
        self.path().split('/').filter(|s| !s.is_empty()).collect()
    }

    /// Query parameters (first value wins).
    pub fn query(&self) -> HashMap<String, String> {
        parse_pairs(self.parts.uri.query().unwrap_or("").as_bytes())
    }

    /// `application/x-www-form-urlencoded` body parameters (first value wins).
    pub fn form(&self) -> HashMap<String, String> {
        parse_pairs(&self.body)
    }

    /// All values of a form parameter, in order (SAML `Role` lists, STS member lists...).
    pub fn form_all(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    /// Every header as (lowercase name, value), values that are not text left out: what the
    /// SigV4 verifier canonicalises.
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.parts
            .headers
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_string(), v.to_string()))
            })
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON body; an empty body reads as `{}`.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        if self.body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(serde_json::json!({}));
        }
        serde_json::from_slice(&self.body).map_err(|e| format!("malformed JSON body: {e}"))
    }
}

pub fn parse_pairs(input: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(input).into_owned() {
        out.entry(k).or_insert(v);
    }
    out
}

fn with_body(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = hyper::Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        "x-amzn-requestid",
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("uuid is ascii"),
    );
    r
}

pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Resp {
    let body = serde_json::to_vec(value).expect("serializable reply");
    with_body(status, "application/json", body)
}

/// An AWS rest-json error: SDKs read the error code from `x-amzn-errortype`.
pub fn aws_json_error(status: StatusCode, error_type: &str, body: serde_json::Value) -> Resp {
    let mut r = json(status, &body);
    if let Ok(v) = HeaderValue::from_str(error_type) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

pub fn xml(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    with_body(status, "text/xml", body)
}

pub fn html(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    with_body(status, "text/html; charset=utf-8", body)
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    with_body(status, "text/plain; charset=utf-8", body)
}

pub fn empty(status: StatusCode) -> Resp {
    let mut r = hyper::Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// `302 Found` to `location`.
pub fn redirect(location: &str) -> Resp {
    let mut r = empty(StatusCode::FOUND);
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

pub fn not_found() -> Resp {
    text(StatusCode::NOT_FOUND, "not found\n")
}

/// Escapes text for HTML and XML content and attribute values.
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Random URL-safe token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Random string from `alphabet`.
pub fn random_from(alphabet: &[u8], len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_first_wins_and_decodes() {
        let m = parse_pairs(b"a=1&b=x%20y&a=2&c=+");
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "x y");
        assert_eq!(m["c"], " ");
    }

    #[test]
    fn req_debug_hides_secrets() {
        let (parts, ()) = hyper::Request::post("/token?code=SECRETCODE")
            .header("x-amz-sso_bearer_token", "SECRETTOKEN")
            .body(())
            .unwrap()
            .into_parts();
        let req = Req {
            parts,
            body: Bytes::from_static(b"{\"clientSecret\":\"SECRETBODY\"}"),
            peer: "127.0.0.1:1".parse().unwrap(),
        };
        let dbg = format!("{req:?}");
        assert!(dbg.contains("/token") && !dbg.contains("SECRET"), "{dbg}");
    }

    #[test]
    fn escapes() {
        assert_eq!(
            escape_xml("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn error_header_set() {
        let r = aws_json_error(
            StatusCode::BAD_REQUEST,
            "SlowDownException",
            serde_json::json!({}),
        );
        assert_eq!(r.headers()["x-amzn-errortype"], "SlowDownException");
        assert_eq!(r.status(), 400);
    }
}
