//! The demo's isolated installation: a temporary directory holding HOME, the config, state and
//! runtime dirs, the AWS config, and the processes (sandbox, daemon) started in it. Dropping it
//! (or `teardown`) stops them and removes the directory, unless `keep` was called.

use super::{check_interrupted, interrupted};
use anyhow::{bail, Context};
use std::ffi::OsString;
use std::fs::{DirBuilder, File};
use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The sandbox's built-in directory (`tests/sandbox/seeds/default.toml`): its start URL and
/// region, and three of alice's assignments.
pub const START_URL: &str = "https://d-9067c2e5f7.awsapps.com/start";
pub const REGION: &str = "eu-west-1";
/// A chained profile (docs/chaining.md): name, parent, role ARN (a role of the sandbox's seed).
pub const CHAINED: (&str, &str, &str) = (
    "deploy",
    "dev-admin",
    "arn:aws:iam::222222222222:role/Deployer",
);
pub const PROFILES: [(&str, &str, &str, &str); 3] = [
    ("dev-admin", "111111111111", "dev", "DeveloperAdmin"),
    ("dev-read", "111111111111", "dev", "DeveloperReadOnly"),
    (
        "staging-power",
        "222222222222",
        "staging",
        "DeveloperPowerUser",
    ),
];

pub struct DemoEnv {
    pub root: PathBuf,
    pub me: PathBuf,
    pub sandbox_bin: PathBuf,
    pub daemon_bin: PathBuf,
    pub sandbox: Option<Child>,
    pub base_url: String,
    pub daemon_pid: Option<u32>,
    kept: bool,
    torn_down: bool,
}

impl DemoEnv {
    pub fn create(me: PathBuf, sandbox_bin: PathBuf, daemon_bin: PathBuf) -> anyhow::Result<Self> {
        let nanos = crate::clock::system_now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("rolecall-demo-{}-{nanos:x}", std::process::id());
        let mut root = std::env::temp_dir().join(&name);
        // A Unix socket path is limited to about 104 bytes (macOS) or 108 (Linux); a long
        // TMPDIR (macOS puts it under /var/folders/…) would leave no room for the daemon's.
        if root
            .join("run")
            .join(rolecall_proto::paths::SOCKET_NAME)
            .as_os_str()
            .len()
            > 100
        {
            root = PathBuf::from("/tmp").join(&name);
        }
        // Not recursive: fail rather than reuse a directory someone else prepared.
        DirBuilder::new()
            .mode(0o700)
            .create(&root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        let env = DemoEnv {
            root,
            me,
            sandbox_bin,
            daemon_bin,
            sandbox: None,
            base_url: String::new(),
            daemon_pid: None,
            kept: false,
            torn_down: false,
        };
        for d in [
            env.home(),
            env.home().join(".aws"),
            env.config_dir(),
            env.state_dir(),
            env.runtime_dir(),
        ] {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
        }
        Ok(env)
    }

    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    pub fn config_dir(&self) -> PathBuf {
        self.home().join(".config/rolecall")
    }
    pub fn config_file(&self) -> PathBuf {
        self.config_dir().join("config.toml")
    }
    pub fn state_dir(&self) -> PathBuf {
        self.home().join(".local/state/rolecall")
    }
    pub fn runtime_dir(&self) -> PathBuf {
        self.root.join("run")
    }
    pub fn socket(&self) -> PathBuf {
        self.runtime_dir().join(rolecall_proto::paths::SOCKET_NAME)
    }
    pub fn aws_config(&self) -> PathBuf {
        self.home().join(".aws/config")
    }
    pub fn aws_credentials(&self) -> PathBuf {
        self.home().join(".aws/credentials")
    }
    pub fn browser(&self) -> String {
        format!("{} browse", self.sandbox_bin.display())
    }

    /// The variables that make a process use this installation and nothing of the user's.
    pub fn vars(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("HOME", self.home().into()),
            ("XDG_CONFIG_HOME", self.home().join(".config").into()),
            ("XDG_STATE_HOME", self.home().join(".local/state").into()),
            ("XDG_DATA_HOME", self.home().join(".local/share").into()),
            ("XDG_CACHE_HOME", self.home().join(".cache").into()),
            ("ROLECALL_CONFIG", self.config_file().into()),
            ("ROLECALL_STATE_DIR", self.state_dir().into()),
            ("ROLECALL_RUNTIME_DIR", self.runtime_dir().into()),
            ("AWS_CONFIG_FILE", self.aws_config().into()),
            ("AWS_SHARED_CREDENTIALS_FILE", self.aws_credentials().into()),
            ("BROWSER", self.browser().into()),
        ]
    }

