//! The refresh scheduler against the real sandbox, through the real daemon and CLI: fault
//! schedules (throttling, 500s, dropped connections, a long outage) with short role
//! lifetimes, and `kill -9` of the daemon mid-refresh and mid-write.
//!
//! Figures are printed (`--nocapture`): upstream calls during the outage, how long until
//! recovery.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use rolecall_proto::timefmt::{now_epoch, parse_rfc3339};
use rolecall_tests::sandbox::Fault;
use rolecall_tests::{kill_pid, wait_until, World};
use serde_json::json;
use std::time::{Duration, Instant};

/// Role credentials live this long: the broker serves them while more than half is left, and
/// the scheduler refreshes a little before that.
const LIFETIME: i64 = 120;
const OP: &str = "sso:GetRoleCredentials";

/// One `credential_process` call: the credentials' expiry, or the one-line error.
fn probe(w: &World, profile: &str) -> Result<i64, String> {
    let run = w.credential_process(profile);
    if run.success() {
        let v = run.json();
        let exp = v["Expiration"]
            .as_str()
            .and_then(parse_rfc3339)
            .expect("Expiration");
        Ok(exp)
    } else {
        Err(run.assert_one_line_failure())
    }
}

fn world() -> World {
    let w = World::new();
    w.sandbox
        .lifetimes(json!({ "role_credentials_secs": LIFETIME }));
    w.inst.start_daemon();
    w.login();
    w
}

fn faults_left(w: &World) -> usize {
    w.sandbox.admin("GET", "/_sandbox/faults", None)["faults"]
        .as_array()
        .map_or(0, |a| a.len())
}

