//! The AWS config and credentials files a `rolecall exec` child sees: both in a private
//! directory of the runtime dir, the credentials file empty and the config file holding only
//! the profile's region, removed when the child has ended.
//!
//! Why not simply leave the user's files: SDKs try a `[default]` profile (static keys in
//! `~/.aws/credentials`, `credential_process` or `role_arn` in `~/.aws/config`) before the
//! container provider, so the command would silently run with other credentials than the
//! profile it was started for. Dropping `AWS_PROFILE` is not enough; pointing
//! `AWS_CONFIG_FILE`/`AWS_SHARED_CREDENTIALS_FILE` at files without credentials is.

use anyhow::Context as _;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

const PREFIX: &str = "exec-";

/// The directory with the two files; removed on drop.
pub struct AwsFiles {
    dir: PathBuf,
}

impl AwsFiles {
    /// Creates `<runtime>/exec-<pid>-<random>/{config,credentials}` (0700 / 0600).
    pub fn create(runtime: &Path, region: Option<&str>) -> anyhow::Result<Self> {
        sweep_stale(runtime);
        let dir = runtime.join(format!("{PREFIX}{}-{}", std::process::id(), nonce()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let files = AwsFiles { dir };
        // Only a plain region name goes in: anything else could add lines to the INI file.
        let config = match region.filter(|r| is_region(r)) {
            Some(r) => format!("[default]\nregion = {r}\n"),
            None => String::new(),
        };
        write_new(&files.config(), config.as_bytes())?;
        write_new(&files.credentials(), b"")?;
        Ok(files)
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("config")
    }

    pub fn credentials(&self) -> PathBuf {
        self.dir.join("credentials")
    }

    /// Points the child's SDKs at these files.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("AWS_CONFIG_FILE", self.config());
        cmd.env("AWS_SHARED_CREDENTIALS_FILE", self.credentials());
    }
}

impl Drop for AwsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_new(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn is_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn nonce() -> String {
    use std::io::Read as _;
    let mut b = [0u8; 6];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = crate::clock::system_now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        b[..4].copy_from_slice(&t.to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Removes the directories of earlier `rolecall exec` processes that were killed outright
/// (SIGKILL leaves no chance to clean up). They hold no secrets; this only keeps the runtime
/// dir tidy.
fn sweep_stale(runtime: &Path) {
    let Ok(entries) = std::fs::read_dir(runtime) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let gone = pid > 0
            && unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone && e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn files_are_private_hold_no_credentials_and_go_away() {
        let run = tempfile::tempdir().unwrap();
        let f = AwsFiles::create(run.path(), Some("eu-west-1")).unwrap();
        assert_eq!(
            std::fs::read_to_string(f.config()).unwrap(),
            "[default]\nregion = eu-west-1\n"
        );
        assert_eq!(std::fs::read_to_string(f.credentials()).unwrap(), "");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&f.dir), 0o700);
        assert_eq!(mode(&f.config()), 0o600);
        assert_eq!(mode(&f.credentials()), 0o600);
        let dir = f.dir.clone();
        drop(f);
        assert!(!dir.exists());

        let odd = AwsFiles::create(run.path(), Some("eu-west-1\ncredential_process = x")).unwrap();
        assert_eq!(std::fs::read_to_string(odd.config()).unwrap(), "");
    }

    #[test]
    fn leftovers_of_dead_processes_are_swept() {
        let run = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22: this pid cannot exist.
        let dead = run.path().join("exec-99999999-abc");
        std::fs::create_dir(&dead).unwrap();
        let alive = run.path().join(format!("exec-{}-def", std::process::id()));
        std::fs::create_dir(&alive).unwrap();
        let _f = AwsFiles::create(run.path(), None).unwrap();
        assert!(!dead.exists());
        assert!(alive.exists());
    }
}