    /// A command running in this installation: the user's AWS and rolecall variables removed,
    /// ours set.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = crate::spawn::command(program);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("AWS_") || k.starts_with("ROLECALL_") || k.starts_with("XDG_") {
                cmd.env_remove(k.as_ref());
            }
        }
        cmd.envs(self.vars());
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `rolecall <args>` in this installation, capturing its output, bounded by `limit`.
    pub fn rolecall(&self, args: &[&str], limit: Duration) -> anyhow::Result<Output> {
        let mut cmd = self.command(&self.me);
        cmd.args(args);
        run_bounded(cmd, limit).with_context(|| format!("rolecall {}", args.join(" ")))
    }

    /// Starts the sandbox in its own session (it must survive `--keep` and ignore the
    /// terminal's Ctrl-C, which we handle) and reads its base URL, the first line it prints.
    pub fn start_sandbox(&mut self) -> anyhow::Result<()> {
        let out_path = self.root.join("sandbox.out");
        let log_path = self.root.join("sandbox.log");
        let mut cmd = self.command(&self.sandbox_bin);
        cmd.args(["--auto-approve", "--listen", "127.0.0.1:0"])
            .stdout(File::create(&out_path)?)
            .stderr(File::create(&log_path)?);
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", self.sandbox_bin.display()))?;
        self.sandbox = Some(child);
        let deadline = crate::clock::monotonic() + Duration::from_secs(10);
        loop {
            check_interrupted()?;
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            if let Some(line) = text.lines().next().filter(|_| text.contains('\n')) {
                let url = line.trim().trim_end_matches('/');
                if !url.starts_with("http://127.0.0.1:") {
                    bail!("the sandbox printed {url:?} instead of its base URL");
                }
                self.base_url = url.to_string();
                return Ok(());
            }
            if let Some(st) = self
                .sandbox
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "the sandbox exited ({st}): {}",
                    last_line(&log_path).unwrap_or_else(|| "no message".into())
                );
            }
            if crate::clock::monotonic() >= deadline {
                bail!("the sandbox did not print its address within 10s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Leaves the sandbox and the daemon running after the demo exits.
    pub fn keep(&mut self) {
        self.kept = true;
    }

    /// Stops the daemon and the sandbox and removes the directory. Idempotent.
    pub fn teardown(&mut self) {
        if self.kept || self.torn_down {
            return;
        }
        self.torn_down = true;
        // Ask the daemon to stop the way users do, while the sandbox (an emulator with nothing
        // to save) gets a short grace period; then make sure both are gone.
        let stopper = if self.socket().exists() {
            let mut cmd = self.command(&self.me);
            cmd.args(["daemon", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            cmd.spawn().ok()
        } else {
            None
        };
        if let Some(mut child) = self.sandbox.take() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = crate::clock::monotonic() + Duration::from_millis(300);
            while crate::clock::monotonic() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(mut s) = stopper {
            let deadline = crate::clock::monotonic() + Duration::from_secs(8);
            while crate::clock::monotonic() < deadline && s.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = s.kill();
            let _ = s.wait();
        }
        if let Some(pid) = self.daemon_pid {
            terminate_and_wait(pid);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            eprintln!("rolecall: could not remove {}: {e}", self.root.display());
        }
    }
}

impl Drop for DemoEnv {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn terminate_and_wait(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: signals only; no memory is shared.
    let alive = || unsafe { libc::kill(pid, 0) } == 0;
    if !alive() {
        return;
    }
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = crate::clock::monotonic() + Duration::from_secs(3);
    while alive() && crate::clock::monotonic() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if alive() {
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::to_string)
}

/// Runs a command to completion with captured output, killing it after `limit` or on Ctrl-C.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> anyhow::Result<Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let mut out = child.stdout.take().context("no stdout pipe")?;
    let mut err = child.stderr.take().context("no stderr pipe")?;
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let deadline = crate::clock::monotonic() + limit;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if interrupted() || crate::clock::monotonic() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            check_interrupted()?;
            bail!("did not finish within {}s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}
