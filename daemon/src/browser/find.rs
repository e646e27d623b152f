//! Which browser to start: the configured `browser`, else the first Chromium-family browser
//! found (Edge, Chrome, Chromium, Brave) for this platform.

use super::BrowserError;
use std::path::{Path, PathBuf};

/// Names looked up on PATH (Linux and other Unixes), in order of preference.
pub const PATH_NAMES: &[&str] = &[
    "microsoft-edge",
    "microsoft-edge-stable",
    "google-chrome",
    "google-chrome-stable",
    "chromium",
    "chromium-browser",
    "brave-browser",
];

/// macOS application bundles, in order of preference.
pub const MACOS_APPS: &[&str] = &[
    "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Brave Browser.app/Contents/MacOS/Brave Browser",
];

// Windows (planned, not built: Chromium takes `--remote-debugging-io-pipes` there):
// %ProgramFiles(x86)%\Microsoft\Edge\Application\msedge.exe,
// %ProgramFiles%\Google\Chrome\Application\chrome.exe,
// %LocalAppData%\Chromium\Application\chrome.exe,
// %ProgramFiles%\BraveSoftware\Brave-Browser\Application\brave.exe.

/// The browser to use. `path_var` is the daemon's PATH (from its environment snapshot).
pub fn find_browser(
    configured: Option<&Path>,
    path_var: Option<&str>,
) -> Result<PathBuf, BrowserError> {
    if let Some(p) = configured {
        if p.components().count() == 1 && !p.is_absolute() {
            // A bare name: look it up on PATH like a shell would.
            if let Some(found) = on_path(&p.to_string_lossy(), path_var) {
                return Ok(found);
            }
        } else if is_executable(p) {
            return Ok(p.to_path_buf());
        }
        return Err(BrowserError::NotFound(format!(
            "the browser {} (setting `browser`) does not exist or is not executable",
            p.display()
        )));
    }
    if cfg!(target_os = "macos") {
        if let Some(p) = MACOS_APPS.iter().map(Path::new).find(|p| is_executable(p)) {
            return Ok(p.to_path_buf());
        }
    }
    for name in PATH_NAMES {
        if let Some(found) = on_path(name, path_var) {
            return Ok(found);
        }
    }
    Err(BrowserError::NotFound(
        "no Chromium-family browser found (Edge, Chrome, Chromium or Brave): install one, set \
         `browser` in the source's config to its path, or use: rolecall login <source> --paste"
            .into(),
    ))
}

fn on_path(name: &str, path_var: Option<&str>) -> Option<PathBuf> {
    std::env::split_paths(path_var?)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn exe(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn preference_order_and_configured_paths() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        exe(&a, "chromium");
        let chrome = exe(&b, "google-chrome");
        let path = format!("{}:{}", a.display(), b.display());
        assert_eq!(find_browser(None, Some(&path)).unwrap(), chrome);
        assert_eq!(
            find_browser(Some(Path::new("chromium")), Some(&path)).unwrap(),
            a.join("chromium")
        );
        let e = find_browser(Some(&t.path().join("nope")), Some(&path))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`browser`") && e.contains("nope"), "{e}");
        // Not executable: refused.
        std::fs::write(t.path().join("plain"), "").unwrap();
        assert!(find_browser(Some(&t.path().join("plain")), None).is_err());
        if !cfg!(target_os = "macos") {
            let e = find_browser(None, Some("/nonexistent"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("`browser`") && e.contains("--paste"), "{e}");
            assert!(find_browser(None, None).is_err());
        }
    }
}
