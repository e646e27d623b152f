//! `rolecall populate` end to end: the real rolecalld, signed in to the sandbox's Identity
//! Center (seeded with 300 generated accounts × 3 permission sets besides its default
//! directory), lists every account × role, and the CLI writes the config and the block.
//!
//! Needs `rolecalld` and `rolecall-sandbox` built beside `rolecall`
//! (`cargo build -p rolecall-daemon -p rolecall-sandbox --bins`).

mod shell_common;

use shell_common::{stderr, stdout, Install, BIN};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn sibling(name: &str) -> PathBuf {
    let p = Path::new(BIN).parent().unwrap().join(name);
    assert!(
        p.is_file(),
        "{} is missing: cargo build -p rolecall-daemon -p rolecall-sandbox --bins",
        p.display()
    );
    p
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        // SAFETY: signals a child this test started.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn counts(url: &str) -> serde_json::Value {
    let o = Command::new("curl")
        .args(["-fsS", &format!("{url}/_sandbox/counts")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v.get("counts").cloned().unwrap_or(v)
}

#[test]
fn populate_300_accounts_by_3_sets_from_the_sandbox() {
    let ins = Install::new();
    let seed_text =
        std::fs::read_to_string(repo().join("tests/sandbox/seeds/default.toml")).unwrap();
    let start_url = seed_text
        .parse::<toml::Table>()
        .unwrap()
        .get("identity_center")
        .and_then(|t| t.get("start_url"))
        .and_then(|v| v.as_str())
        .unwrap()
        .to_owned();
    let seed = ins.path().join("seed.toml");
    std::fs::write(
        &seed,
        format!("{seed_text}\n[generate]\naccounts = 300\npermission_sets = 3\n"),
    )
    .unwrap();

    let mut sandbox = Command::new(sibling("rolecall-sandbox"))
        .args(["--auto-approve", "--seed"])
        .arg(&seed)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(sandbox.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _sandbox = Killed(sandbox);
    let url = line.trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "sandbox said {url:?}");

    std::fs::write(
        ins.path().join("config.toml"),
        format!(
            "[daemon]\nsecret_store = \"file\"\nnotifications = false\ncontainer_listen = \"127.0.0.1:0\"\n\n\
             [sources.corp]\nkind = \"identity-center\"\nstart_url = \"{start_url}\"\nregion = \"eu-west-1\"\nendpoint_url = \"{url}\"\n"
        ),
    )
    .unwrap();
    let browser = ins.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!(
            "#!/bin/sh\nexec '{}' browse \"$1\"\n",
            sibling("rolecall-sandbox").display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(
            ins.path().join("runtime"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
    }
    let aws = ins.path().join("home/.aws/config");
    std::fs::create_dir_all(aws.parent().unwrap()).unwrap();
    let mine = "# mine\n[default]\nregion = us-east-1\n";
    std::fs::write(&aws, mine).unwrap();

    let _daemon = Killed(
        ins.command(sibling("rolecalld").to_str().unwrap())
            .arg("--foreground")
            .env("BROWSER", &browser)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let sock = ins.path().join("runtime/rolecalld.sock");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(25));
    }
    let o = ins
        .command(BIN)
        .args(["login", "corp"])
        .env("BROWSER", &browser)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "login: {}{}", stdout(&o), stderr(&o));

    let before = counts(&url);
    let t0 = Instant::now();
    let o = ins.rolecall(&["populate", "corp"]);
    let wall = t0.elapsed();
    assert!(o.status.success(), "populate: {}", stderr(&o));
    let after = counts(&url);
    let delta = |k: &str| {
        after.get(k).and_then(|v| v.as_u64()).unwrap_or(0)
            - before.get(k).and_then(|v| v.as_u64()).unwrap_or(0)
    };
    eprintln!(
        "populate: {wall:?}; ListAccounts {} calls, ListAccountRoles {} calls",
        delta("sso:ListAccounts"),
        delta("sso:ListAccountRoles")
    );
    // One ListAccountRoles per account at least (paged), and the listing itself was paged.
    assert!(delta("sso:ListAccountRoles") >= 300, "{after}");
    assert!(delta("sso:ListAccounts") >= 1, "{after}");

    let text = std::fs::read_to_string(&aws).unwrap();
    assert!(
        text.starts_with(&format!("{mine}\n# BEGIN rolecall\n")),
        "{text}"
    );
    let block_profiles = text.matches("\n[profile ").count();
    assert!(block_profiles >= 900, "{block_profiles}");
    assert!(text.contains("[profile generated-0300.GeneratedSet03]\n"));
    assert!(!text.contains("sso_"));
    let cfg = std::fs::read_to_string(ins.path().join("config.toml")).unwrap();
    assert_eq!(cfg.matches("[profiles.").count(), block_profiles);

    // Idempotent against the real listing too.
    let o = ins.rolecall(&["populate", "corp"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing to change"), "{}", stdout(&o));
    assert_eq!(std::fs::read_to_string(&aws).unwrap(), text);

    // A generated profile works through credential_process with the real daemon.
    let o = ins
        .command(BIN)
        .args(["credential-process", "generated-0042.GeneratedSet01"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let creds: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(creds["AccountId"], "500000000041");
}
