//! Writes the prompt's status snapshot atomically (temp file + rename), 0600, and beside it one
//! small file per profile (`<runtime>/prompt/<name>`, a `PromptEntry`) so that `rolecall prompt`
//! reads a few hundred bytes instead of the whole snapshot. Only entries whose content changed
//! are rewritten, so a refresh of one profile touches one entry file.

use rolecall_proto::paths::{prompt_entry_name, PROMPT_DIR_NAME};
use rolecall_proto::snapshot::{PromptEntry, Snapshot};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct SnapshotWriter {
    path: PathBuf,
    entries_dir: PathBuf,
    // Serialises writers (they share temp file names) and remembers what the entry files hold.
    state: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    /// The entries dir has been emptied of an earlier daemon's files.
    cleared: bool,
    /// Profile name -> what its entry file holds.
    written: HashMap<String, PromptEntry>,
}

impl SnapshotWriter {
    pub fn new(path: PathBuf) -> Self {
        let entries_dir = path
            .parent()
            .unwrap_or(Path::new("."))
            .join(PROMPT_DIR_NAME);
        Self {
            path,
            entries_dir,
            state: Mutex::new(Entries::default()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the snapshot; a reader sees the old or the new file, never a partial one. The
    /// entry files are updated first: a failure there only costs the prompt its shortcut (it
    /// falls back to the snapshot), so it is not an error of the snapshot.
    pub fn write(&self, snap: &Snapshot) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.write_entries(&mut state, snap);
        let body = serde_json::to_vec(snap).map_err(std::io::Error::other)?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".tmp{}", std::process::id()));
        write_atomically(&PathBuf::from(tmp), &self.path, &body)
    }

    fn write_entries(&self, state: &mut Entries, snap: &Snapshot) {
        if !state.cleared {
            // An earlier daemon's entries may name profiles that no longer exist.
            remove_dir_files(&self.entries_dir);
            if let Err(e) = std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&self.entries_dir)
            {
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    tracing::warn!(error = %e, "cannot create the prompt entries directory");
                    return;
                }
                // Left by an earlier daemon, or made by someone else with other modes.
                if let Err(e) = std::fs::set_permissions(
                    &self.entries_dir,
                    std::fs::Permissions::from_mode(0o700),
                ) {
                    tracing::warn!(error = %e, "cannot make the prompt entries directory private");
                    return;
                }
            }
            state.cleared = true;
        }
        state.written.retain(|name, _| {
            let keep = snap.profiles.contains_key(name);
            if !keep {
                let _ = std::fs::remove_file(self.entries_dir.join(prompt_entry_name(name)));
            }
            keep
        });
        for (name, profile) in &snap.profiles {
            let entry = PromptEntry {
                pid: snap.pid,
                profile: profile.clone(),
            };
            // Compared as values: serialising 900 unchanged entries on every write is waste.
            if state.written.get(name) == Some(&entry) {
                continue;
            }
            let Ok(body) = serde_json::to_vec(&entry) else {
                continue;
            };
            let file = prompt_entry_name(name);
            let dest = self.entries_dir.join(&file);
            // Entry names never start with '.', so temp files cannot collide with entries.
            let tmp = self.entries_dir.join(format!(".{file}.tmp"));
            if write_atomically(&tmp, &dest, &body).is_ok() {
                state.written.insert(name.clone(), entry);
            } else {
                // A stale entry would outlive the profile's new state: remove it, so the
                // prompt reads the snapshot instead.
                let _ = std::fs::remove_file(&dest);
                state.written.remove(name);
            }
        }
    }

    /// Removes the snapshot and the entries (at shutdown: a prompt must not show a dead
    /// daemon's state).
    pub fn remove(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let _ = std::fs::remove_file(&self.path);
        remove_dir_files(&self.entries_dir);
        let _ = std::fs::remove_dir(&self.entries_dir);
        *state = Entries::default();
    }
}

