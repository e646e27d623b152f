//! Black-box tests of the real `rolecalld` binary: each test starts it on a temporary runtime
//! dir, state dir and config, and talks to it over its Unix socket with a tiny HTTP client.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod rig;
use rig::{request, skip, Daemon, GOOD_CONFIG};

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn replies_carry_version_headers_and_files_are_private() {
    let d = Daemon::start(Some(GOOD_CONFIG));
    let r = d.get("/v1/version");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-rolecall-version"),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(r.header("x-rolecall-protocol"), Some("1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["protocol"], 1);
    let pid = v["pid"].as_u64().unwrap() as u32;
    assert_eq!(pid, d.child.as_ref().unwrap().id());
    // Errors carry them too.
    let r = d.get("/v1/nothing-here");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-rolecall-protocol"), Some("1"));
    assert_eq!(mode(&d.runtime()), 0o700);
    assert_eq!(mode(&d.socket()), 0o600);
    let pidfile = std::fs::read_to_string(d.runtime().join("rolecalld.pid")).unwrap();
    assert_eq!(pidfile.trim(), pid.to_string());
    // The prompt snapshot exists from the start, private, naming this daemon.
    let snap_path = d.runtime().join("status.json");
    assert_eq!(mode(&snap_path), 0o600);
    let snap: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&snap_path).unwrap()).unwrap();
    assert_eq!(snap["pid"].as_u64(), Some(pid as u64));
    assert_eq!(snap["profiles"]["dev"]["role"], "Dev");
    let log = d.state().join("rolecalld.log");
    assert_eq!(mode(&log), 0o600);
}

#[test]
fn unknown_profile_and_bad_requests_get_one_line_errors() {
    let d = Daemon::start(Some(GOOD_CONFIG));
    let r = d.get("/v1/credentials/nope");
    assert_eq!(r.status, 404);
    let v = r.json();
    assert_eq!(v["error"]["code"], "unknown_profile");
    assert_eq!(v["error"]["message"], "unknown profile 'nope'");

    let r = d.get("/v1/login/nosuch?wait=0");
    assert_eq!(r.json()["error"]["code"], "unknown_source");

    let r = d.post("/v1/login/corp", Some("{not json"));
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("malformed request body"));

    let big = format!("{{\"saml_response\":\"{}\"}}", "A".repeat(300 * 1024));
    let r = d.post("/v1/login/corp", Some(&big));
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], "bad_request");

    let r = request(&d.socket(), "DELETE", "/v1/status", None);
    assert_eq!(r.status, 405);

    let r = d.get("/v1/credentials/dev?interactive=maybe");
    assert_eq!(r.status, 400);

    // A request head beyond the limit is refused with 431, and the daemon carries on.
    let raw = format!(
        "GET /v1/version HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(64 * 1024)
    );
    let mut s = UnixStream::connect(d.socket()).unwrap();
    let _ = s.write_all(raw.as_bytes());
    let mut buf = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.starts_with("HTTP/1.1 431"),
        "one defined answer to an oversized head, 431: {text:?}"
    );
    assert_eq!(d.get("/v1/version").status, 200);
}

#[test]
fn not_signed_in_answers_at_once_with_the_hint() {
    let d = Daemon::start(Some(GOOD_CONFIG));
    let started = Instant::now();
    let r = d.get("/v1/credentials/dev");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(r.status, 503);
    let v = r.json();
    assert_eq!(v["error"]["code"], "not_signed_in");
    assert_eq!(v["error"]["message"], "not signed in to source 'corp'");
    assert_eq!(v["error"]["hint"], "rolecall login corp");
}

#[test]
fn missing_config_is_an_empty_config() {
    let d = Daemon::start(None);
    let s = d.get("/v1/status").json();
    assert_eq!(s["daemon"]["config_missing"], true);
    assert!(s["daemon"].get("config_error").is_none());
    assert_eq!(s["profiles"].as_array().unwrap().len(), 0);
}

#[test]
fn malformed_config_at_start_is_located_and_the_daemon_still_runs() {
    let bad = "[daemon]\nsecret_store = \"file\"\nauto_login = tru\n";
    let mut d = Daemon::start(Some(bad));
    let s = d.get("/v1/status").json();
    let err = s["daemon"]["config_error"].as_str().unwrap().to_string();
    let expected_prefix = format!("{}:3:14: ", d.config().display());
    assert!(err.starts_with(&expected_prefix), "{err}");
    let r = d.get("/v1/credentials/dev");
    assert_eq!(r.json()["error"]["code"], "config_invalid");
    assert_eq!(d.post("/v1/shutdown", None).status, 200);
    let out = d.wait_exit(Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&expected_prefix), "{stderr}");
}

