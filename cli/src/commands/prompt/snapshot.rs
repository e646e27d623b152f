//! Reads one profile out of the daemon's status snapshot without building the whole document,
//! and the daemon's per-profile entry files (the shortcut that avoids the snapshot).
//!
//! After `populate` the snapshot holds hundreds of profiles (~170 KB for 900), and this runs on
//! every prompt: a general JSON parser skipping the others cost more than the process start.
//! So a small structural scanner walks the document (strings, escapes, nesting, the closing
//! brace and nothing after it), and only the wanted profile's object goes through serde_json,
//! which checks it fully. A truncated, unbalanced or non-object document is rejected.

use rolecall_proto::snapshot::{PromptEntry, SnapshotProfile};
use std::io::Read;
use std::path::Path;

/// What the prompt needs from the snapshot: who wrote it, and the one profile.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub pid: u32,
    pub profile: Option<SnapshotProfile>,
}

/// Reads `path` and extracts `profile`. `None` when the file is missing, too large, or not a
/// snapshot (corrupt, truncated, another format).
pub fn read_profile(path: &Path, profile: &str, max_bytes: u64) -> Option<Found> {
    parse_profile(&read_bounded(path, max_bytes)?, profile)
}

/// The daemon's per-profile entry (`rolecall_proto::paths::prompt_entry_path`): `None` when
/// missing, larger than `max_bytes` or not an entry.
pub fn read_entry(path: &Path, max_bytes: u64) -> Option<Found> {
    let e: PromptEntry = serde_json::from_slice(&read_bounded(path, max_bytes)?).ok()?;
    (e.pid != 0).then_some(Found {
        pid: e.pid,
        profile: Some(e.profile),
    })
}

/// The whole file, unless it is (or grows while read to be) larger than `max_bytes`.
fn read_bounded(path: &Path, max_bytes: u64) -> Option<Vec<u8>> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len > max_bytes {
        return None;
    }
    // Sized from the metadata so that the usual case is one read plus the one that sees EOF
    // (`read_to_end` through `take` probes in growing chunks: five reads for 170 KB).
    let mut buf = vec![0u8; len as usize + 1];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if buf.len() as u64 > max_bytes {
                return None;
            }
            buf.resize((buf.len() * 2).min(max_bytes as usize + 1), 0);
        }
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    buf.truncate(filled);
    (filled as u64 <= max_bytes).then_some(buf)
}

/// Parses a snapshot document, keeping only `profile`.
pub fn parse_profile(json: &[u8], profile: &str) -> Option<Found> {
    let mut s = Scanner { b: json, i: 0 };
    let mut found = Found::default();
    let mut saw_pid = false;
    s.object(|s, key| {
        match key {
            Key::Plain(b"pid") => {
                let (start, end) = s.value()?;
                found.pid = std::str::from_utf8(&s.b[start..end]).ok()?.parse().ok()?;
                saw_pid = true;
            }
            Key::Plain(b"profiles") => {
                s.ws();
                if s.peek()? != b'{' {
                    return None;
                }
                s.object(|s, name| {
                    let (start, end) = s.value()?;
                    if found.profile.is_none() && name.is(profile) {
                        found.profile = Some(serde_json::from_slice(&s.b[start..end]).ok()?);
                    }
                    Some(())
                })?;
            }
            _ => {
                s.value()?;
            }
        }
        Some(())
    })?;
    s.ws();
    if s.i != json.len() || !saw_pid || found.pid == 0 {
        // Trailing bytes, no pid (staleness cannot be checked), or pid 0.
        return None;
    }
    Some(found)
}

