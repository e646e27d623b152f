//! Start URLs on a custom domain (`https://sso.example.com/start` → the directory's
//! `https://d-xxxxxxxxxx.awsapps.com/start`): Identity Center registers clients and device
//! authorizations against the canonical URL, which the custom domain names by one redirect.

use std::time::Duration;

/// Whether `start_url` is already a canonical `*.awsapps.com/start` URL.
pub fn is_canonical(start_url: &str) -> bool {
    let Ok(u) = url::Url::parse(start_url) else {
        return false;
    };
    let host_ok = u
        .host_str()
        .is_some_and(|h| h.ends_with(".awsapps.com") || h.ends_with(".awsapps.cn"));
    host_ok && u.path().trim_end_matches('/').ends_with("/start")
}

/// Follows the one redirect of a custom-domain start URL (a plain GET, not followed further).
/// A 2xx answer means the URL is its own canonical form. Errors are one line for the user.
pub async fn resolve(start_url: &str) -> Result<String, String> {
    if is_canonical(start_url) {
        return Ok(start_url.to_string());
    }
    // The SDK clients do not use proxy variables either; one behaviour for every call.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let resp = client
        .get(start_url)
        .send()
        .await
        .map_err(|e| format!("cannot reach start URL {start_url}: {}", short(&e)))?;
    let status = resp.status();
    if status.is_redirection() {
        let loc = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("start URL {start_url} redirects without a Location"))?;
        let base = url::Url::parse(start_url).map_err(|e| e.to_string())?;
        let next = base
            .join(loc)
            .map_err(|_| format!("start URL {start_url} redirects to an unusable Location"))?;
        if next.scheme() != "https" && next.scheme() != "http" {
            return Err(format!("start URL {start_url} redirects to a non-HTTP URL"));
        }
        // Drop any query (sign-in hints): the start URL is the bare portal address.
        let mut next = next;
        next.set_query(None);
        next.set_fragment(None);
        return Ok(next.to_string().trim_end_matches('/').to_string());
    }
    if status.is_success() {
        return Ok(start_url.to_string());
    }
    Err(format!(
        "start URL {start_url} answered HTTP {}",
        status.as_u16()
    ))
}

fn short(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_urls_are_not_fetched() {
        assert!(is_canonical("https://d-1234567890.awsapps.com/start"));
        assert!(is_canonical("https://d-1234567890.awsapps.com/start/"));
        assert!(is_canonical("https://d-1234567890.awsapps.com/start#/"));
        assert!(!is_canonical("https://sso.example.com/start"));
        assert!(!is_canonical("https://awsapps.com.evil.example/start"));
        assert!(!is_canonical("not a url"));
    }
}
