//! The AWS CLI v2 SSO token cache, `~/.aws/sso/cache/<sha1 hex>.json` (docs/interop.md).
//!
//! The file name is the SHA-1 of the `sso-session` name, or of the start URL for legacy
//! profiles without a session (botocore's `SSOTokenLoader`). A token file holds
//! `startUrl`, `region`, `accessToken`, `expiresAt`, and, when the session can be renewed,
//! `refreshToken`, `clientId`, `clientSecret`, `registrationExpiresAt` — the registration is
//! cached alongside the token because a refresh must use the client that got it. Timestamps
//! are RFC 3339 UTC with `Z` (botocore writes `%Y-%m-%dT%H:%M:%SZ`). The same directory holds
//! the CLI's client registrations (`clientId`, `clientSecret`, `expiresAt`, optional `scopes`,
//! no `accessToken`) and other tools' tokens.
//!
//! Token files carry no scopes; the registration that issued them may. A token is taken only
//! when the scopes recorded for it — its own `scopes`, else those of the registration in the
//! directory with its `clientId` — include `sso:account:access`; with nothing recorded (the
//! legacy flow registers without scopes, and such tokens reach the portal) it is taken.

use rolecall_proto::timefmt;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Files larger than this are not token files (they are a few hundred bytes).
const MAX_FILE: u64 = 64 * 1024;
/// A directory with more entries than this is read only this far.
const MAX_ENTRIES: usize = 500;

/// One token as the cache file holds it.
#[derive(Clone, Default)]
pub struct CachedToken {
    pub start_url: String,
    pub region: String,
    pub access_token: Zeroizing<String>,
    /// Epoch seconds.
    pub expires_at: i64,
    pub refresh_token: Option<Zeroizing<String>>,
    pub client_id: Option<String>,
    pub client_secret: Option<Zeroizing<String>>,
    /// Epoch seconds.
    pub registration_expires_at: Option<i64>,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("start_url", &self.start_url)
            .field("region", &self.region)
            .field("expires_at", &self.expires_at)
            .field("refreshable", &self.refresh_token.is_some())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl CachedToken {
    /// Whether it can be renewed without the user at `now`.
    pub fn refreshable(&self, now: i64) -> bool {
        self.refresh_token.is_some()
            && self.client_id.is_some()
            && self.client_secret.is_some()
            && self.registration_expires_at.is_some_and(|e| e > now)
    }
}

/// The JSON of a cache file: token and registration fields, all optional.
#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(skip_serializing_if = "Option::is_none")]
    start_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
}

impl Drop for Wire {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for s in [
            &mut self.access_token,
            &mut self.refresh_token,
            &mut self.client_secret,
        ]
        .into_iter()
        .flatten()
        {
            s.zeroize();
        }
    }
}

/// `$HOME/.aws/sso/cache` (botocore has no variable to move it).
pub fn cache_dir(home: Option<&str>) -> Option<PathBuf> {
    home.filter(|h| !h.is_empty())
        .map(|h| Path::new(h).join(".aws/sso/cache"))
}

/// `<sha1 hex of key>.json`: key is the sso-session name, or the start URL without one.
pub fn file_name(key: &str) -> String {
    format!("{}.json", hex::encode(Sha1::digest(key.as_bytes())))
}

/// Start URLs compare without a trailing `/` or `#/` (the portal is written both ways).
pub fn same_start_url(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> &str {
        s.trim()
            .trim_end_matches('/')
            .trim_end_matches('#')
            .trim_end_matches('/')
    }
    norm(a) == norm(b)
}

/// AWS CLI timestamps: RFC 3339 (`Z`, offset, fraction), or the `…UTC` some old writers used.
fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    match s.strip_suffix("UTC") {
        Some(base) => timefmt::parse_rfc3339(&format!("{base}Z")),
        None => timefmt::parse_rfc3339(s),
    }
}

/// Reads one file without following a symlink; a file of another user, too large, or not
/// JSON is no cache file.
fn read_wire(path: &Path) -> Option<Wire> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE || meta.uid() != nix::unistd::geteuid().as_raw() {
        return None;
    }
    let mut text = Zeroizing::new(String::new());
    f.take(MAX_FILE).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn token_of(w: &Wire) -> Option<CachedToken> {
    Some(CachedToken {
        start_url: w.start_url.clone()?,
        region: w.region.clone()?,
        access_token: Zeroizing::new(w.access_token.clone()?),
        expires_at: parse_time(w.expires_at.as_deref()?)?,
        refresh_token: w.refresh_token.clone().map(Zeroizing::new),
        client_id: w.client_id.clone(),
        client_secret: w.client_secret.clone().map(Zeroizing::new),
        registration_expires_at: w.registration_expires_at.as_deref().and_then(parse_time),
    })
}