/// Whether the daemon that wrote the snapshot still runs (as this user: a pid that now belongs
/// to another user's process answers EPERM and is not our daemon).
pub fn daemon_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for the process's existence and our permission.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// An object key as it appears in the document.
enum Key<'a> {
    /// No escapes: the bytes are the key.
    Plain(&'a [u8]),
    /// With escapes: the quoted JSON string, decoded only when compared.
    Escaped(&'a [u8]),
}

impl Key<'_> {
    fn is(&self, want: &str) -> bool {
        match self {
            Key::Plain(b) => *b == want.as_bytes(),
            Key::Escaped(q) => serde_json::from_slice::<String>(q).is_ok_and(|k| k == want),
        }
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    /// At `"`: moves past the closing quote; returns (start of content, end, had escapes).
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        // Snapshot strings are short (names, ids): a plain loop beats a SIMD search here.
        let b = self.b;
        let mut i = self.i;
        loop {
            match *b.get(i)? {
                b'"' => {
                    self.i = i + 1;
                    return Some((start, i, escaped));
                }
                b'\\' => {
                    escaped = true;
                    i += 2;
                }
                _ => i += 1,
            }
        }
    }

    /// Skips one value; returns its byte range.
    fn value(&mut self) -> Option<(usize, usize)> {
        self.ws();
        let start = self.i;
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                // Nesting as a bit stack of expected closers (1 = `}`), so `{]` is caught
                // without allocating; deeper than 64 levels is not a snapshot.
                let (mut kinds, mut depth) = (0u64, 0u32);
                loop {
                    match *self.b.get(self.i)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        c @ (b'{' | b'[') => {
                            if depth == 64 {
                                return None;
                            }
                            kinds = (kinds << 1) | u64::from(c == b'{');
                            depth += 1;
                        }
                        c @ (b'}' | b']') => {
                            if depth == 0 || (kinds & 1 == 1) != (c == b'}') {
                                return None;
                            }
                            kinds >>= 1;
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                // A number or literal: up to the next delimiter; must not be empty.
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
                ) {
                    self.i += 1;
                }
                if self.i == start {
                    return None;
                }
            }
        }
        Some((start, self.i))
    }

    /// At `{`: calls `each` with the scanner just after each key's `:`; `each` must consume
    /// the value. Moves past the closing `}`.
    fn object(&mut self, mut each: impl FnMut(&mut Self, Key<'a>) -> Option<()>) -> Option<()> {
        self.ws();
        if self.peek()? != b'{' {
            return None;
        }
        self.i += 1;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            let (start, end, escaped) = self.string()?;
            let b: &'a [u8] = self.b;
            let key = if escaped {
                Key::Escaped(&b[start - 1..=end])
            } else {
                Key::Plain(&b[start..end])
            };
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            each(self, key)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"pid":4242,"written_at":1795341600,"profiles":{
        "a":{"role":"R","account":"111111111111","expires":10},
        "dev-admin":{"account":"222222222222","account_name":"Prod","role":"Admin","region":"eu-west-1","expires":1795345200,"needs_login":false},
        "z\"q":{"role":"X","future_field":[1,2,{"n":null}]}
    },"future_top":{"x":1}}"#;

    #[test]
    fn extracts_only_the_wanted_profile() {
        let f = parse_profile(DOC.as_bytes(), "dev-admin").unwrap();
        assert_eq!(f.pid, 4242);
        let p = f.profile.unwrap();
        assert_eq!(p.account_name.as_deref(), Some("Prod"));
        assert_eq!(p.expires, Some(1_795_345_200));
        assert_eq!(p.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn escaped_keys_match_and_unknown_profiles_are_none() {
        let f = parse_profile(DOC.as_bytes(), "z\"q").unwrap();
        assert_eq!(f.profile.unwrap().role, "X");
        let f = parse_profile(DOC.as_bytes(), "nope").unwrap();
        assert_eq!(f.profile, None);
    }

    #[test]
    fn agrees_with_the_full_parser() {
        let full: rolecall_proto::snapshot::Snapshot = serde_json::from_str(DOC).unwrap();
        for (name, p) in &full.profiles {
            let f = parse_profile(DOC.as_bytes(), name).unwrap();
            assert_eq!(f.profile.as_ref(), Some(p), "{name}");
        }
    }

    #[test]
    fn corrupt_truncated_or_pidless_documents_are_rejected() {
        for bad in [
            "",
            "{",
            &DOC[..DOC.len() - 3],
            "[]",
            r#"{"profiles":{}}"#,
            r#"{"pid":0,"profiles":{}}"#,
            r#"{"pid":"12","profiles":{}}"#,
            r#"{"pid":12,"profiles":{"dev-admin":{"account":"1"}}}"#,
            r#"{"pid":12,"profiles":[]} trailing"#,
            r#"{"pid":12,"profiles":{"a":{"role":"x"]}}"#,
            r#"{"pid":12,"profiles":{"a":{"role":"x"}}"#,
            r#"{"pid":12 "profiles":{}}"#,
            r#"{"pid":12,"profiles":{"dev-admin":{"role":"x",}}}"#,
            r#"{"pid":12,"x":,"profiles":{}}"#,
            r#"{"pid":12,"x":[{]}],"profiles":{}}"#,
        ] {
            assert_eq!(parse_profile(bad.as_bytes(), "dev-admin"), None, "{bad:?}");
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = format!(
            r#"{{"pid":1,"x":{}{},"profiles":{{}}}}"#,
            "[".repeat(64),
            "]".repeat(64)
        );
        assert!(parse_profile(deep.as_bytes(), "a").is_some());
        let deeper = format!(
            r#"{{"pid":1,"x":{}{},"profiles":{{}}}}"#,
            "[".repeat(65),
            "]".repeat(65)
        );
        assert!(parse_profile(deeper.as_bytes(), "a").is_none());
    }

    #[test]
    fn oversized_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        std::fs::write(&path, DOC).unwrap();
        assert!(read_profile(&path, "dev-admin", 1 << 20).is_some());
        assert!(read_profile(&path, "dev-admin", 16).is_none());
        assert!(read_profile(&dir.path().join("missing"), "dev-admin", 1 << 20).is_none());
    }

    #[test]
    fn entries_are_read_and_bad_ones_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev-admin");
        std::fs::write(
            &path,
            r#"{"pid":77,"profile":{"role":"Admin","expires":5}}"#,
        )
        .unwrap();
        let f = read_entry(&path, 4096).unwrap();
        assert_eq!(f.pid, 77);
        assert_eq!(f.profile.unwrap().role, "Admin");
        assert!(read_entry(&path, 16).is_none());
        for bad in [
            "",
            "{",
            r#"{"pid":0,"profile":{"role":"A"}}"#,
            r#"{"pid":7}"#,
            r#"{"pid":7,"profile":{"role":"A"}} x"#,
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(read_entry(&path, 4096).is_none(), "{bad:?}");
        }
        assert!(read_entry(&dir.path().join("missing"), 4096).is_none());
    }

    #[test]
    fn bounded_reads_see_the_whole_file_and_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        std::fs::write(&path, &data).unwrap();
        assert_eq!(read_bounded(&path, 100_000).unwrap(), data);
        assert!(read_bounded(&path, 99_999).is_none());
        std::fs::write(&path, b"").unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap(), b"");
        // A directory opens but cannot be read.
        assert!(read_bounded(dir.path(), 10).is_none());
    }

    #[test]
    fn liveness_follows_kill_zero() {
        assert!(daemon_alive(std::process::id()));
        assert!(!daemon_alive(0));
        assert!(!daemon_alive(u32::MAX));
        // A child that has exited and been reaped no longer exists.
        let mut child = crate::spawn::command("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!daemon_alive(pid));
    }
}

