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

/// Why a start URL could not be resolved; one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum StartUrlError {
    #[error("cannot build an HTTP client: {0}")]
    HttpClient(reqwest::Error),
    #[error("cannot reach start URL {url}: {why}")]
    Unreachable { url: String, why: &'static str },
    #[error("start URL {0} redirects without a Location")]
    NoLocation(String),
    #[error("{0}")]
    BadUrl(url::ParseError),
    #[error("start URL {0} redirects to an unusable Location")]
    BadLocation(String),
    #[error("start URL {0} redirects to a non-HTTP URL")]
    NotHttp(String),
    /// The redirect would downgrade to plain http off loopback.
    #[error("{0}")]
    Insecure(String),
    #[error("start URL {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
}

/// Follows the one redirect of a custom-domain start URL (a plain GET, not followed further).
/// A 2xx answer means the URL is its own canonical form. Errors are one line for the user.
pub async fn resolve(start_url: &str) -> Result<String, StartUrlError> {
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
        .map_err(StartUrlError::HttpClient)?;
    let resp = client
        .get(start_url)
        .send()
        .await
        .map_err(|e| StartUrlError::Unreachable {
            url: start_url.to_string(),
            why: short(&e),
        })?;
    let status = resp.status();
    if status.is_redirection() {
        let loc = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| StartUrlError::NoLocation(start_url.to_string()))?;
        return parse_redirect(start_url, loc);
    }
    if status.is_success() {
        return Ok(start_url.to_string());
    }
    Err(StartUrlError::Status {
        url: start_url.to_string(),
        status: status.as_u16(),
    })
}

/// The canonical start URL a redirect of `start_url` to `location` names (relative Locations
/// resolve against `start_url`). Pure, so the fuzz targets reach it without a server.
pub fn parse_redirect(start_url: &str, location: &str) -> Result<String, StartUrlError> {
    let base = url::Url::parse(start_url).map_err(StartUrlError::BadUrl)?;
    let next = base
        .join(location)
        .map_err(|_| StartUrlError::BadLocation(start_url.to_string()))?;
    if next.scheme() != "https" && next.scheme() != "http" {
        return Err(StartUrlError::NotHttp(start_url.to_string()));
    }
    // The resolved URL keys the stored session and is opened in the browser: a redirect
    // may not downgrade it to plain http off loopback.
    crate::endpoints::check_transport(&next, &format!("the redirect of start URL {start_url} to"))
        .map_err(StartUrlError::Insecure)?;
    // Drop any query (sign-in hints): the start URL is the bare portal address.
    let mut next = next;
    next.set_query(None);
    next.set_fragment(None);
    Ok(next.to_string().trim_end_matches('/').to_string())
}

fn short(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
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

    /// A one-route loopback server answering every request with `status` and `location`.
    async fn serve(status: u16, location: Option<&'static str>) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |_req| async move {
                        let mut b = http::Response::builder().status(status);
                        if let Some(loc) = location {
                            b = b.header("location", loc);
                        }
                        Ok::<_, std::convert::Infallible>(
                            b.body(http_body_util::Full::new(bytes::Bytes::new()))
                                .unwrap(),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        format!("http://{addr}/start")
    }

    #[tokio::test]
    async fn custom_domain_follows_exactly_one_redirect() {
        let u = serve(302, Some("https://d-1234567890.awsapps.com/start/?x=1")).await;
        assert_eq!(
            resolve(&u).await.unwrap(),
            "https://d-1234567890.awsapps.com/start"
        );
        let u = serve(301, Some("/elsewhere")).await;
        assert!(resolve(&u).await.unwrap().ends_with("/elsewhere"));
        let u = serve(200, None).await;
        assert_eq!(resolve(&u).await.unwrap(), u);
        let u = serve(302, None).await;
        assert!(resolve(&u)
            .await
            .unwrap_err()
            .to_string()
            .contains("without a Location"));
        let u = serve(404, None).await;
        assert!(resolve(&u)
            .await
            .unwrap_err()
            .to_string()
            .contains("HTTP 404"));
        // A redirect to plain http off loopback is refused (the session would be keyed to it
        // and the browser sent there).
        let u = serve(302, Some("http://sso.attacker.example/start")).await;
        let e = resolve(&u).await.unwrap_err().to_string();
        assert!(e.contains("plain http"), "{e}");
        let e = resolve("http://127.0.0.1:1/start")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot reach"), "{e}");
        // Canonical URLs are never fetched (port 1 would refuse).
        assert_eq!(
            resolve("https://d-1.awsapps.com/start").await.unwrap(),
            "https://d-1.awsapps.com/start"
        );
    }
}
