//! The start-up lock: many callers that find the daemon down serialise on an `flock`, so that
//! one of them starts it.

use crate::client::ClientError;
use rolecall_proto::paths;
use std::fs::{DirBuilder, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

/// The start-up lock file, created 0600 in a 0700 runtime dir (the daemon refuses a runtime dir
/// others can read, so we create it the way it wants).
pub(super) struct StartLock {
    file: File,
}

/// Held lock; released when dropped.
pub(super) struct Held<'a>(&'a File);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // SAFETY: the fd is valid for the lifetime of the borrowed File.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl StartLock {
    pub(super) fn open(path: &Path) -> Result<StartLock, ClientError> {
        if let Some(dir) = path.parent() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    ClientError::StartFailed(format!("cannot create {}: {e}", dir.display()))
                })?;
            // An existing directory is taken as it is by `create`: check it before opening
            // anything in it.
            if let rolecall_proto::trust::DirState::Untrusted(why) =
                rolecall_proto::trust::runtime_dir_state(dir)
            {
                return Err(ClientError::Refused(why));
            }
        }
        // std opens with O_CLOEXEC, so the daemon we spawn never inherits (and holds) the lock.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| {
                ClientError::StartFailed(format!("cannot open {}: {e}", path.display()))
            })?;
        Ok(StartLock { file })
    }

    pub(super) fn try_lock(&self) -> Result<Option<Held<'_>>, ClientError> {
        // SAFETY: flock on a valid fd.
        let r = unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(Some(Held(&self.file)));
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => Ok(None),
            _ => Err(ClientError::StartFailed(format!(
                "cannot lock {}: {e}",
                paths::start_lock_path().display()
            ))),
        }
    }

    pub(super) fn lock(&self, wait: Duration) -> Result<Held<'_>, ClientError> {
        let deadline = crate::clock::monotonic() + wait;
        loop {
            if let Some(h) = self.try_lock()? {
                return Ok(h);
            }
            if crate::clock::monotonic() >= deadline {
                return Err(ClientError::StartFailed(format!(
                    "another rolecall held {} for {}s",
                    paths::start_lock_path().display(),
                    wait.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_lock_is_exclusive_between_open_files_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/start.lock");
        let a = StartLock::open(&path).unwrap();
        let b = StartLock::open(&path).unwrap();
        let held = a.try_lock().unwrap().expect("first lock");
        assert!(
            b.try_lock().unwrap().is_none(),
            "second holder while the first holds it"
        );
        assert!(b.lock(Duration::from_millis(50)).is_err());
        drop(held);
        assert!(b.try_lock().unwrap().is_some());
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }

    #[test]
    fn one_of_many_threads_takes_the_lock_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/start.lock");
        let inside = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let max = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (path, inside, max) = (path.clone(), inside.clone(), max.clone());
                std::thread::spawn(move || {
                    let l = StartLock::open(&path).unwrap();
                    let _h = l.lock(Duration::from_secs(10)).unwrap();
                    let now = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    max.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(max.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
