//! Getting the socket to listen on: the runtime directory (0700, ours), binding (0600, a stale
//! socket removed only after a failed connect), or taking a socket-activated listener.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// Why the daemon cannot listen; the text is the one line the starter sees.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot create the runtime dir {}: {source}", dir.display())]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error("the runtime dir {} vanished", .0.display())]
    DirVanished(PathBuf),
    /// The runtime dir or socket path cannot be trusted or used (the text says why and what
    /// to do).
    #[error("{0}")]
    Refused(String),
    #[error("another rolecalld is already serving on {}", .0.display())]
    AlreadyServing(PathBuf),
    #[error("cannot remove the stale socket {}: {source}", path.display())]
    RemoveStale { path: PathBuf, source: io::Error },
    #[error("cannot bind the socket {}: {source}", path.display())]
    Bind { path: PathBuf, source: io::Error },
    #[error("cannot restrict the socket {}: {source}", path.display())]
    Restrict { path: PathBuf, source: io::Error },
    #[error("cannot listen on the socket: {0}")]
    Listen(io::Error),
    #[error("the socket passed by systemd is not a Unix socket: {0}")]
    NotUnix(io::Error),
}

/// Creates the runtime directory 0700 if needed and refuses one that another user owns, that
/// others can enter or that is a symlink: the socket's safety rests on it (the CLI applies the
/// same check, `rolecall_proto::trust`, before it trusts anything in the directory).
pub fn prepare_runtime_dir(dir: &Path) -> Result<(), ListenError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| ListenError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
    match rolecall_proto::trust::runtime_dir_state(dir) {
        rolecall_proto::trust::DirState::Private => Ok(()),
        rolecall_proto::trust::DirState::Missing => Err(ListenError::DirVanished(dir.into())),
        rolecall_proto::trust::DirState::Untrusted(why) => Err(ListenError::Refused(why)),
    }
}

/// Binds the socket at `path` (0600). An existing socket file is removed only when nothing
/// answers on it; a live one means another daemon serves there.
pub fn bind(path: &Path) -> Result<UnixListener, ListenError> {
    rolecall_proto::trust::check_socket_path(path).map_err(ListenError::Refused)?;
    if std::fs::symlink_metadata(path).is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ListenError::AlreadyServing(path.into()));
        }
        tracing::info!(socket = %path.display(), "removing a stale socket");
        std::fs::remove_file(path).map_err(|source| ListenError::RemoveStale {
            path: path.into(),
            source,
        })?;
    }
    let listener = UnixListener::bind(path).map_err(|source| ListenError::Bind {
        path: path.into(),
        source,
    })?;
    // The umask (077) already made it 0600; set it explicitly, it is the access control.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        ListenError::Restrict {
            path: path.into(),
            source,
        }
    })?;
    Ok(listener)
}

/// Calls listen() again on an already listening socket: Linux then records this process's
/// pid and uid as the credentials clients read with `SO_PEERCRED` (the backlog is unchanged).
pub fn claim_peer_credentials(listener: &UnixListener) -> Result<(), ListenError> {
    use std::os::fd::AsRawFd;
    // SAFETY: listen on a valid, owned socket descriptor.
    if unsafe { libc::listen(listener.as_raw_fd(), libc::SOMAXCONN) } != 0 {
        return Err(ListenError::Listen(io::Error::last_os_error()));
    }
    Ok(())
}

/// The socket passed by systemd socket activation (`LISTEN_FDS`/`LISTEN_PID`), if any.
pub fn activated_listener() -> Result<Option<UnixListener>, ListenError> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    fds.take_unix_listener(0).map_err(ListenError::NotUnix)
}
