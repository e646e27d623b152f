//! Container tokens through the real CLI and daemon: `--format docker` keeps the token off
//! every command line, `--renew` extends the profile's tokens, and signing out of a source
//! revokes the tokens handed out under it.

use rolecall_tests::http::tcp_request;
use rolecall_tests::World;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;

fn dotenv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The status of `GET <full uri>` with `token`.
fn fetch(full_uri: &str, token: &str) -> u16 {
    let (base, path) = full_uri
        .strip_prefix("http://")
        .and_then(|r| r.split_once('/'))
        .unwrap();
    tcp_request(
        &format!("http://{base}"),
        "GET",
        &format!("/{path}"),
        &[("Authorization", token)],
        None,
    )
    .unwrap()
    .status
}

#[test]
fn docker_format_writes_a_private_env_file_and_no_token_in_argv() {
    let w = World::new();
    w.login();
    let run = w
        .inst
        .rolecall(["container", "dev-admin", "--format", "docker"])
        .run();
    run.assert_success();
    let line = run.stdout.trim();
    assert!(
        !line.contains("rct_"),
        "a token on the command line: {line}"
    );
    let path = line
        .strip_prefix("--env-file ")
        .unwrap_or_else(|| panic!("{line}"));
    assert!(!path.contains(' '));
    let meta = std::fs::metadata(path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let dir = std::path::Path::new(path).parent().unwrap();
    assert_eq!(
        std::fs::metadata(dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let vars = dotenv(&std::fs::read_to_string(path).unwrap());
    let token = &vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"];
    assert!(token.starts_with("rct_"));
    assert_eq!(
        fetch(&vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"], token),
        200
    );
    // A second run replaces the file (a started container has read it already).
    w.inst
        .rolecall(["container", "dev-admin", "--format", "docker"])
        .run()
        .assert_success();
    let again = dotenv(&std::fs::read_to_string(path).unwrap());
    assert_ne!(&again["AWS_CONTAINER_AUTHORIZATION_TOKEN"], token);
}

#[test]
fn renew_extends_and_logout_revokes_the_sources_tokens() {
    let w = World::new();
    w.login();
    let run = w.inst.rolecall(["container", "dev-admin"]).run();
    run.assert_success();
    let vars = dotenv(&run.stdout);
    let (uri, token) = (
        &vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        &vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"],
    );
    assert_eq!(fetch(uri, token), 200);
    let status = w.inst.rolecall(["status", "--json"]).run();
    status.assert_success();
    let tokens = status.json()["container_tokens"].clone();
    let first_end = tokens[0]["expires"].as_i64().expect("tokens have an end");
    let now = rolecall_proto::timefmt::now_epoch();
    assert!(
        (now + 12 * 3600 - 60..=now + 12 * 3600).contains(&first_end),
        "{tokens}"
    );

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let renew = w.inst.rolecall(["container", "dev-admin", "--renew"]).run();
    renew.assert_success();
    assert!(renew.stdout.is_empty());
    assert!(
        renew.stderr.contains("renewed 1 container token"),
        "{}",
        renew.stderr
    );
    let status = w.inst.rolecall(["status", "--json"]).run();
    assert!(
        status.json()["container_tokens"][0]["expires"]
            .as_i64()
            .unwrap()
            > first_end
    );
    assert_eq!(fetch(uri, token), 200);
    // --renew on a profile with no token says so.
    w.inst
        .rolecall(["container", "dev-ro", "--renew"])
        .run()
        .assert_one_line_failure();

    w.inst.rolecall(["logout", "corp"]).run().assert_success();
    assert_eq!(
        fetch(uri, token),
        401,
        "a token outlived the logout of its source"
    );
    let status = w.inst.rolecall(["status", "--json"]).run();
    assert_eq!(status.json()["container_tokens"], serde_json::json!([]));
}