/// Writes `body` to `tmp` (0600) and renames it over `dest`.
fn write_atomically(tmp: &Path, dest: &Path, body: &[u8]) -> std::io::Result<()> {
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(tmp)?;
        f.write_all(body)?;
        std::fs::rename(tmp, dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// Removes the plain files of `dir` (best effort; a missing dir is fine).
fn remove_dir_files(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rolecall_proto::snapshot::SnapshotProfile;

    fn profile(role: &str, expires: i64) -> SnapshotProfile {
        SnapshotProfile {
            account: Some("111111111111".into()),
            role: role.into(),
            expires: Some(expires),
            ..Default::default()
        }
    }

    fn entry(dir: &Path, name: &str) -> Option<PromptEntry> {
        let bytes = std::fs::read(dir.join("prompt").join(prompt_entry_name(name))).ok()?;
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn entries_follow_the_snapshot_and_stale_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        // A previous daemon's leftovers.
        std::fs::create_dir(dir.path().join("prompt")).unwrap();
        std::fs::write(dir.path().join("prompt/gone"), "{}").unwrap();
        let w = SnapshotWriter::new(dir.path().join("status.json"));

        let mut snap = Snapshot {
            pid: 4242,
            written_at: 1,
            profiles: [
                ("dev".to_owned(), profile("Dev", 100)),
                ("a/b".to_owned(), profile("Slash", 200)),
            ]
            .into(),
        };
        w.write(&snap).unwrap();
        assert!(!dir.path().join("prompt/gone").exists());
        let e = entry(dir.path(), "dev").unwrap();
        assert_eq!((e.pid, e.profile.clone()), (4242, profile("Dev", 100)));
        assert_eq!(entry(dir.path(), "a/b").unwrap().profile.role, "Slash");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("prompt")), 0o700);
        assert_eq!(mode(&dir.path().join("prompt/dev")), 0o600);

        // A refresh of one profile and the removal of another.
        snap.profiles.remove("a/b");
        snap.profiles.insert("dev".into(), profile("Dev", 300));
        w.write(&snap).unwrap();
        assert_eq!(entry(dir.path(), "dev").unwrap().profile.expires, Some(300));
        assert!(entry(dir.path(), "a/b").is_none());
        let names: Vec<_> = std::fs::read_dir(dir.path().join("prompt"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["dev"], "no temp files or stale entries remain");

        // The snapshot itself agrees with the entries.
        let full: Snapshot =
            serde_json::from_slice(&std::fs::read(dir.path().join("status.json")).unwrap())
                .unwrap();
        assert_eq!(full, snap);

        w.remove();
        assert!(!dir.path().join("status.json").exists());
        assert!(!dir.path().join("prompt").exists());
    }

    #[test]
    fn an_unchanged_entry_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let w = SnapshotWriter::new(dir.path().join("status.json"));
        let mut snap = Snapshot {
            pid: 7,
            written_at: 1,
            profiles: [("dev".to_owned(), profile("Dev", 100))].into(),
        };
        w.write(&snap).unwrap();
        // Replaced behind the writer's back: an unchanged profile leaves the file alone...
        let path = dir.path().join("prompt/dev");
        std::fs::write(&path, "marker").unwrap();
        snap.written_at = 2;
        w.write(&snap).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"marker");
        // ...a changed one rewrites it.
        snap.profiles.insert("dev".into(), profile("Dev", 101));
        w.write(&snap).unwrap();
        assert_eq!(entry(dir.path(), "dev").unwrap().profile.expires, Some(101));
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// `cargo test -p rolecall-daemon --lib snapshot_entries_write_time -- --ignored --nocapture`
    #[test]
    #[ignore = "a timing probe, not a check"]
    fn snapshot_entries_write_time() {
        let dir = tempfile::tempdir().unwrap();
        let w = SnapshotWriter::new(dir.path().join("status.json"));
        let mut snap = Snapshot {
            pid: 1,
            written_at: 1,
            profiles: (0..900)
                .map(|i| {
                    let p = rolecall_proto::snapshot::SnapshotProfile {
                        account: Some(format!("{:012}", 500_000_000_000u64 + i)),
                        role: format!("GeneratedSet{:02}", i % 3),
                        expires: Some(1_795_345_200),
                        ..Default::default()
                    };
                    (format!("generated-{i:04}"), p)
                })
                .collect(),
        };
        let t = crate::clock::monotonic();
        w.write(&snap).unwrap();
        let first = t.elapsed();
        snap.profiles.get_mut("generated-0007").unwrap().expires = Some(1);
        let t = crate::clock::monotonic();
        w.write(&snap).unwrap();
        eprintln!(
            "900 profiles: first write {first:?}, one changed profile {:?}",
            t.elapsed()
        );
    }
}