#[cfg(test)]
mod timing {
    /// `cargo test --release -p rolecall --bin rolecall snapshot_scan_speed -- --ignored --nocapture`
    #[test]
    #[ignore = "a timing probe, not a check"]
    fn snapshot_scan_speed() {
        let mut doc = String::from("{\"pid\":1,\"written_at\":1,\"profiles\":{");
        for a in 0..300 {
            for s in 0..3 {
                if a + s > 0 {
                    doc.push(',');
                }
                doc.push_str(&format!(
                    "\"generated-{:04}.GeneratedSet{:02}\":{{\"account\":\"{:012}\",\"account_name\":\"generated-{:04}\",\"role\":\"GeneratedSet{:02}\",\"region\":\"eu-west-1\",\"expires\":1795345200,\"needs_login\":false}}",
                    a + 1, s + 1, 500_000_000_000u64 + a as u64, a + 1, s + 1
                ));
            }
        }
        doc.push_str("}}");
        let t = crate::clock::monotonic();
        for _ in 0..1000 {
            assert!(
                super::parse_profile(doc.as_bytes(), "generated-0150.GeneratedSet02")
                    .unwrap()
                    .profile
                    .is_some()
            );
        }
        eprintln!("{} bytes: {:?} per scan", doc.len(), t.elapsed() / 1000);
    }
}
