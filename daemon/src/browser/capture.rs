//! One capture: start the browser, open the URL in a new tab with every AWS sign-in endpoint
//! paused at the Request stage, take the form body of the first POST there, answer the browser
//! locally, close the browser.

use super::cdp::{Cdp, Event};
use super::launch::{self, Display};
use super::BrowserError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;
use zeroize::Zeroizing;

/// What to capture.
#[derive(Debug, Clone)]
pub struct CaptureRequest {
    pub browser: PathBuf,
    pub profile_dir: PathBuf,
    pub display: Display,
    /// The page to open (the SP-initiated login).
    pub url: String,
    /// DevTools `Fetch` URL patterns of the endpoints to intercept.
    pub patterns: Vec<String>,
    /// How long the whole capture may take.
    pub timeout: Duration,
    /// How long the browser has to answer its first command on the pipe.
    pub pipe_timeout: Duration,
    /// The source's name (for the `--paste` hint).
    pub source: String,
}

/// The intercepted POST: the URL it went to and its form body (secret).
pub struct Captured {
    pub url: String,
    pub form: Zeroizing<String>,
}

impl std::fmt::Debug for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captured")
            .field("url", &self.url)
            .field("form", &"** redacted **")
            .finish()
    }
}

const DONE_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>rolecall: signed in</title></head>\
<body style=\"font-family:sans-serif;margin:3em\"><h1>Signed in</h1><p>rolecall has your AWS sign-in. You can close this window.</p></body></html>";

/// Runs one capture to its end; the browser is closed (or killed) on every path.
pub async fn capture(req: &CaptureRequest) -> Result<Captured, BrowserError> {
    let launched = launch::launch(&req.browser, req.profile_dir.clone(), req.display)?;
    let mut child = launched.child;
    let (cdp, mut events) = Cdp::start(launched.commands, launched.events);
    let deadline = crate::clock::monotonic() + req.timeout;
    let result = tokio::select! {
        r = drive(&cdp, &mut events, req, deadline) => r,
        // The process ending is noticed even when it left the pipe open in a child of its own.
        _ = child.wait() => Err(BrowserError::Exited),
    };
    // Close politely, then make sure.
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        cdp.call("Browser.close", json!({}), None),
    )
    .await;
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
    drop(launched._lock);
    result
}

async fn drive(
    cdp: &Cdp,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    req: &CaptureRequest,
    deadline: Instant,
) -> Result<Captured, BrowserError> {
    // A managed browser with remote debugging forbidden never answers (or closes the pipe).
    match tokio::time::timeout(
        req.pipe_timeout,
        cdp.call("Browser.getVersion", json!({}), None),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(BrowserError::Exited)) | Err(_) => {
            return Err(BrowserError::DeadPipe {
                name: req.source.clone(),
            })
        }
        Ok(Err(e)) => return Err(e),
    }
    let bounded = |f| async move {
        match tokio::time::timeout_at(deadline, f).await {
            Ok(r) => r,
            Err(_) => Err(BrowserError::Timeout(req.timeout.as_secs())),
        }
    };
    let target =
        bounded(cdp.call("Target.createTarget", json!({ "url": "about:blank" }), None)).await?;
    let target_id = str_field(&target, "targetId")?;
    let attached = bounded(cdp.call(
        "Target.attachToTarget",
        json!({ "targetId": target_id, "flatten": true }),
        None,
    ))
    .await?;
    let session = str_field(&attached, "sessionId")?;
    let patterns: Vec<Value> = req
        .patterns
        .iter()
        .map(|p| json!({ "urlPattern": p, "requestStage": "Request" }))
        .collect();
    bounded(cdp.call(
        "Fetch.enable",
        json!({ "patterns": patterns }),
        Some(&session),
    ))
    .await?;
    bounded(cdp.call("Page.navigate", json!({ "url": req.url }), Some(&session))).await?;

    loop {
        let ev = match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => return Err(BrowserError::Timeout(req.timeout.as_secs())),
            Ok(None) => return Err(BrowserError::Exited),
            Ok(Some(ev)) => ev,
        };
        match ev.method.as_str() {
            "Fetch.requestPaused" if ev.session_id.as_deref() == Some(session.as_str()) => {
                let request_id = str_field(&ev.params, "requestId")?;
                let request = &ev.params["request"];
                let url = request["url"].as_str().unwrap_or_default().to_string();
                let body = post_body(request);
                let page = match &body {
                    Some(b) if b.contains("SAMLResponse=") => DONE_PAGE,
                    _ => "<!doctype html><title>rolecall</title><p>rolecall is waiting for the sign-in to finish.</p>",
                };
                // Answered locally: nothing reaches AWS's sign-in page.
                bounded(cdp.call(
                    "Fetch.fulfillRequest",
                    json!({
                        "requestId": request_id,
                        "responseCode": 200,
                        "responseHeaders": [
                            { "name": "Content-Type", "value": "text/html; charset=utf-8" },
                            { "name": "Cache-Control", "value": "no-store" }
                        ],
                        "body": STANDARD.encode(page),
                    }),
                    Some(&session),
                ))
                .await?;
                if let Some(form) = body.filter(|b| b.contains("SAMLResponse=")) {
                    return Ok(Captured { url, form });
                }
            }
            "Target.targetDestroyed" | "Target.targetCrashed"
                if ev.params["targetId"].as_str() == Some(target_id.as_str()) =>
            {
                return Err(BrowserError::WindowClosed)
            }
            "Target.detachedFromTarget"
                if ev.params["sessionId"].as_str() == Some(session.as_str()) =>
            {
                return Err(BrowserError::WindowClosed)
            }
            _ => {}
        }
    }
}

fn str_field(v: &Value, name: &str) -> Result<String, BrowserError> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| BrowserError::Protocol(format!("no {name} in the answer")))
}

/// The request body: `postData`, else the base64 `postDataEntries` joined.
fn post_body(request: &Value) -> Option<Zeroizing<String>> {
    if let Some(s) = request.get("postData").and_then(Value::as_str) {
        return Some(Zeroizing::new(s.to_string()));
    }
    let entries = request.get("postDataEntries")?.as_array()?;
    let mut bytes = Zeroizing::new(Vec::new());
    for e in entries {
        if let Some(b) = e.get("bytes").and_then(Value::as_str) {
            bytes.extend(STANDARD.decode(b).ok()?);
        }
    }
    String::from_utf8(bytes.to_vec()).ok().map(Zeroizing::new)
}

/// The `SAMLResponse` field of a captured urlencoded form body.
pub fn saml_response_field(form: &str) -> Option<Zeroizing<String>> {
    form_urlencoded::parse(form.as_bytes())
        .find(|(k, _)| k == "SAMLResponse")
        .map(|(_, v)| Zeroizing::new(v.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_from_either_field() {
        let r = json!({ "postData": "SAMLResponse=PHg%2B&RelayState=x" });
        let b = post_body(&r).unwrap();
        assert_eq!(saml_response_field(&b).unwrap().as_str(), "PHg+");
        let r = json!({ "postDataEntries": [
            { "bytes": STANDARD.encode("SAMLResp") },
            { "bytes": STANDARD.encode("onse=QUJD") }
        ]});
        assert_eq!(
            saml_response_field(&post_body(&r).unwrap())
                .unwrap()
                .as_str(),
            "QUJD"
        );
        assert!(post_body(&json!({})).is_none());
        assert!(saml_response_field("RelayState=x").is_none());
    }
}