/// A token file found in the cache.
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub token: CachedToken,
}

/// What to look for.
pub struct Wanted<'a> {
    pub start_url: &'a str,
    pub region: &'a str,
    /// The file tried first (the shared session's).
    pub preferred: &'a str,
    /// Tokens not to take (SHA-256 fingerprints of access tokens a session ended with).
    pub refused: &'a [String],
    pub now: i64,
    /// Only tokens that expire after this (the one in use) are of interest.
    pub better_than: i64,
}

/// SHA-256 of an access token, hex: how a refused token is remembered without keeping it.
pub fn fingerprint(access_token: &str) -> String {
    use sha2::Sha256;
    hex::encode(Sha256::digest(access_token.as_bytes()))
}

/// The best usable token for the start URL and region: the preferred file's when it is
/// usable, else the one that lasts longest. Usable: scopes allow the portal, and it is either
/// still valid for a minute or renewable.
pub fn find(dir: &Path, want: &Wanted) -> Option<Found> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut tokens = Vec::new();
    // clientId → recorded scopes, from registration files.
    let mut registration_scopes = std::collections::HashMap::new();
    for entry in entries.take(MAX_ENTRIES).flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with(".json") {
            continue;
        }
        let path = entry.path();
        let Some(w) = read_wire(&path) else { continue };
        if w.access_token.is_none() {
            if let (Some(id), Some(scopes)) = (&w.client_id, &w.scopes) {
                registration_scopes.insert(id.clone(), scopes.clone());
            }
            continue;
        }
        let own_scopes = w.scopes.clone();
        if let Some(t) = token_of(&w) {
            tokens.push((name == want.preferred, path, t, own_scopes));
        }
    }
    let usable = |t: &CachedToken, scopes: Option<&Vec<String>>| {
        same_start_url(&t.start_url, want.start_url)
            && t.region == want.region
            && scopes.is_none_or(|s| s.iter().any(|s| s == super::SCOPE))
            && !want.refused.contains(&fingerprint(&t.access_token))
            && (t.expires_at - 60 > want.now || t.refreshable(want.now))
            && t.expires_at > want.better_than
    };
    tokens
        .into_iter()
        .filter(|(_, _, t, own)| {
            let recorded = own.as_ref().or_else(|| {
                t.client_id
                    .as_ref()
                    .and_then(|id| registration_scopes.get(id))
            });
            usable(t, recorded)
        })
        .max_by_key(|(preferred, _, t, _)| (*preferred, t.expires_at))
        .map(|(_, path, token, _)| Found { path, token })
}

