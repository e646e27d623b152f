//! `rolecall-sandbox browse URL`: a robot browser for loopback pages.
//!
//! GETs the URL over plain HTTP, follows redirects (the sandbox's `/authorize` → the daemon's
//! loopback OAuth callback), and succeeds when the final page is 2xx. It refuses anything but
//! `http://` on a loopback address and never prints query strings (they carry codes).

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

const MAX_REDIRECTS: usize = 10;

pub async fn browse(start: &str) -> anyhow::Result<()> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut url = check(start)?;
    for _ in 0..=MAX_REDIRECTS {
        let uri: hyper::Uri = url.as_str().parse().context("unusable URL")?;
        let req = hyper::Request::get(uri)
            .header("user-agent", "rolecall-sandbox-browse/1")
            .header("accept", "text/html")
            .body(Empty::new())?;
        // A pending login is held by the sandbox until approved: allow for a long wait.
        let resp = tokio::time::timeout(Duration::from_secs(900), client.request(req))
            .await
            .map_err(|_| anyhow!("{} did not answer in time", shown(&url)))?
            .with_context(|| format!("cannot load {}", shown(&url)))?;
        let status = resp.status();
        if status.is_redirection() {
            let loc = resp
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| anyhow!("{} redirected without a Location", shown(&url)))?
                .to_string();
            let next = url.join(&loc).context("bad redirect Location")?;
            url = check(next.as_str())?;
            continue;
        }
        // Drain the page like a browser would.
        let _ = resp.into_body().collect().await;
        if status.is_success() {
            eprintln!(
                "rolecall-sandbox browse: {} {}",
                status.as_u16(),
                shown(&url)
            );
            return Ok(());
        }
        bail!("{} answered HTTP {}", shown(&url), status.as_u16());
    }
    bail!("more than {MAX_REDIRECTS} redirects")
}

/// Accepts only `http://` URLs on loopback hosts.
fn check(raw: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(raw).map_err(|e| anyhow!("not a URL ({e})"))?;
    if url.scheme() != "http" {
        bail!(
            "refusing {}: only http:// loopback URLs are opened",
            shown(&url)
        );
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if !loopback {
        bail!("refusing {}: only loopback hosts are opened", shown(&url));
    }
    Ok(url)
}

/// The URL without its query and fragment (codes and states are not for logs).
fn shown(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http() {
        assert!(check("http://127.0.0.1:1/x").is_ok());
        assert!(check("http://localhost:1/x").is_ok());
        assert!(check("http://[::1]:1/x").is_ok());
        assert!(check("https://127.0.0.1/x").is_err());
        assert!(check("http://example.com/x").is_err());
        assert!(check("http://10.0.0.1/x").is_err());
        assert!(check("nonsense").is_err());
    }

    #[test]
    fn shown_hides_query() {
        let u = url::Url::parse("http://127.0.0.1:5/cb?code=secret&state=s").unwrap();
        assert_eq!(shown(&u), "http://127.0.0.1:5/cb");
    }
}
