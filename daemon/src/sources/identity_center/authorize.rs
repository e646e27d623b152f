//! The Identity Center `/authorize` URL of the PKCE flow.

/// The OIDC endpoint does not make an `/authorize` URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad OIDC endpoint {endpoint:?}: {source}")]
pub struct BadEndpoint {
    endpoint: String,
    source: url::ParseError,
}

/// `{oidc}/authorize?response_type=code&client_id=…&redirect_uri=…&state=…&code_challenge=…
/// &code_challenge_method=S256&scopes=sso%3Aaccount%3Aaccess`, as the AWS CLI v2 sends it.
pub fn authorize_url(
    oidc_endpoint: &str,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    challenge: &str,
    scope: &str,
) -> Result<String, BadEndpoint> {
    let mut u = url::Url::parse(&format!(
        "{}/authorize",
        oidc_endpoint.trim_end_matches('/')
    ))
    .map_err(|source| BadEndpoint {
        endpoint: oidc_endpoint.to_string(),
        source,
    })?;
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("scopes", scope);
    Ok(u.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_shape() {
        let u = authorize_url(
            "http://127.0.0.1:5/",
            "cid",
            "http://127.0.0.1:9/oauth/callback",
            "st",
            "ch",
            "sso:account:access",
        )
        .unwrap();
        assert_eq!(
            u,
            "http://127.0.0.1:5/authorize?response_type=code&client_id=cid&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Foauth%2Fcallback&state=st&code_challenge=ch&code_challenge_method=S256&scopes=sso%3Aaccount%3Aaccess"
        );
    }
}
