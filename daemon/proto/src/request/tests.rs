//! The request contract: every request round-trips through its method and path.

use super::*;

fn every_request() -> Vec<Request> {
    vec![
        Request::Version,
        Request::Credentials {
            profile: "dev admin/x".into(),
            interactive: true,
            wait: Some(30),
            via: Some("credential_process".into()),
        },
        Request::Credentials {
            profile: "dev".into(),
            interactive: false,
            wait: None,
            via: None,
        },
        Request::Login {
            source: "corp".into(),
        },
        Request::LoginState {
            source: "corp".into(),
            wait: Some(0),
        },
        Request::Logout,
        Request::Status,
        Request::Reload,
        Request::Shutdown,
        Request::MintToken,
        Request::RevokeTokens,
        Request::RenewTokens,
        Request::Whoami {
            profile: "dev".into(),
        },
        Request::Roles {
            source: "c?rp".into(),
        },
        Request::Console,
        Request::ScopedCredentials {
            profile: "dev/ops".into(),
            interactive: true,
            wait: Some(30),
            via: Some("exec".into()),
        },
        Request::ScopedToken {
            profile: "dev".into(),
        },
        Request::SetupCheck,
    ]
}

#[test]
fn every_request_round_trips_through_its_method_and_path() {
    for r in every_request() {
        let parsed = Request::parse(r.method().as_str(), &r.path());
        assert_eq!(parsed.as_ref(), Ok(&r), "{} {}", r.method(), r.path());
    }
}

#[test]
fn the_wire_form_is_the_documented_one() {
    let r = Request::Credentials {
        profile: "dev admin".into(),
        interactive: false,
        wait: None,
        via: Some("credential_process".into()),
    };
    assert_eq!(
        r.path(),
        "/v1/credentials/dev%20admin?interactive=0&via=credential_process"
    );
    assert_eq!(path_segment("a b/c?d"), "a%20b%2Fc%3Fd");
}

#[test]
fn unknown_paths_wrong_methods_and_bad_queries_are_refused() {
    assert_eq!(
        Request::parse("GET", "/v1/nope").unwrap_err().to_string(),
        "no such endpoint: /v1/nope"
    );
    assert_eq!(
        Request::parse("GET", "/v2/status").unwrap_err().to_string(),
        "no such endpoint: /v2/status"
    );
    assert_eq!(
        Request::parse("DELETE", "/v1/status?x=1")
            .unwrap_err()
            .to_string(),
        "DELETE is not supported on /v1/status"
    );
    assert_eq!(
        Request::parse("GET", "/v1/credentials/dev?interactive=maybe")
            .unwrap_err()
            .to_string(),
        "interactive must be 1 or 0, got \"maybe\""
    );
    assert!(matches!(
        Request::parse("GET", "/v1/login/corp?wait=soon"),
        Err(ParseError::BadQuery(_))
    ));
    assert!(matches!(
        Request::parse("GET", "/v1/whoami/%FF"),
        Err(ParseError::NotFound { .. })
    ));
}

#[test]
fn long_waits_are_capped() {
    let r = Request::parse("GET", "/v1/login/corp?wait=999999").unwrap();
    assert_eq!(
        r,
        Request::LoginState {
            source: "corp".into(),
            wait: Some(MAX_WAIT_SECS)
        }
    );
}
