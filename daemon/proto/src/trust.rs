//! Whether the runtime directory can be trusted, and whether a socket path fits.
//!
//! Both the daemon and the CLI rely on the runtime dir being private: the daemon puts its socket
//! there, the CLI takes whatever answers on that socket for the daemon, and the prompt reads the
//! status snapshot from it. A directory that another user owns (created first under a shared
//! path), that others can enter, or that is a symlink (pointing anywhere) could hold a fake
//! socket, a fake snapshot or a symlink that makes us overwrite someone else's file. So both
//! sides check it with one `lstat` before any use.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// What `lstat` found at the runtime dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirState {
    /// Nothing there yet (no daemon ran since boot, or ever).
    Missing,
    /// A directory of ours that only we can enter.
    Private,
    /// Something we must not use; the text is the one line to show (with what to do).
    Untrusted(String),
}

/// Checks `dir` with one `lstat`: a real directory (not a symlink), owned by the current uid,
/// with no access for group or others.
pub fn runtime_dir_state(dir: &Path) -> DirState {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return DirState::Missing,
        Err(e) => {
            return DirState::Untrusted(format!(
                "cannot inspect the runtime dir {}: {e}",
                dir.display()
            ))
        }
    };
    let shown = dir.display();
    if meta.file_type().is_symlink() {
        return DirState::Untrusted(format!(
            "the runtime dir {shown} is a symlink; refusing to use it — remove it (rm {shown}) and try again"
        ));
    }
    if !meta.is_dir() {
        return DirState::Untrusted(format!(
            "the runtime dir {shown} is not a directory; refusing to use it — remove it and try again"
        ));
    }
    let uid = crate::paths::current_uid();
    if meta.uid() != uid {
        return DirState::Untrusted(format!(
            "the runtime dir {shown} belongs to uid {}, not to you (uid {uid}); another user may have planted it — refusing to use it (set XDG_RUNTIME_DIR or ROLECALL_RUNTIME_DIR to a directory of yours)",
            meta.uid()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return DirState::Untrusted(format!(
            "the runtime dir {shown} is accessible by other users (mode {mode:03o}); refusing to use it — run: chmod 700 {shown}"
        ));
    }
    DirState::Private
}

/// The longest socket path the platform accepts, in bytes (without the terminating NUL):
/// `sun_path` is 108 bytes on Linux, 104 on macOS and the BSDs.
pub fn max_socket_path_len() -> usize {
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_path.len() - 1
}

/// A one-line error when `socket` is too long to bind or connect to, naming the fix.
pub fn check_socket_path(socket: &Path) -> Result<(), String> {
    let len = socket.as_os_str().len();
    let max = max_socket_path_len();
    if len > max {
        return Err(format!(
            "the socket path {} is {len} bytes, longer than the {max} a Unix socket path may have — set ROLECALL_RUNTIME_DIR (or XDG_RUNTIME_DIR) to a shorter directory",
            socket.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn only_a_private_directory_of_ours_is_trusted() {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("run");
        assert_eq!(runtime_dir_state(&run), DirState::Missing);
        std::fs::create_dir(&run).unwrap();
        chmod(&run, 0o700);
        assert_eq!(runtime_dir_state(&run), DirState::Private);
        chmod(&run, 0o750);
        let DirState::Untrusted(m) = runtime_dir_state(&run) else {
            panic!("group access accepted")
        };
        assert!(m.contains("mode 750") && m.contains("chmod 700"), "{m}");
        chmod(&run, 0o700);

        // A symlink to a private dir of ours is still refused: its target can change.
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&run, &link).unwrap();
        let DirState::Untrusted(m) = runtime_dir_state(&link) else {
            panic!("symlink accepted")
        };
        assert!(m.contains("is a symlink"), "{m}");

        let file = t.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            runtime_dir_state(&file),
            DirState::Untrusted(m) if m.contains("not a directory")
        ));
    }

    #[test]
    fn a_directory_of_another_uid_is_refused() {
        if crate::paths::current_uid() != 0 {
            // Only root can hand a directory to another uid; the e2e tests cover it too.
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("run");
        std::fs::create_dir(&run).unwrap();
        chmod(&run, 0o700);
        std::os::unix::fs::chown(&run, Some(65534), Some(65534)).unwrap();
        let DirState::Untrusted(m) = runtime_dir_state(&run) else {
            panic!("a dir of nobody accepted")
        };
        assert!(m.contains("belongs to uid 65534"), "{m}");
        assert!(!m.contains('\n'));
    }

    #[test]
    fn socket_paths_over_the_limit_are_named() {
        assert!(max_socket_path_len() >= 103);
        let ok = Path::new("/run/user/1000/rolecall/rolecalld.sock");
        assert!(check_socket_path(ok).is_ok());
        let long = format!("/home/{}/rolecalld.sock", "x".repeat(120));
        let e = check_socket_path(Path::new(&long)).unwrap_err();
        assert!(
            e.contains("ROLECALL_RUNTIME_DIR") && !e.contains('\n'),
            "{e}"
        );
        // Exactly at the limit still fits (the NUL is not counted).
        let at = "/".repeat(max_socket_path_len());
        assert!(check_socket_path(Path::new(&at)).is_ok());
    }
}
