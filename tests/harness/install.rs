//! An isolated rolecall installation per test: a temporary HOME with its own rolecall config,
//! state and runtime dirs, AWS config files and XDG dirs, the environment every process of the
//! test runs with, the daemon (foreground or autostarted) and a `$BROWSER` that counts its
//! launches. Everything it started is killed on drop.

use crate::command::TestCommand;
use crate::http::{self, Reply};
use crate::{bin_dir, bin_path, kill_child, kill_pid};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The start URL the tests' identity-center source uses (any string the sandbox accepts).
pub const START_URL: &str = "https://d-9067c2e5f7.awsapps.com/start";
pub const REGION: &str = "eu-west-1";

/// What the test `$BROWSER` does with the URL it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserMode {
    /// Runs `rolecall-sandbox browse URL`: the robot browser follows the sign-in through.
    Follow,
    /// Only records the launch: the login stays pending (until the sandbox admin approves).
    Hold,
}

/// An identity-center profile for [`Installation::write_ic_setup`].
#[derive(Debug, Clone)]
pub struct IcProfile {
    pub name: String,
    pub account: String,
    pub role: String,
}

impl IcProfile {
    pub fn new(name: &str, account: &str, role: &str) -> Self {
        Self {
            name: name.into(),
            account: account.into(),
            role: role.into(),
        }
    }
}

pub struct Installation {
    dir: tempfile::TempDir,
    pub home: PathBuf,
    pub config: PathBuf,
    pub state_dir: PathBuf,
    pub runtime_dir: PathBuf,
    pub aws_config: PathBuf,
    pub aws_credentials: PathBuf,
    env: BTreeMap<OsString, OsString>,
    daemon: Mutex<Option<Child>>,
    browser_log: Option<PathBuf>,
}

impl Default for Installation {
    fn default() -> Self {
        Self::new()
    }
}

impl Installation {
    pub fn new() -> Self {
        // Short paths: the socket lives inside and sun_path holds 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("rc")
            .tempdir()
            .expect("temp dir");
        let home = dir.path().join("home");
        let config = home.join(".config/rolecall/config.toml");
        let state_dir = home.join(".local/state/rolecall");
        let runtime_dir = dir.path().join("run");
        let xdg_runtime = dir.path().join("xdg");
        let aws_config = home.join(".aws/config");
        let aws_credentials = home.join(".aws/credentials");
        for d in [
            home.join(".config/rolecall"),
            home.join(".aws"),
            home.join(".cache"),
            home.join(".local/share"),
            state_dir.clone(),
        ] {
            std::fs::create_dir_all(&d).expect("create dir");
        }
        for d in [&runtime_dir, &xdg_runtime, &state_dir] {
            std::fs::create_dir_all(d).expect("create dir");
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        }

        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: &OsStr| {
            env.insert(OsString::from(k), v.to_os_string());
        };
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
        let mut paths = vec![bin_dir()];
        paths.extend(std::env::split_paths(&path));
        set(
            "PATH",
            &std::env::join_paths(paths).expect("PATH without colons in its parts"),
        );
        set("HOME", home.as_os_str());
        set(
            "USER",
            &std::env::var_os("USER").unwrap_or_else(|| "root".into()),
        );
        set("LANG", OsStr::new("C.UTF-8"));
        set("NO_COLOR", OsStr::new("1"));
        set("XDG_CONFIG_HOME", home.join(".config").as_os_str());
        set("XDG_STATE_HOME", home.join(".local/state").as_os_str());
        set("XDG_DATA_HOME", home.join(".local/share").as_os_str());
        set("XDG_CACHE_HOME", home.join(".cache").as_os_str());
        set("XDG_RUNTIME_DIR", xdg_runtime.as_os_str());
        set("ROLECALL_CONFIG", config.as_os_str());
        set("ROLECALL_STATE_DIR", state_dir.as_os_str());
        set("ROLECALL_RUNTIME_DIR", runtime_dir.as_os_str());
        set("AWS_CONFIG_FILE", aws_config.as_os_str());
        set("AWS_SHARED_CREDENTIALS_FILE", aws_credentials.as_os_str());
        // No real AWS: never ask an instance metadata service, never pick up a real profile.
        set("AWS_EC2_METADATA_DISABLED", OsStr::new("true"));
        if let Some(tmp) = std::env::var_os("TMPDIR") {
            set("TMPDIR", &tmp);
        }

        Self {
            dir,
            home,
            config,
            state_dir,
            runtime_dir,
            aws_config,
            aws_credentials,
            env,
            daemon: Mutex::new(None),
            browser_log: None,
        }
    }

