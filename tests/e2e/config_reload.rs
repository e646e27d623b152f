//! Config changes apply without a restart, black-box: the built daemon watches its config file;
//! `rolecall daemon reload` applies it at once; a broken edit keeps the last good config and
//! `status` shows where the file is wrong until it is fixed.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use rolecall_tests::{IcProfile, Installation, World, WorldOptions};
use std::time::{Duration, Instant};

fn one_profile() -> WorldOptions {
    WorldOptions {
        profiles: vec![IcProfile::new(
            "dev-admin",
            "111111111111",
            "DeveloperAdmin",
        )],
        ..WorldOptions::default()
    }
}

/// Replaces the config the way editors save: a new file renamed over the old one.
fn save_by_rename(inst: &Installation, text: &str) {
    let tmp = inst.config.with_extension("toml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &inst.config).unwrap();
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn config_error(w: &World) -> Option<String> {
    let run = w.inst.rolecall(["status", "--json"]).run();
    run.assert_success();
    run.json()["daemon"]["config_error"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn an_added_profile_is_served_without_a_restart() {
    let w = World::with(one_profile());
    w.login();
    w.credential_process("dev-admin").assert_success();
    let pids = w.inst.daemon_pids();
    assert_eq!(pids.len(), 1, "one daemon");
    let unknown = w.credential_process("staging-power");
    assert!(!unknown.success(), "not configured yet");

    let mut text = std::fs::read_to_string(&w.inst.config).unwrap();
    text.push_str(
        "[profiles.staging-power]\nsource = \"corp\"\naccount = \"222222222222\"\nrole = \"DeveloperPowerUser\"\n",
    );
    save_by_rename(&w.inst, &text);
    wait_for(
        "the new profile to be served",
        Duration::from_secs(15),
        || w.credential_process("staging-power").success(),
    );
    let run = w.credential_process("staging-power");
    assert_eq!(run.json()["AccountId"], "222222222222");
    assert_eq!(w.inst.daemon_pids(), pids, "no restart");
    assert_eq!(w.inst.browser_launches(), 1, "no second login");
}

#[test]
fn a_broken_edit_keeps_the_last_good_config_and_status_shows_the_line() {
    let w = World::with(one_profile());
    w.login();
    w.credential_process("dev-admin").assert_success();
    let good = std::fs::read_to_string(&w.inst.config).unwrap();

    // An account id one digit short, in a new profile: a semantic error with a place.
    let broken = format!(
        "{good}[profiles.ops]\nsource = \"corp\"\naccount = \"22222222222\"\nrole = \"Ops\"\n"
    );
    let line = broken
        .lines()
        .position(|l| l == "account = \"22222222222\"")
        .unwrap()
        + 1;
    let place = format!("{}:{line}:1: ", w.inst.config.display());
    // Written in place (truncate + write), as some editors do.
    std::fs::write(&w.inst.config, &broken).unwrap();
    wait_for(
        "the watcher to report the broken file",
        Duration::from_secs(15),
        || config_error(&w).is_some(),
    );
    let err = config_error(&w).unwrap();
    assert!(err.starts_with(&place) && err.contains("12-digit"), "{err}");
    // The text status shows it too.
    let status = w.inst.rolecall(["status"]).run();
    assert!(status.stdout.contains(&place), "{}", status.stdout);
    // The last good config still serves.
    w.credential_process("dev-admin").assert_success();

    // An explicit reload of the broken file: one line, exit 1.
    let run = w.inst.rolecall(["daemon", "reload"]).run();
    let msg = run.assert_one_line_failure();
    assert!(msg.contains(&place) && msg.contains("12-digit"), "{msg}");

    // Fixed: the error clears by itself and the new profile is there.
    save_by_rename(
        &w.inst,
        &broken.replace("\"22222222222\"", "\"222222222222\""),
    );
    wait_for(
        "the fixed file to clear the error",
        Duration::from_secs(15),
        || config_error(&w).is_none(),
    );
    let s = w.inst.rolecall(["status", "--json"]).run().json();
    let names: Vec<&str> = s["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&"ops"), "{names:?}");
    let run = w.inst.rolecall(["daemon", "reload"]).run();
    run.assert_success();
    assert!(
        run.stdout.starts_with("rolecalld reloaded ") && run.stdout.lines().count() == 1,
        "{}",
        run.stdout
    );
}

#[test]
fn reload_without_a_daemon_says_so_and_starts_none() {
    let inst = Installation::new();
    let run = inst.rolecall(["daemon", "reload"]).run();
    run.assert_code(3);
    assert_eq!(
        run.stdout,
        "rolecalld is not running; it reads the config when it starts\n"
    );
    assert!(inst.daemon_pids().is_empty(), "no daemon was started");
}
