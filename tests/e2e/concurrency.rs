//! Bursts of concurrent `credential-process` calls, as a build tool or a test suite fanning out
//! AWS clients produces them: one daemon, one browser, one upstream call per profile.

use rolecall_tests::{bin_path, run_concurrently, wait_until, BrowserMode, World, WorldOptions};
use std::time::Duration;

const BURST: usize = 200;

#[test]
fn burst_with_no_daemon_and_no_login_starts_one_daemon_and_one_browser() {
    // The browser only records its launch: the user finishes the sign-in after the burst.
    let w = World::with(WorldOptions {
        browser: BrowserMode::Hold,
        ..Default::default()
    });
    assert!(w.inst.daemon_pids().is_empty());
    let runs = run_concurrently(
        (0..BURST)
            .map(|_| {
                w.inst
                    .rolecall(["credential-process", "dev-admin"])
                    .timeout(Duration::from_secs(60))
            })
            .collect(),
    );
    let slowest = runs.iter().map(|r| r.elapsed).max().unwrap();
    eprintln!("{BURST} concurrent calls, slowest {slowest:?}");
    for r in &runs {
        let line = r.assert_one_line_failure();
        assert!(line.contains("rolecall login corp"), "{line}");
    }
    // "Within ~2 s": a little slack for a loaded 2-core CI machine.
    assert!(
        slowest < Duration::from_secs(4),
        "a caller without a terminal must get its answer at once (slowest {slowest:?})"
    );
    assert_eq!(w.inst.daemon_pids().len(), 1, "exactly one daemon started");
    assert!(
        wait_until(Duration::from_secs(10), || w.inst.browser_launches() >= 1),
        "no browser was opened"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(w.inst.browser_launches(), 1, "exactly one browser");

    // The user completes the sign-in in "the browser".
    let url = w.inst.browser_urls().remove(0);
    w.inst
        .command(bin_path("rolecall-sandbox"))
        .args(["browse", &url])
        .timeout(Duration::from_secs(30))
        .run()
        .assert_success();
    assert!(
        wait_until(Duration::from_secs(20), || w
            .credential_process("dev-admin")
            .success()),
        "after the sign-in, calls succeed"
    );
    assert_eq!(w.sandbox.count("ssooidc:RegisterClient"), 1);
    assert_eq!(
        w.sandbox.count("ssooidc:CreateToken"),
        1,
        "one login for the whole burst"
    );
    assert_eq!(w.inst.browser_launches(), 1);
    assert_eq!(w.inst.daemon_pids().len(), 1);
}

#[test]
fn burst_signed_in_with_a_cold_cache_makes_one_upstream_call_per_profile() {
    let w = World::new();
    w.login();
    w.sandbox.reset_counts();
    let profiles = ["dev-admin", "staging-power"];
    let runs = run_concurrently(
        (0..BURST)
            .map(|i| {
                w.inst
                    .rolecall(["credential-process", profiles[i % 2]])
                    .timeout(Duration::from_secs(60))
            })
            .collect(),
    );
    let mut keys = [std::collections::BTreeSet::new(), Default::default()];
    for (i, r) in runs.iter().enumerate() {
        r.assert_success();
        let v = r.json();
        keys[i % 2].insert(v["AccessKeyId"].as_str().unwrap().to_string());
        let want = if i % 2 == 0 {
            "111111111111"
        } else {
            "222222222222"
        };
        assert_eq!(v["AccountId"], want, "profiles never cross");
    }
    assert_eq!(keys[0].len(), 1, "every caller got the same credentials");
    assert_eq!(keys[1].len(), 1);
    assert_ne!(keys[0], keys[1]);
    assert_eq!(
        w.sandbox.count("sso:GetRoleCredentials"),
        2,
        "single-flight: one GetRoleCredentials per profile"
    );
    let slowest = runs.iter().map(|r| r.elapsed).max().unwrap();
    eprintln!("{BURST} concurrent signed-in calls, slowest {slowest:?}");
}