    /// The temporary root (for scratch files of a test).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn set_env(&mut self, k: &str, v: impl AsRef<OsStr>) -> &mut Self {
        self.env.insert(k.into(), v.as_ref().to_os_string());
        self
    }

    pub fn remove_env(&mut self, k: &str) -> &mut Self {
        self.env.remove(OsStr::new(k));
        self
    }

    pub fn env_var(&self, k: &str) -> Option<&OsStr> {
        self.env.get(OsStr::new(k)).map(OsString::as_os_str)
    }

    /// `(key, value)` pairs of the environment, for callers building their own process.
    pub fn envs(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.env.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// Any program with exactly this installation's environment (nothing inherited but PATH).
    pub fn command(&self, program: impl AsRef<OsStr>) -> TestCommand {
        let mut cmd = Command::new(program);
        cmd.env_clear().envs(self.envs()).current_dir(&self.home);
        TestCommand::new(cmd)
    }

    /// `rolecall ARGS…`.
    pub fn rolecall<I, S>(&self, args: I) -> TestCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(bin_path("rolecall")).args(args)
    }

    /// The absolute `rolecall credential-process <profile>` line, as `populate` writes it.
    pub fn credential_process_line(profile: &str) -> String {
        format!(
            "{} credential-process {profile}",
            bin_path("rolecall").display()
        )
    }

    /// The same line prefixed with `/usr/bin/env K=V…` carrying this installation's rolecall
    /// variables, for clients that run credential_process with the test process's own
    /// environment (the Rust SDK in the test process).
    pub fn credential_process_line_with_env(&self, profile: &str) -> String {
        let mut s = String::from("/usr/bin/env");
        for k in [
            "HOME",
            "ROLECALL_CONFIG",
            "ROLECALL_STATE_DIR",
            "ROLECALL_RUNTIME_DIR",
            "XDG_RUNTIME_DIR",
            "XDG_CONFIG_HOME",
            "XDG_STATE_HOME",
            "BROWSER",
        ] {
            if let Some(v) = self.env.get(OsStr::new(k)) {
                s.push_str(&format!(" {k}={}", v.to_string_lossy()));
            }
        }
        format!("{s} {}", Self::credential_process_line(profile))
    }

    pub fn write_config(&self, toml: &str) {
        write_file(&self.config, toml);
    }

    pub fn write_aws_config(&self, text: &str) {
        write_file(&self.aws_config, text);
    }

    /// A rolecall config with one identity-center source `corp` on the sandbox and these
    /// profiles, and a `~/.aws/config` whose profiles of the same names use credential_process.
    /// `daemon_extra` is added to `[daemon]` (e.g. `login_wait = "10s"`).
    pub fn write_ic_setup(&self, sandbox_url: &str, profiles: &[IcProfile], daemon_extra: &str) {
        self.write_config(&self.ic_config(sandbox_url, profiles, daemon_extra));
        let mut aws = String::new();
        for p in profiles {
            aws.push_str(&format!(
                "[profile {}]\ncredential_process = {}\nregion = {REGION}\n\n",
                p.name,
                Self::credential_process_line(&p.name)
            ));
        }
        self.write_aws_config(&aws);
    }

    pub fn ic_config(
        &self,
        sandbox_url: &str,
        profiles: &[IcProfile],
        daemon_extra: &str,
    ) -> String {
        let mut s = format!(
            "[daemon]\nsecret_store = \"file\"\nnotifications = false\ncontainer_listen = \"127.0.0.1:{}\"\n{daemon_extra}\n\n\
             [sources.corp]\nkind = \"identity-center\"\nstart_url = \"{START_URL}\"\nregion = \"{REGION}\"\nendpoint_url = \"{sandbox_url}\"\n\n",
            crate::free_port()
        );
        for p in profiles {
            s.push_str(&format!(
                "[profiles.{}]\nsource = \"corp\"\naccount = \"{}\"\nrole = \"{}\"\nregion = \"{REGION}\"\n\n",
                p.name, p.account, p.role
            ));
        }
        s
    }

    /// Sets `$BROWSER` to a script that appends each URL it gets to a log (one line per
    /// launch) and, with [`BrowserMode::Follow`], runs the sandbox's robot browser on it.
    pub fn use_browser(&mut self, mode: BrowserMode) -> &mut Self {
        let log = self.dir.path().join("browser.log");
        let script = self.dir.path().join("browser.sh");
        let follow = match mode {
            BrowserMode::Follow => format!(
                "exec '{}' browse \"$1\"\n",
                bin_path("rolecall-sandbox").display()
            ),
            BrowserMode::Hold => "exit 0\n".into(),
        };
        write_file(
            &script,
            &format!(
                "#!/bin/sh\n# test browser: count the launch\nprintf '%s\\n' \"$1\" >> '{}'\n{follow}",
                log.display()
            ),
        );
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        self.browser_log = Some(log);
        self.set_env("BROWSER", &script);
        self
    }

    /// How many times `$BROWSER` was launched.
    pub fn browser_launches(&self) -> usize {
        self.browser_log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// The URLs `$BROWSER` was given.
    pub fn browser_urls(&self) -> Vec<String> {
        self.browser_log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.lines().map(String::from).collect())
            .unwrap_or_default()
    }

    pub fn socket_path(&self) -> PathBuf {
        self.runtime_dir.join(rolecall_proto::paths::SOCKET_NAME)
    }

    /// A request to the daemon's socket API.
    pub fn api(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Result<Reply> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        http::unix_request(&self.socket_path(), method, path, bytes.as_deref())
    }

    /// Whether a daemon answers on this installation's socket.
    pub fn daemon_answers(&self) -> bool {
        matches!(self.api("GET", "/v1/version", None), Ok(r) if r.status == 200)
    }

    /// Starts `rolecalld --foreground` and waits until it answers on its socket.
    pub fn start_daemon(&self) -> u32 {
        let out = self.dir.path().join("rolecalld.out");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out)
            .expect("daemon output file");
        let mut cmd = Command::new(bin_path("rolecalld"));
        cmd.arg("--foreground")
            .env_clear()
            .envs(self.envs())
            .current_dir(&self.home)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup"))
            .stderr(file);
        let child = cmd.spawn().expect("spawn rolecalld");
        let pid = child.id();
        *self.daemon.lock().unwrap() = Some(child);
        if let Err(e) = self.wait_for_daemon(Duration::from_secs(10)) {
            panic!("{e:#}\ndaemon output:\n{}", self.daemon_output());
        }
        pid
    }

    pub fn wait_for_daemon(&self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if self.daemon_answers() {
                return Ok(());
            }
            if let Some(child) = self.daemon.lock().unwrap().as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    bail!("rolecalld exited with {status} before answering");
                }
            }
            if start.elapsed() > limit {
                bail!("rolecalld did not answer on its socket within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the daemon this installation runs (foreground child or autostarted) and waits
    /// until it is gone.
    pub fn stop_daemon(&self) {
        if let Some(mut child) = self.daemon.lock().unwrap().take() {
            // SIGTERM first: a graceful stop is what a restart test is about.
            kill_pid(child.id(), libc::SIGTERM);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            kill_child(&mut child);
            return;
        }
        for pid in self.daemon_pids() {
            kill_pid(pid, libc::SIGTERM);
        }
        let start = Instant::now();
        while !self.daemon_pids().is_empty() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in self.daemon_pids() {
            kill_pid(pid, libc::SIGKILL);
        }
    }

    /// Every process started for this installation (the daemon, however it was started, and
    /// whatever it ran), found by the installation's runtime dir in its environment.
    pub fn processes(&self) -> Vec<u32> {
        let marker = {
            let mut m = b"ROLECALL_RUNTIME_DIR=".to_vec();
            m.extend_from_slice(self.runtime_dir.as_os_str().as_encoded_bytes());
            m
        };
        let me = std::process::id();
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return out;
        };
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            if let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) {
                if environ.split(|b| *b == 0).any(|kv| kv == marker.as_slice()) {
                    out.push(pid);
                }
            }
        }
        out
    }

    /// The pids of the `rolecalld` processes of this installation.
    pub fn daemon_pids(&self) -> Vec<u32> {
        self.processes()
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|c| c.trim() == "rolecalld")
                    .unwrap_or(false)
                    && !is_zombie(*pid)
            })
            .collect()
    }

    /// The daemon's log file(s) in the state dir plus what a foreground daemon printed.
    pub fn daemon_log(&self) -> String {
        let mut s = String::new();
        if let Ok(entries) = std::fs::read_dir(&self.state_dir) {
            let mut names: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("rolecalld") && n.contains("log"))
                })
                .collect();
            names.sort();
            for p in names {
                s.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
        s.push_str(&self.daemon_output());
        s
    }

    /// What a foreground daemon printed on stdout/stderr.
    pub fn daemon_output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rolecalld.out")).unwrap_or_default()
    }

    /// Every file under the installation (for secret scans): path and bytes.
    pub fn all_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(p);
                } else if ft.is_file() {
                    if let Ok(b) = std::fs::read(&p) {
                        out.push((p, b));
                    }
                }
            }
        }
        out
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(true)
}

pub(crate) fn write_file(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent dir");
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

impl Drop for Installation {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.lock().unwrap().take() {
            kill_child(&mut child);
        }
        // Autostarted daemons, browsers, anything that inherited this installation's env.
        for pid in self.processes() {
            kill_pid(pid, libc::SIGKILL);
        }
    }
}
