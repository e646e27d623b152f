//! The Identity Center session ends behind the daemon's back (access token expired, refresh
//! token revoked by an admin): the next call needs a new browser login, and gets exactly one.

use rolecall_tests::{wait_until, World};
use std::time::Duration;

#[test]
fn revoked_refresh_token_falls_back_to_one_browser_login() {
    let w = World::new();
    w.login();
    w.credential_process("dev-admin").assert_success();
    assert_eq!(w.inst.browser_launches(), 1);

    w.sandbox.revoke_refresh_tokens();
    w.sandbox.expire_access_tokens();

    // A profile with nothing cached needs the portal, which needs a valid token: the daemon
    // cannot renew silently, so it starts a browser login; this caller has no terminal and
    // gets the hint at once (or, if the robot browser was quicker, the credentials).
    let first = w.credential_process("staging-power");
    if !first.success() {
        let line = first.assert_one_line_failure();
        assert!(line.contains("rolecall login corp"), "{line}");
    }
    assert!(
        wait_until(Duration::from_secs(20), || w
            .credential_process("staging-power")
            .success()),
        "after the new login the profile works"
    );
    assert_eq!(
        w.inst.browser_launches(),
        2,
        "exactly one new browser login after the revocation"
    );
    // And more calls do not open more.
    for _ in 0..5 {
        w.credential_process("prod-ro").assert_success();
    }
    assert_eq!(w.inst.browser_launches(), 2);
}

#[test]
fn expired_access_token_is_renewed_silently_with_the_refresh_token() {
    let w = World::new();
    w.login();
    w.sandbox.expire_access_tokens();
    w.sandbox.reset_counts();
    let run = w.credential_process("staging-power");
    run.assert_success();
    assert_eq!(
        w.inst.browser_launches(),
        1,
        "no browser for a silent renewal"
    );
    assert!(
        w.sandbox.count("ssooidc:CreateToken") >= 1,
        "the refresh_token grant was used"
    );
}
