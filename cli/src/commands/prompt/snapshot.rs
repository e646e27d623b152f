//! Reads one profile out of the daemon's status snapshot without building the whole document:
//! the other profiles (hundreds after `populate`) are skipped by the parser, not allocated.

use rolecall_proto::snapshot::SnapshotProfile;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::fmt;
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
    let file = std::fs::File::open(path).ok()?;
    let mut buf = Vec::with_capacity(4096);
    // `take` bounds the read even if the file grows while we read it.
    file.take(max_bytes + 1).read_to_end(&mut buf).ok()?;
    if buf.len() as u64 > max_bytes {
        return None;
    }
    parse_profile(&buf, profile)
}

/// Parses a snapshot document, keeping only `profile`.
pub fn parse_profile(json: &[u8], profile: &str) -> Option<Found> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let found = TopSeed { wanted: profile }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    // A snapshot without its writer's pid cannot be checked for staleness.
    (found.pid != 0).then_some(found)
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

struct TopSeed<'w> {
    wanted: &'w str,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = Found;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Found, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = Found;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a rolecall status snapshot")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let mut found = Found::default();
        let mut saw_pid = false;
        while let Some(key) = map.next_key_seed(KeySeed(&["pid", "profiles"]))? {
            match key {
                Some(0) => {
                    found.pid = map.next_value()?;
                    saw_pid = true;
                }
                Some(1) => {
                    found.profile = map.next_value_seed(ProfilesSeed {
                        wanted: self.wanted,
                    })?
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_pid {
            return Err(serde::de::Error::missing_field("pid"));
        }
        Ok(found)
    }
}

struct ProfilesSeed<'w> {
    wanted: &'w str,
}

impl<'de> DeserializeSeed<'de> for ProfilesSeed<'_> {
    type Value = Option<SnapshotProfile>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ProfilesSeed<'_> {
    type Value = Option<SnapshotProfile>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of profiles")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let wanted = [self.wanted];
        let mut out = None;
        while let Some(key) = map.next_key_seed(KeySeed(&wanted))? {
            if key.is_some() && out.is_none() {
                out = Some(map.next_value::<SnapshotProfile>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

/// Matches a map key against a few names without allocating it: `Some(index)` or `None`.
struct KeySeed<'k, 'w>(&'k [&'w str]);

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|k| *k == v))
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
        ] {
            assert_eq!(parse_profile(bad.as_bytes(), "dev-admin"), None, "{bad:?}");
        }
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
    fn liveness_follows_kill_zero() {
        assert!(daemon_alive(std::process::id()));
        assert!(!daemon_alive(0));
        assert!(!daemon_alive(u32::MAX));
        // A child that has exited and been reaped no longer exists.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!daemon_alive(pid));
    }
}
