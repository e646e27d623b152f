//! The audit file itself: appended with `O_APPEND` (0600, ours, never through a symlink),
//! rotated before a line would take it past `max_size` — `audit.jsonl` becomes `audit.jsonl.1`,
//! `.1` becomes `.2`, …, and the file beyond `files` is deleted — so the log never holds more
//! than `files × max_size` bytes.

use super::Limits;
use rolecall_proto::audit::file_path;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;

pub struct Writer {
    dir: PathBuf,
    file: File,
    /// Device and inode of `file`, to notice the file being moved or deleted by someone else.
    id: (u64, u64),
    size: u64,
    limits: Arc<Limits>,
}

impl Writer {
    pub fn open(dir: PathBuf, limits: Arc<Limits>) -> Result<Self, String> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("cannot create the state dir {}: {e}", dir.display()))?;
        let (file, id, size) = open_current(&dir)?;
        Ok(Self {
            dir,
            file,
            id,
            size,
            limits,
        })
    }

    /// Whether appending `len` bytes would rotate the file first.
    pub fn would_rotate(&self, len: usize) -> bool {
        self.size > 0 && self.size.saturating_add(len as u64) > self.limits.max_size()
    }

    /// Appends whole lines (one `write`), rotating first when they would not fit.
    pub fn append(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        if self.would_rotate(line.len()) {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size += len;
        Ok(())
    }

    /// Reopens the file when `audit.jsonl` is no longer the file we write (deleted or moved
    /// aside by hand): lines must land where `rolecall audit` reads.
    pub fn check_replaced(&mut self) {
        let current = std::fs::symlink_metadata(file_path(&self.dir, 0))
            .map(|m| (m.dev(), m.ino()))
            .ok();
        if current != Some(self.id) {
            if let Err(e) = self.reopen() {
                tracing::error!(error = %e, "cannot reopen the audit log");
            }
        }
    }

    fn reopen(&mut self) -> io::Result<()> {
        let (file, id, size) = open_current(&self.dir).map_err(io::Error::other)?;
        self.file = file;
        self.id = id;
        self.size = size;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let files = self.limits.files();
        // Files beyond the bound (left by a larger `audit_files` before) go first.
        for n in files..files.saturating_add(16) {
            remove_if_present(&file_path(&self.dir, n))?;
        }
        for n in (1..files).rev() {
            match std::fs::rename(file_path(&self.dir, n - 1), file_path(&self.dir, n)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if files == 1 {
            remove_if_present(&file_path(&self.dir, 0))?;
        }
        self.reopen()
    }
}

fn remove_if_present(p: &std::path::Path) -> io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Opens (creating) `audit.jsonl` for appending and checks it is a regular file of ours with no
/// access for others (a wider mode is narrowed: it is our file).
fn open_current(dir: &std::path::Path) -> Result<(File, (u64, u64), u64), String> {
    let path = file_path(dir, 0);
    let shown = path.display();
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| format!("cannot open the audit log {shown}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot inspect the audit log {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("the audit log {shown} is not a regular file"));
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(format!(
            "the audit log {shown} belongs to uid {}, not to us (uid {me})",
            meta.uid()
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot restrict the audit log {shown}: {e}"))?;
    }
    Ok((file, (meta.dev(), meta.ino()), meta.len()))
}