#[test]
fn fault_schedule_serves_valid_credentials_backs_off_and_recovers() {
    let w = world();
    let profiles = ["dev-admin", "prod-ro"];
    for p in profiles {
        probe(&w, p).expect("first credentials");
    }

    // 1. A burst of throttling, 500s and dropped connections, queued before the next refresh:
    //    clients never notice (the cached credentials stay valid meanwhile).
    w.sandbox.reset_counts();
    w.sandbox.fault(OP, Fault::Throttle, 3);
    w.sandbox.fault(OP, Fault::Status(500), 3);
    w.sandbox.fault(OP, Fault::Drop, 2);
    let start = Instant::now();
    let mut served = 0;
    while start.elapsed() < Duration::from_secs(90) {
        for p in profiles {
            let exp = probe(&w, p).unwrap_or_else(|e| panic!("burst: {p}: {e}"));
            assert!(exp - now_epoch() > 0, "expired credentials served");
            served += 1;
        }
        if faults_left(&w) == 0 && start.elapsed() > Duration::from_secs(5) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(faults_left(&w), 0, "the faults were met by the refreshes");
    // After the burst, refreshes succeed again: fresh credentials come without client errors.
    let before = probe(&w, "dev-admin").unwrap();
    assert!(
        wait_until(Duration::from_secs(LIFETIME as u64), || probe(
            &w,
            "dev-admin"
        )
        .is_ok_and(|e| e > before)),
        "refreshed after the burst"
    );
    println!(
        "burst (3 throttles, 3×500, 2 drops): {served} client calls all served valid credentials; \
         {} GetRoleCredentials calls",
        w.sandbox.count(OP)
    );

    // 2. A long outage (every call 503, longer than the credentials live): valid credentials
    //    are served while they exist, then a clear error, never expired ones; recovery is
    //    automatic.
    w.sandbox.reset_counts();
    w.sandbox.fault(OP, Fault::Status(503), 100_000);
    let outage = Duration::from_secs(LIFETIME as u64 + 30);
    let start = Instant::now();
    let (mut ok, mut errors) = (0, 0);
    let mut last_error = String::new();
    while start.elapsed() < outage {
        for p in profiles {
            match probe(&w, p) {
                Ok(exp) => {
                    assert!(exp - now_epoch() > 0, "expired credentials served");
                    assert!(errors == 0 || ok > 0, "ok after errors within the outage");
                    ok += 1;
                }
                Err(e) => {
                    errors += 1;
                    last_error = e;
                }
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let outage_calls = w.sandbox.count(OP);
    w.sandbox.clear_faults();
    let recovery = Instant::now();
    assert!(ok > 0, "valid credentials were served during the outage");
    assert!(errors > 0, "the outage outlived the credentials");
    assert!(
        last_error.contains("503") || last_error.to_lowercase().contains("unavailable"),
        "a clear error: {last_error}"
    );
    // Recovery without the clients asking: wait, then check the cache was refilled by the
    // scheduler (GetRoleCredentials called although no client asked).
    w.sandbox.reset_counts();
    assert!(
        wait_until(Duration::from_secs(60), || w.sandbox.count(OP) >= 1),
        "the scheduler tried again by itself"
    );
    let recovered_in = recovery.elapsed();
    for p in profiles {
        assert!(
            wait_until(Duration::from_secs(30), || probe(&w, p).is_ok()),
            "{p} recovered"
        );
    }
    println!(
        "outage of {}s ({} s credentials): {ok} valid answers, then {errors} clear errors \
         (\"{last_error}\"); {outage_calls} GetRoleCredentials calls during the outage \
         (2 clients probing every 2 s); first scheduler call after recovery within {:.1}s",
        outage.as_secs(),
        LIFETIME,
        recovered_in.as_secs_f64()
    );
    assert_eq!(w.inst.browser_launches(), 1, "no login during the faults");
}

/// Files the secret store set aside as unreadable, and stale temp files.
fn damaged_state(w: &World) -> Vec<String> {
    std::fs::read_dir(&w.inst.state_dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".corrupt") || n.contains(".tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

fn daemon_pid(w: &World) -> u32 {
    let pids = w.inst.daemon_pids();
    assert_eq!(pids.len(), 1, "one daemon: {pids:?}");
    pids[0]
}

#[test]
fn kill_9_mid_refresh_and_mid_write_loses_nothing() {
    let w = world();
    probe(&w, "dev-admin").expect("first credentials");

    // Mid-refresh: the next GetRoleCredentials hangs 8 s; kill -9 once it is in flight.
    w.sandbox.fault(OP, Fault::Latency(8_000), 1);
    assert!(
        wait_until(Duration::from_secs(LIFETIME as u64), || faults_left(&w)
            == 0),
        "the scheduler's refresh reached the upstream"
    );
    kill_pid(daemon_pid(&w), libc::SIGKILL);
    assert!(wait_until(Duration::from_secs(5), || w
        .inst
        .daemon_pids()
        .is_empty()));
    w.inst.start_daemon();
    probe(&w, "dev-admin").expect("credentials after the restart, without a login");

    // Mid-write: an expired access token makes the next fetch renew it with the refresh token
    // and write the secret store; the daemon is killed at varying moments around that.
    for (i, delay_ms) in [0u64, 5, 15, 30, 60, 120].into_iter().enumerate() {
        w.sandbox.expire_access_tokens();
        let profile = w.profiles[i % w.profiles.len()].name.clone();
        let pid = daemon_pid(&w);
        let cp = w
            .inst
            .rolecall(["credential-process", &profile])
            .timeout(Duration::from_secs(30))
            .spawn()
            .expect("spawn credential-process");
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill_pid(pid, libc::SIGKILL);
        let mut cp = cp;
        let _ = cp.wait();
        // The client in flight may have autostarted a new daemon when its daemon died (give it
        // time to answer); otherwise start one.
        if !wait_until(Duration::from_secs(3), || w.inst.daemon_answers()) {
            assert!(wait_until(Duration::from_secs(5), || w
                .inst
                .daemon_pids()
                .is_empty()));
            w.inst.start_daemon();
        }
        let got = probe(&w, &profile);
        assert!(got.is_ok(), "after kill at +{delay_ms} ms: {got:?}");
    }
    assert_eq!(
        w.inst.browser_launches(),
        1,
        "no login (no browser tab) after any restart"
    );
    assert!(damaged_state(&w).is_empty(), "{:?}", damaged_state(&w));
    println!("kill -9 mid-refresh and at 6 points around a secret-store write: no login, no store set aside");
}