#[test]
fn hostile_names_and_a_config_others_can_write_are_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("ran");
    let bad = format!(
        "[daemon]\nsecret_store = \"file\"\n\n[sources.\"$(touch {m})\"]\nkind = \"identity-center\"\nstart_url = \"https://d-1.awsapps.com/start\"\nregion = \"eu-west-1\"\n",
        m = marker.display()
    );
    let mut d = Daemon::start(Some(&bad));
    let err = d.get("/v1/status").json()["daemon"]["config_error"]
        .as_str()
        .unwrap()
        .to_string();
    let prefix = format!("{}:4:1: source name ", d.config().display());
    assert!(
        err.starts_with(&prefix) && err.contains("is not allowed"),
        "{err}"
    );
    assert!(!marker.exists());
    assert_eq!(d.post("/v1/shutdown", None).status, 200);
    d.wait_exit(Duration::from_secs(10));

    let mut d = Daemon::prepare(Some(GOOD_CONFIG));
    std::fs::set_permissions(d.config(), std::fs::Permissions::from_mode(0o664)).unwrap();
    d.spawn_foreground();
    let err = d.get("/v1/status").json()["daemon"]["config_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("writable by group or others") && err.contains("chmod go-w"),
        "{err}"
    );
    assert_eq!(d.post("/v1/shutdown", None).status, 200);
    d.wait_exit(Duration::from_secs(10));
}

