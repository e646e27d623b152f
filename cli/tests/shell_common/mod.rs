//! Shared fixtures for the shell and prompt tests: an isolated rolecall installation in a
//! temporary directory (config, runtime dir with a status snapshot), and a tmux driver for
//! interactive shells.
// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_rolecall");

pub const CONFIG: &str = r#"
[sources.corp]
kind = "identity-center"
start_url = "https://d-1234567890.awsapps.com/start"
region = "eu-west-1"

[profiles.dev-admin]
source = "corp"
account = "111111111111"
account_name = "Dev"
role = "DeveloperAdmin"
region = "eu-central-1"

[profiles.prod-ro]
source = "corp"
account = "222222222222"
role = "ReadOnly"
"#;

pub struct Install {
    pub dir: tempfile::TempDir,
}

impl Install {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("runtime")).unwrap();
        // Private, as the daemon makes it: the prompt ignores a runtime dir others can enter.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("runtime"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
        Install { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn snapshot_path(&self) -> PathBuf {
        self.path().join("runtime/status.json")
    }

    /// Writes a snapshot as the daemon would, naming `pid` as its writer.
    pub fn write_snapshot(&self, pid: u32, expires_in: i64, needs_login: bool) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let doc = serde_json::json!({
            "pid": pid,
            "written_at": now,
            "profiles": {
                "dev-admin": {
                    "account": "111111111111",
                    "account_name": "Dev",
                    "role": "DeveloperAdmin",
                    "region": "eu-central-1",
                    "expires": now + expires_in,
                    "needs_login": needs_login,
                },
                "prod-ro": {
                    "account": "222222222222",
                    "role": "ReadOnly",
                },
            }
        });
        std::fs::write(self.snapshot_path(), doc.to_string()).unwrap();
    }

    /// A command with a clean environment pointing at this installation only.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path().join("home"))
            .env("TERM", "xterm-256color")
            .env("LANG", "C.UTF-8")
            .env("ROLECALL_CONFIG", self.path().join("config.toml"))
            .env("ROLECALL_RUNTIME_DIR", self.path().join("runtime"))
            .env("ROLECALL_STATE_DIR", self.path().join("state"))
            .env("ROLECALL_NO_AUTOSTART", "true")
            .current_dir(self.path());
        c
    }

    pub fn rolecall(&self, args: &[&str]) -> Output {
        self.command(BIN).args(args).output().unwrap()
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An interactive shell in a private tmux server, driven by keystrokes.
pub struct Tmux {
    socket: String,
    pub install: Install,
}

impl Tmux {
    /// Starts `argv` in a detached 200x50 tmux window with the installation's environment.
    pub fn start(install: Install, argv: &[&str]) -> Self {
        let socket = format!(
            "rolecall-test-{}-{}",
            std::process::id(),
            install.path().file_name().unwrap().to_string_lossy()
        );
        let shell_line = argv
            .iter()
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect::<Vec<_>>()
            .join(" ");
        let st = install
            .command("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "200", "-y", "50", &shell_line])
            .status()
            .unwrap();
        assert!(st.success(), "tmux did not start");
        Tmux { socket, install }
    }

    pub fn send(&self, keys: &[&str]) {
        let st = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "0"])
            .args(keys)
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Types a line literally and presses Enter.
    pub fn line(&self, text: &str) {
        self.send(&["-l", text]);
        self.send(&["Enter"]);
    }

    pub fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Waits until the screen satisfies `pred`, or fails with the screen shown.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// A running sandbox and rolecalld for one [`Install`], signed in to source `corp`.
pub struct Stack {
    pub url: String,
    _daemon: Killed,
    _sandbox: Killed,
}

/// A child process killed (SIGTERM, then SIGKILL) when dropped.
pub struct Killed(pub std::process::Child);

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

/// A binary built beside `rolecall` (`cargo build -p rolecall-daemon -p rolecall-sandbox --bins`).
pub fn sibling(name: &str) -> PathBuf {
    let p = Path::new(BIN).parent().unwrap().join(name);
    assert!(
        p.is_file(),
        "{} is missing: cargo build -p rolecall-daemon -p rolecall-sandbox --bins",
        p.display()
    );
    p
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

impl Stack {
    /// Starts the sandbox (default directory, plus `generate` = (accounts, permission sets)),
    /// writes a config with source `corp` on it (and `extra` appended), starts rolecalld and
    /// signs in through the sandbox's robot browser.
    pub fn start(ins: &Install, generate: Option<(usize, usize)>, extra: &str) -> Stack {
        use std::io::BufRead;
        use std::os::unix::fs::PermissionsExt;
        use std::process::Stdio;
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
        let gen = generate
            .map(|(a, p)| format!("\n[generate]\naccounts = {a}\npermission_sets = {p}\n"))
            .unwrap_or_default();
        std::fs::write(&seed, format!("{seed_text}{gen}")).unwrap();
        let mut sandbox = Command::new(sibling("rolecall-sandbox"))
            .args(["--auto-approve", "--seed"])
            .arg(&seed)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(sandbox.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let sandbox = Killed(sandbox);
        let url = line.trim().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "sandbox said {url:?}");
        std::fs::write(
            ins.path().join("config.toml"),
            format!(
                "[daemon]\nsecret_store = \"file\"\nnotifications = false\ncontainer_listen = \"127.0.0.1:0\"\n\n\
                 [sources.corp]\nkind = \"identity-center\"\nstart_url = \"{start_url}\"\nregion = \"eu-west-1\"\nendpoint_url = \"{url}\"\n{extra}"
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
        std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(
            ins.path().join("runtime"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let daemon = Killed(
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
        Stack {
            url,
            _daemon: daemon,
            _sandbox: sandbox,
        }
    }
}