/// Writes `token` as `dir/name` the way the AWS CLI does, but atomically: a new 0600 file
/// (never through a symlink) renamed over the old one. Creates `dir` (0700) when missing.
pub fn write(dir: &Path, name: &str, token: &CachedToken) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let wire = Wire {
        start_url: Some(token.start_url.clone()),
        region: Some(token.region.clone()),
        access_token: Some(token.access_token.to_string()),
        expires_at: Some(timefmt::rfc3339(token.expires_at)),
        refresh_token: token.refresh_token.as_ref().map(|s| s.to_string()),
        client_id: token.client_id.clone(),
        client_secret: token.client_secret.as_ref().map(|s| s.to_string()),
        registration_expires_at: token.registration_expires_at.map(timefmt::rfc3339),
        scopes: None,
    };
    let text = Zeroizing::new(serde_json::to_string(&wire).map_err(std::io::Error::other)?);
    let tmp = dir.join(format!(
        ".{name}.rolecall-{}-{}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut f: File = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        // rename replaces a symlink at the target instead of writing through it.
        std::fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes `dir/name` when it still holds the token with this access token (a logout must not
/// delete a session the AWS CLI started since).
pub fn remove_if_holds(dir: &Path, name: &str, access_token: &str) {
    let path = dir.join(name);
    if let Some(w) = read_wire(&path) {
        if w.access_token.as_deref() == Some(access_token) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const URL: &str = "https://d-1.awsapps.com/start";

    fn token(access: &str, expires_at: i64) -> CachedToken {
        CachedToken {
            start_url: URL.into(),
            region: "eu-west-1".into(),
            access_token: Zeroizing::new(access.into()),
            expires_at,
            refresh_token: Some(Zeroizing::new("r".into())),
            client_id: Some("cid".into()),
            client_secret: Some(Zeroizing::new("cs".into())),
            registration_expires_at: Some(expires_at + 86_400),
        }
    }

    fn want<'a>(preferred: &'a str, refused: &'a [String]) -> Wanted<'a> {
        Wanted {
            start_url: URL,
            region: "eu-west-1",
            preferred,
            refused,
            now: 1_000_000,
            better_than: 0,
        }
    }

    #[test]
    fn file_names_are_botocores() {
        // Python: hashlib.sha1(name.encode("utf-8")).hexdigest()
        assert_eq!(
            file_name("my-sso"),
            "0ad374308c5a4e22f723adf10145eafad7c4031c.json"
        );
        assert_eq!(
            file_name(URL),
            "0c54b6c27e90660baa89eaad85ac1d5dae26cb7d.json"
        );
    }

    #[test]
    fn writes_what_botocore_reads_and_reads_it_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sso/cache");
        write(&dir, &file_name("s"), &token("a1", 1_000_000 + 3600)).unwrap();
        let path = dir.join(file_name("s"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["expiresAt"], "1970-01-12T14:46:40Z");
        assert_eq!(v["registrationExpiresAt"], "1970-01-13T14:46:40Z");
        assert_eq!(v["startUrl"], URL);
        for k in [
            "accessToken",
            "refreshToken",
            "clientId",
            "clientSecret",
            "region",
        ] {
            assert!(v.get(k).is_some(), "{k} missing: {v}");
        }
        let f = find(&dir, &want(&file_name("s"), &[])).unwrap();
        assert_eq!(f.token.access_token.as_str(), "a1");
        // No temp file left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn a_symlink_is_replaced_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        let dir = tmp.path().join("cache");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&target, dir.join(file_name("s"))).unwrap();
        assert!(find(&dir, &want(&file_name("s"), &[])).is_none());
        write(&dir, &file_name("s"), &token("a", 1_000_000 + 3600)).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert!(!std::fs::symlink_metadata(dir.join(file_name("s")))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    fn put(dir: &Path, name: &str, v: serde_json::Value) {
        std::fs::write(dir.join(name), v.to_string()).unwrap();
    }

    #[test]
    fn chooses_by_scope_start_url_region_and_life() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let now = 1_000_000;
        let t = |access: &str, client: &str, exp: i64| {
            serde_json::json!({
                "startUrl": format!("{URL}/"), "region": "eu-west-1", "accessToken": access,
                "expiresAt": timefmt::rfc3339(exp), "refreshToken": "r", "clientId": client,
                "clientSecret": "s", "registrationExpiresAt": "1970-02-01T00:00:00.000Z"
            })
        };
        // A longer-lived token from a registration whose scopes lack the portal's.
        put(dir, "q.json", t("other-tool", "qclient", now + 9000));
        put(
            dir,
            "qreg.json",
            serde_json::json!({"clientId": "qclient", "clientSecret": "x",
                "expiresAt": "1970-02-01T00:00:00Z", "scopes": ["codewhisperer:completions"]}),
        );
        // Another region and another start URL.
        let mut r = t("wrong-region", "c", now + 8000);
        r["region"] = "us-east-1".into();
        put(dir, "r.json", r);
        let mut u = t("wrong-url", "c", now + 8000);
        u["startUrl"] = "https://d-2.awsapps.com/start".into();
        put(dir, "u.json", u);
        // The right ones: a legacy one without scopes recorded, and one whose scopes allow it.
        put(dir, "legacy.json", t("legacy", "lclient", now + 3000));
        put(dir, "good.json", t("good", "gclient", now + 4000));
        put(
            dir,
            "greg.json",
            serde_json::json!({"clientId": "gclient", "clientSecret": "x",
                "expiresAt": "1970-02-01T00:00:00Z", "scopes": ["sso:account:access"]}),
        );
        let pick = |preferred: &str, refused: &[String]| {
            find(dir, &want(preferred, refused))
                .map(|f| f.token.access_token.to_string())
                .unwrap_or_default()
        };
        assert_eq!(pick("none.json", &[]), "good");
        // The shared session's own file wins over a longer-lived other.
        assert_eq!(pick("legacy.json", &[]), "legacy");
        // A refused token is skipped.
        assert_eq!(pick("none.json", &[fingerprint("good")]), "legacy");
        // Only tokens lasting longer than the one in use are of interest.
        let mut w = want("none.json", &[]);
        w.better_than = now + 5000;
        assert!(find(dir, &w).is_none());
        // An expired token that cannot be renewed is no use.
        put(
            dir,
            "good.json",
            serde_json::json!({"startUrl": URL, "region": "eu-west-1",
                "accessToken": "old", "expiresAt": "1970-01-01T00:00:00UTC"}),
        );
        assert_eq!(pick("good.json", &[]), "legacy");
    }
}