#[test]
fn reload_keeps_the_last_good_config_on_error() {
    let d = Daemon::start(Some(GOOD_CONFIG));
    // A semantic error: the refresh window botocore needs.
    let bad = GOOD_CONFIG.replace(
        "container_listen",
        "refresh_ahead = \"10m\"\ncontainer_listen",
    );
    std::fs::write(d.config(), &bad).unwrap();
    let r = d.post("/v1/reload", None);
    assert_eq!(r.status, 400);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert_eq!(
        msg,
        format!(
            "{}:2:1: refresh_ahead must be more than 15m (botocore refreshes credentials with less than 15 minutes left), got 600s",
            d.config().display()
        )
    );
    let s = d.get("/v1/status").json();
    assert_eq!(s["daemon"]["config_error"], msg.as_str());
    assert_eq!(s["profiles"][0]["name"], "dev");
    // The last good config still serves: `dev` is known.
    assert_eq!(
        d.get("/v1/credentials/dev").json()["error"]["code"],
        "not_signed_in"
    );

    // A good config again, with one more profile: applied, error gone.
    let good2 = format!(
        "{GOOD_CONFIG}\n[profiles.ops]\nsource = \"corp\"\naccount = \"222222222222\"\nrole = \"Ops\"\n"
    );
    std::fs::write(d.config(), &good2).unwrap();
    assert_eq!(d.post("/v1/reload", None).status, 200);
    let s = d.get("/v1/status").json();
    assert!(s["daemon"].get("config_error").is_none());
    assert_eq!(s["profiles"].as_array().unwrap().len(), 2);

    // SIGHUP reloads too; an unknown source is located at its key.
    let bad = good2.replace(
        "source = \"corp\"\naccount = \"222222222222\"",
        "source = \"crop\"\naccount = \"222222222222\"",
    );
    std::fs::write(d.config(), &bad).unwrap();
    let line = bad.lines().position(|l| l == "source = \"crop\"").unwrap() + 1;
    let pid = d.child.as_ref().unwrap().id() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = d.get("/v1/status").json();
        if let Some(e) = s["daemon"]["config_error"].as_str() {
            assert_eq!(
                e,
                format!(
                    "{}:{line}:1: profile 'ops' names unknown source 'crop' (known sources: corp)",
                    d.config().display()
                )
            );
            assert_eq!(s["profiles"].as_array().unwrap().len(), 2);
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn shutdown_over_the_socket_cleans_up() {
    let mut d = Daemon::start(Some(GOOD_CONFIG));
    // The socket accepts (queues) before serving starts; once a reply came, the snapshot exists.
    assert_eq!(d.get("/v1/version").status, 200);
    assert!(d.runtime().join("status.json").exists());
    let r = d.post("/v1/shutdown", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["ok"], true);
    let out = d.wait_exit(Duration::from_secs(10));
    assert!(out.status.success(), "{out:?}");
    assert!(!d.socket().exists());
    assert!(!d.runtime().join("status.json").exists());
    assert!(!d.runtime().join("rolecalld.pid").exists());
}

#[test]
fn sigterm_finishes_a_reply_in_flight_and_cleans_up() {
    let mut d = Daemon::start(Some(GOOD_CONFIG));
    // A long-poll in flight when the stop comes still gets its reply.
    let socket = d.socket();
    let poll = std::thread::spawn(move || request(&socket, "GET", "/v1/login/corp?wait=30", None));
    std::thread::sleep(Duration::from_millis(300));
    let pid = d.child.as_ref().unwrap().id() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = d.wait_exit(Duration::from_secs(10));
    assert!(out.status.success(), "{out:?}");
    let r = poll.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["source"], "corp");
    assert!(!d.socket().exists());
}

#[test]
fn second_instance_is_refused_and_stale_socket_is_replaced() {
    let d = Daemon::start(Some(GOOD_CONFIG));
    let out = d.command().arg("--foreground").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rolecalld is already running (pid"),
        "{stderr}"
    );
    assert_eq!(d.get("/v1/version").status, 200);

    // A socket file nobody answers on (a crashed daemon) is removed and replaced.
    let mut d2 = Daemon::prepare(Some(GOOD_CONFIG));
    std::fs::create_dir_all(d2.runtime()).unwrap();
    std::fs::set_permissions(d2.runtime(), std::fs::Permissions::from_mode(0o700)).unwrap();
    drop(std::os::unix::net::UnixListener::bind(d2.socket()).unwrap());
    assert!(d2.socket().exists());
    d2.spawn_foreground();
    assert_eq!(d2.get("/v1/version").status, 200);
}

#[test]
fn refuses_a_runtime_dir_others_can_enter() {
    let d = Daemon::prepare(Some(GOOD_CONFIG));
    std::fs::create_dir_all(d.runtime()).unwrap();
    std::fs::set_permissions(d.runtime(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = d.command().arg("--foreground").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is accessible by other users (mode 755)"),
        "{stderr}"
    );
    assert!(!d.socket().exists());
}

#[test]
fn daemonizes_without_foreground() {
    let d = Daemon::prepare(Some(GOOD_CONFIG));
    let started = Instant::now();
    let out = d.command().stderr(Stdio::piped()).output().unwrap();
    // The starter returns at once, with the socket already bound.
    assert!(out.status.success(), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let v = d.get("/v1/version").json();
    let pid = v["pid"].as_u64().unwrap() as i32;
    // The daemon is in a session of its own, detached from ours.
    let sid = nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(pid))).unwrap();
    assert_ne!(sid, nix::unistd::getsid(None).unwrap());
    assert_eq!(d.post("/v1/shutdown", None).status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.socket().exists() {
        assert!(Instant::now() < deadline, "daemon did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn refuses_peers_of_another_uid() {
    if nix::unistd::geteuid().as_raw() != 0 {
        skip("needs root to connect as another uid");
        return;
    }
    let d = Daemon::start(Some(GOOD_CONFIG));
    // Open the path up so that only the peer-credential check stands in the way.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(d.runtime(), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(d.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let script = format!(
        "import os, socket\nos.setgid(65534)\nos.setuid(65534)\ns = socket.socket(socket.AF_UNIX)\ns.connect({:?})\ns.sendall(b'GET /v1/status HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')\ndata = b''\nwhile True:\n    c = s.recv(65536)\n    if not c: break\n    data += c\nprint(data.decode())\n",
        d.socket().display().to_string()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("HTTP/1.1 403"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("\"code\":\"forbidden\""), "{text}");
    assert!(
        !text.contains("111111111111"),
        "status leaked to another uid: {text}"
    );
    // Our own uid is still served.
    assert_eq!(d.get("/v1/status").status, 200);
}

#[test]
fn serves_a_socket_passed_by_systemd() {
    let Ok(activate) = which("systemd-socket-activate") else {
        skip("systemd-socket-activate is not installed (tests/setup-system.sh installs it)");
        return;
    };
    let mut d = Daemon::prepare(Some(GOOD_CONFIG));
    std::fs::create_dir_all(d.runtime()).unwrap();
    std::fs::set_permissions(d.runtime(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let c = d.command();
    let daemon = c.get_program().to_owned();
    let envs: Vec<_> = c
        .get_envs()
        .filter_map(|(k, v)| Some(format!("--setenv={}={}", k.to_str()?, v?.to_str()?)))
        .collect();
    let child = Command::new(activate)
        .arg("-l")
        .arg(d.socket())
        .args(&envs)
        .arg(daemon)
        .arg("--foreground")
        .envs(c.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    d.child = Some(child);
    d.wait_ready();
    // The first connection starts rolecalld on the inherited socket.
    let r = d.get("/v1/status");
    assert_eq!(r.status, 200);
    let pid = r.json()["daemon"]["pid"].as_u64().unwrap();
    assert_eq!(
        pid,
        d.child.as_ref().unwrap().id() as u64,
        "exec'd in place"
    );
    assert_eq!(d.post("/v1/shutdown", None).status, 200);
    let out = d.wait_exit(Duration::from_secs(10));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The socket belongs to the service manager: left in place.
    assert!(d.socket().exists());
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .ok_or(())
}

#[test]
fn relative_config_path_still_reloads_after_daemonizing() {
    let d = Daemon::prepare(None);
    std::fs::write(d.dir.path().join("mine.toml"), GOOD_CONFIG).unwrap();
    let out = d
        .command()
        .env_remove("ROLECALL_CONFIG")
        .args(["--config", "mine.toml"])
        .current_dir(d.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let s = d.get("/v1/status").json();
    let shown = d.dir.path().join("mine.toml");
    assert_eq!(s["daemon"]["config"], shown.display().to_string());
    // The daemon now runs in `/`: a reload must still find the file.
    let more = format!(
        "{GOOD_CONFIG}\n[profiles.ops]\nsource = \"corp\"\naccount = \"222222222222\"\nrole = \"Ops\"\n"
    );
    std::fs::write(&shown, more).unwrap();
    let r = d.post("/v1/reload", None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        d.get("/v1/status").json()["profiles"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
