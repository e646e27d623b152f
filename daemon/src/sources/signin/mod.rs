//! The pieces of the interactive OAuth sign-ins that the identity-center and entra-oidc sources
//! share: PKCE (RFC 7636, S256) verifier/challenge pairs, the unguessable `state`, the loopback
//! redirect listener ([`callback`]), and showing/opening the sign-in URL or the device-code
//! page.

pub mod callback;

use super::{LoginProgress, SourceError};
use crate::endpoints::EnvSnapshot;
use crate::opener;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callback::CallbackServer;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A code verifier (secret until redeemed) and its S256 challenge.
pub struct Pkce {
    pub verifier: Zeroizing<String>,
    pub challenge: String,
}

fn random_b64(n: usize) -> String {
    let mut b = Zeroizing::new(vec![0u8; n]);
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(&*b)
}

impl Pkce {
    pub fn new() -> Pkce {
        // 64 random bytes: 86 characters, within RFC 7636's 43..=128.
        let verifier = Zeroizing::new(random_b64(64));
        let challenge = challenge_of(&verifier);
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// The S256 challenge of a verifier.
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh unguessable `state`.
pub fn new_state() -> String {
    random_b64(32)
}

/// The loopback listener the browser is redirected to. Bound before the browser opens, so the
/// redirect URI names a live port.
pub async fn bind_callback(source: &str, path: &str) -> Result<CallbackServer, SourceError> {
    CallbackServer::bind(path)
        .await
        .map_err(|e| SourceError::Internal(format!("{source}: cannot listen on loopback: {e}")))
}

/// Publishes the sign-in URL for `rolecall login` to show and opens the browser on it; a
/// browser that cannot open is no failure (the user opens the URL shown).
pub fn show_and_open(source: &str, url: &str, env: &EnvSnapshot, progress: &LoginProgress) {
    progress.send_modify(|st| {
        st.flow = Some("pkce".into());
        st.verification_uri = Some(url.to_string());
    });
    let opened = match opener::open_url(url, env) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(source, error = %e, "could not open a browser; the sign-in URL is shown by `rolecall login`");
            false
        }
    };
    progress.send_modify(|st| st.browser_opened = opened);
}

/// Refuses device-code pages (from the upstream's reply) that `rolecall login` would show and
/// the browser open over plain http to a remote host: the user types their code there.
pub fn check_device_pages(source: &str, pages: &[Option<&str>]) -> Result<(), SourceError> {
    for page in pages.iter().flatten() {
        crate::endpoints::check_transport_str(page, "the device-code page").map_err(|e| {
            SourceError::Upstream {
                message: format!("{source}: {e}"),
                retryable: false,
            }
        })?;
    }
    Ok(())
}

/// Opens the device-code page when a browser is there and wanted; `rolecall login` shows the
/// page and the code either way.
pub fn open_device_page(
    source: &str,
    url: Option<&str>,
    no_browser: bool,
    env: &EnvSnapshot,
    progress: &LoginProgress,
) {
    let Some(url) = url.filter(|_| !no_browser && opener::browser_available(env)) else {
        return;
    };
    let opened = opener::open_url(url, env)
        .inspect_err(
            |e| tracing::warn!(source, error = %e, "could not open a browser for the device code"),
        )
        .is_ok();
    progress.send_modify(|st| st.browser_opened = opened);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_an_independent_implementation() {
        // Expected value computed with Python's hashlib + base64.urlsafe_b64encode.
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mJ92K9q3JZ4mM-PyM4y4h3RuXOuI4gk"),
            "DzCh9NP_QONmK6LjPuhUdcYMPQ77soemhdACo7Da8C0"
        );
    }

    #[test]
    fn device_pages_over_plain_http_to_a_remote_host_are_refused() {
        check_device_pages(
            "corp",
            &[Some("https://device.sso.eu-west-1.amazonaws.com/"), None],
        )
        .unwrap();
        check_device_pages("corp", &[Some("http://127.0.0.1:4566/device")]).unwrap();
        let e = check_device_pages(
            "corp",
            &[
                Some("https://ok.example"),
                Some("http://device.attacker.example/"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("corp") && e.contains("plain http"), "{e}");
    }

    #[test]
    fn challenge_is_s256_of_a_fresh_verifier() {
        let p = Pkce::new();
        assert_eq!(p.verifier.len(), 86);
        assert_eq!(
            p.challenge,
            URL_SAFE_NO_PAD.encode(Sha256::digest(p.verifier.as_bytes()))
        );
        assert_ne!(Pkce::new().verifier, p.verifier);
        assert_ne!(new_state(), new_state());
    }
}
