//! Replays every committed fuzz input (the minimized corpus in `fuzz/corpus/<target>/` and
//! the regression inputs in `fuzz/regressions/<target>/`) through the targets' bodies. CI runs
//! this on stable Rust in seconds; the fuzzing itself is `tests/benches/fuzz.sh`.

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn replay(target: &str) {
    let (_, run) = rolecall_fuzz_targets::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let mut files = inputs(&fuzz_dir().join("corpus").join(target));
    let corpus = files.len();
    files.extend(inputs(&fuzz_dir().join("regressions").join(target)));
    assert!(corpus > 0, "no committed corpus for {target}");
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", f.display());
    }
    eprintln!("{target}: {} inputs replayed", files.len());
}

#[test]
fn saml_response() {
    replay("saml_response");
}

#[test]
fn config_parse() {
    replay("config_parse");
}

#[test]
fn socket_request() {
    replay("socket_request");
}

#[test]
fn container_request() {
    replay("container_request");
}

#[test]
fn start_url() {
    replay("start_url");
}

#[test]
fn awsconfig_block() {
    replay("awsconfig_block");
}

/// Every target has a test above and a corpus directory.
#[test]
fn every_target_is_replayed() {
    let this = include_str!("replay.rs");
    for (name, _) in rolecall_fuzz_targets::TARGETS {
        assert!(
            this.contains(&format!("fn {name}()")),
            "{name} has no replay test"
        );
    }
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    std::fs::read(fuzz_dir().join("corpus").join(target).join(name)).unwrap()
}

/// The targets reach what they claim to: the container seeds get credentials only with the
/// token, the IMDS ones only with the session token.
#[test]
fn container_seeds_reach_the_credentials() {
    use rolecall_fuzz_targets::container_request::answer;
    // The target half-closes its connections; hyper may then drop an answer in flight (an
    // empty reply), so a seed gets a few tries to be answered at all.
    let status = |name: &str| {
        let input = seed("container_request", name);
        let reply = (0..10)
            .map(|_| answer(&input))
            .find(|r| !r.is_empty())
            .unwrap_or_default();
        String::from_utf8_lossy(&reply[..12.min(reply.len())]).into_owned()
    };
    assert_eq!(status("seed-ecs"), "HTTP/1.1 200");
    assert_eq!(status("seed-pod"), "HTTP/1.1 200");
    assert_eq!(status("seed-ecs-notoken"), "HTTP/1.1 401");
    assert_eq!(status("seed-ecs-origin"), "HTTP/1.1 403");
    assert_eq!(status("seed-imds-creds"), "HTTP/1.1 200");
    assert_eq!(status("seed-imds-v1"), "HTTP/1.1 401");
}

/// The signed SAML seed passes every check, signature included, and a forgery does not.
#[test]
fn saml_seeds_reach_the_signature_check() {
    use rolecall_daemon::saml::response::{Checked, SamlError};
    use rolecall_fuzz_targets::saml_response::checked;
    for mode in 0..4 {
        let outcome = checked(&seed("saml_response", &format!("seed-signed-{mode}"))).unwrap();
        assert!(
            matches!(outcome, Ok(Checked::Assertion(_))),
            "{mode}: {outcome:?}"
        );
    }
    let forged = checked(&seed("saml_response", "seed-forged-3")).unwrap();
    assert!(
        matches!(
            forged,
            Err(SamlError::Wrapped | SamlError::DuplicateIds | SamlError::BadSignature)
        ),
        "{forged:?}"
    );
}
