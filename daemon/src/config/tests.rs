//! Loading and validation of whole config files: what is accepted, and where refusals point.

use super::*;
use std::path::Path;
use std::time::Duration;

fn err(text: &str) -> String {
    parse(text, Path::new("/c/config.toml"))
        .expect_err("config should be refused")
        .to_string()
}

const GOOD: &str = r#"
[daemon]
refresh_ahead = "20m"

[sources.corp]
kind = "identity-center"
start_url = "https://d-1234567890.awsapps.com/start"
region = "eu-west-1"

[sources.legacy]
kind = "entra-saml"
tenant = "contoso.onmicrosoft.com"
app_identifier = "https://signin.aws.amazon.com/saml#1"

[profiles.dev-admin]
source = "corp"
account = "111111111111"
role = "DeveloperAdmin"

[profiles.legacy-admin]
source = "legacy"
role = "arn:aws:iam::333333333333:role/EntraAdmin"
principal = "arn:aws:iam::333333333333:saml-provider/EntraID"
duration = "4h"
"#;

#[test]
fn good_config_parses() {
    let c = parse(GOOD, Path::new("x")).unwrap();
    assert_eq!(c.sources.len(), 2);
    assert_eq!(
        c.profiles["dev-admin"].account.as_deref(),
        Some("111111111111")
    );
    assert_eq!(
        c.profiles["legacy-admin"].duration,
        Some(Duration::from_secs(4 * 3600))
    );
    assert_eq!(c.daemon.refresh_ahead, Duration::from_secs(1200));
}

#[test]
fn missing_file_is_empty_config() {
    let dir = tempfile::tempdir().unwrap();
    let l = load(&dir.path().join("nope.toml")).unwrap();
    assert!(!l.exists);
    assert!(l.config.profiles.is_empty());
}

#[test]
fn syntax_error_has_line_and_column() {
    assert_eq!(
        err("[daemon]\nrefresh_ahead = \"20m\"\nauto_login = tru\n"),
        "/c/config.toml:3:14: invalid string\nexpected `\"`, `'`"
            .lines()
            .next()
            .unwrap()
            .to_string()
    );
}

#[test]
fn unknown_key_points_at_key() {
    let e = err("[daemon]\nrefresh_ahed = \"20m\"\n");
    assert!(
        e.starts_with("/c/config.toml:2:1: unknown field `refresh_ahed`"),
        "{e}"
    );
}

#[test]
fn bad_duration_is_located() {
    let e = err("[daemon]\nrefresh_ahead = \"20x\"\n");
    assert!(
        e.starts_with("/c/config.toml:2:17: invalid duration"),
        "{e}"
    );
}

#[test]
fn refresh_ahead_must_exceed_15m() {
    let e = err("\n[daemon]\n  refresh_ahead = \"15m\"\n");
    assert!(
        e.starts_with("/c/config.toml:3:3: refresh_ahead must be more than 15m"),
        "{e}"
    );
}

#[test]
fn unknown_source_in_profile() {
    let text = GOOD.replace("source = \"corp\"", "source = \"crop\"");
    let e = err(&text);
    let line = text.lines().position(|l| l.contains("\"crop\"")).unwrap() + 1;
    assert_eq!(
        e,
        format!("/c/config.toml:{line}:1: profile 'dev-admin' names unknown source 'crop' (known sources: corp, legacy)")
    );
}

#[test]
fn bad_account_id() {
    let text = GOOD.replace("\"111111111111\"", "\"11111111111\"");
    let e = err(&text);
    let line = text
        .lines()
        .position(|l| l.contains("11111111111"))
        .unwrap()
        + 1;
    assert!(
        e.starts_with(&format!(
            "/c/config.toml:{line}:1: profile 'dev-admin': account must be a 12-digit"
        )),
        "{e}"
    );
}

#[test]
fn bad_role_arn_for_entra() {
    let text = GOOD.replace("arn:aws:iam::333333333333:role/EntraAdmin", "EntraAdmin");
    let e = err(&text);
    let line = text
        .lines()
        .position(|l| l == "role = \"EntraAdmin\"")
        .unwrap()
        + 1;
    assert!(
        e.starts_with(&format!(
            "/c/config.toml:{line}:1: profile 'legacy-admin': role must be an IAM role ARN"
        )),
        "{e}"
    );
}

#[test]
fn missing_start_url() {
    let text = GOOD.replace(
        "start_url = \"https://d-1234567890.awsapps.com/start\"\n",
        "",
    );
    let e = err(&text);
    assert!(e.contains("missing field `start_url`"), "{e}");
    let line = text.lines().position(|l| l == "[sources.corp]").unwrap() + 1;
    assert!(e.starts_with(&format!("/c/config.toml:{line}:")), "{e}");
}

#[test]
fn plain_http_off_loopback_is_refused_for_every_url() {
    let text = GOOD.replace(
        "https://d-1234567890.awsapps.com/start",
        "http://d-1234567890.awsapps.com/start",
    );
    let e = err(&text);
    assert!(e.contains("start_url") && e.contains("plain http"), "{e}");
    let e = err(&GOOD.replace(
        "app_identifier =",
        "authority = \"http://login.example.com\"\napp_identifier =",
    ));
    assert!(e.contains("authority") && e.contains("plain http"), "{e}");
    let e = err(&GOOD.replace(
        "region = \"eu-west-1\"\n",
        "region = \"eu-west-1\"\nendpoint_url = \"http://10.1.2.3:4566\"\n",
    ));
    assert!(
        e.contains("endpoint_url") && e.contains("plain http"),
        "{e}"
    );
    // Loopback http stays allowed (the sandbox, LocalStack).
    parse(
        &GOOD.replace(
            "region = \"eu-west-1\"\n",
            "region = \"eu-west-1\"\nendpoint_url = \"http://127.0.0.1:4566\"\n",
        ),
        Path::new("x"),
    )
    .unwrap();
}

#[test]
fn identity_center_profile_needs_account() {
    let text = GOOD.replace("account = \"111111111111\"\n", "");
    let e = err(&text);
    let line = text
        .lines()
        .position(|l| l == "[profiles.dev-admin]")
        .unwrap()
        + 1;
    assert!(
        e.starts_with(&format!("/c/config.toml:{line}:")) && e.contains("needs account"),
        "{e}"
    );
}

#[test]
fn bad_principal_and_unknown_kind() {
    let e = err(&GOOD.replace("saml-provider/EntraID", "role/EntraID"));
    assert!(e.contains("principal must be a SAML provider ARN"), "{e}");
    let e = err(&GOOD.replace("kind = \"entra-saml\"", "kind = \"entra-magic\""));
    assert!(e.contains("entra-magic"), "{e}");
}

#[test]
fn aws_cli_cache_keys() {
    let text = GOOD.replace(
        "region = \"eu-west-1\"\n",
        "region = \"eu-west-1\"\nshare_aws_cli_cache = true\nsso_session = \"my-sso\"\n",
    );
    let c = parse(&text, Path::new("x")).unwrap();
    let SourceConfig::IdentityCenter(ic) = &c.sources["corp"] else {
        panic!("identity-center expected")
    };
    assert!(ic.share_aws_cli_cache);
    assert_eq!(ic.sso_session.as_deref(), Some("my-sso"));
    let text = text.replace("\"my-sso\"", "\" \"");
    let line = text
        .lines()
        .position(|l| l.starts_with("sso_session"))
        .unwrap()
        + 1;
    assert!(
        err(&text).starts_with(&format!(
            "/c/config.toml:{line}:1: source 'corp': sso_session is empty"
        )),
        "{}",
        err(&text)
    );
}

#[test]
fn daemon_addresses_and_imds_are_checked() {
    let e = err("[daemon]\ncontainer_listen = \"localhost\"\n");
    assert!(
        e.starts_with("/c/config.toml:2:1: container_listen must be an address and port"),
        "{e}"
    );
    let text = format!("{GOOD}\n[daemon.imds]\nlisten = \"127.0.0.1:9912\"\nprofile = \"nope\"\n");
    // `[daemon]` appears twice in that text: toml itself refuses it, with a place.
    assert!(err(&text).starts_with("/c/config.toml:"), "{}", err(&text));
    let text = GOOD.replace(
        "refresh_ahead = \"20m\"",
        "refresh_ahead = \"20m\"\nimds = { listen = \"127.0.0.1:9912\", profile = \"nope\" }",
    );
    let e = err(&text);
    assert!(
        e.ends_with("imds.profile names unknown profile 'nope'"),
        "{e}"
    );
    assert!(e.starts_with("/c/config.toml:4:1: "), "{e}");
    let text = GOOD.replace(
        "refresh_ahead = \"20m\"",
        "refresh_ahead = \"20m\"\nimds = { listen = \"0.0.0.0:9912\", profile = \"dev-admin\" }",
    );
    let e = err(&text);
    assert!(
        e.starts_with("/c/config.toml:4:1: imds.listen must be a loopback address"),
        "{e}"
    );
    let text = GOOD.replace(
        "refresh_ahead = \"20m\"",
        "refresh_ahead = \"20m\"\nimds = { listen = \"[::1]:9912\", profile = \"dev-admin\" }",
    );
    assert!(parse(&text, Path::new("/c/config.toml")).is_ok());
}

#[test]
fn container_token_ttl_is_a_bounded_duration() {
    let ok = parse(
        &GOOD.replace(
            "refresh_ahead = \"20m\"",
            "refresh_ahead = \"20m\"\ncontainer_token_ttl = \"2h\"",
        ),
        Path::new("/c/config.toml"),
    )
    .unwrap();
    assert_eq!(ok.daemon.container_token_ttl, Duration::from_secs(7200));
    let dflt = parse(GOOD, Path::new("/c/config.toml")).unwrap();
    assert_eq!(dflt.daemon.container_token_ttl, DEFAULT_CONTAINER_TOKEN_TTL);
    let e = err(&GOOD.replace(
        "refresh_ahead = \"20m\"",
        "refresh_ahead = \"20m\"\ncontainer_token_ttl = \"10s\"",
    ));
    assert!(
        e.starts_with("/c/config.toml:4:1: container_token_ttl must be between 1m and 30d"),
        "{e}"
    );
}

#[test]
fn audit_bounds_are_sizes_and_counts() {
    let with = |line: &str| {
        GOOD.replace(
            "refresh_ahead = \"20m\"",
            &format!("refresh_ahead = \"20m\"\n{line}"),
        )
    };
    let dflt = parse(GOOD, Path::new("/c/config.toml")).unwrap();
    assert_eq!(
        (dflt.daemon.audit_max_size, dflt.daemon.audit_files),
        (10 << 20, 3)
    );
    for (line, size) in [
        ("audit_max_size = \"512KiB\"", 512 << 10),
        ("audit_max_size = \"2MiB\"", 2 << 20),
        ("audit_max_size = 4096", 4096),
    ] {
        let c = parse(&with(line), Path::new("/c/config.toml")).unwrap();
        assert_eq!(c.daemon.audit_max_size, size, "{line}");
    }
    let e = err(&with("audit_max_size = \"10MB\""));
    assert!(e.contains("unknown unit \"MB\""), "{e}");
    let e = err(&with("audit_max_size = 10"));
    assert!(
        e.contains("audit_max_size must be between 1KiB and 1GiB"),
        "{e}"
    );
    let e = err(&with("audit_files = 0"));
    assert!(e.contains("audit_files must be between 1 and 100"), "{e}");
}

#[test]
fn entra_profile_checks() {
    let e = err(&GOOD.replace("duration = \"4h\"", "duration = \"13h\""));
    assert!(e.contains("duration must be between 15m and 12h"), "{e}");
    let e = err(&GOOD.replace(
        "role = \"arn:aws:iam::333333333333:role/EntraAdmin\"",
        "role = \"arn:aws:iam::333333333333:role/EntraAdmin\"\naccount = \"444444444444\"",
    ));
    assert!(
        e.contains("differs from the role ARN's account 333333333333"),
        "{e}"
    );
    let e = err(&GOOD.replace(
        "account = \"111111111111\"",
        "account = \"111111111111\"\nduration = \"1h\"",
    ));
    assert!(
        e.contains("duration applies to entra-* sources only"),
        "{e}"
    );
    assert!(is_iam_arn(
        "arn:aws-us-gov:iam::123456789012:role/path/Name",
        "role"
    ));
    assert!(!is_iam_arn("arn:aws:iam::12345678901:role/Name", "role"));
    assert!(!is_iam_arn("arn:aws:sts::123456789012:role/Name", "role"));
    assert!(!is_iam_arn("arn:aws:iam::123456789012:role/", "role"));
}

#[test]
fn names_follow_one_rule() {
    let text = GOOD.replace("[sources.corp]", "[sources.\"$(touch /tmp/x)\"]");
    let text = text.replace("source = \"corp\"", "source = \"$(touch /tmp/x)\"");
    let e = err(&text);
    let line = text
        .lines()
        .position(|l| l.starts_with("[sources.\"$("))
        .unwrap()
        + 1;
    assert!(
        e.starts_with(&format!(
            "/c/config.toml:{line}:1: source name \"$(touch /tmp/x)\" is not allowed"
        )),
        "{e}"
    );
    let e = err(&GOOD.replace("[sources.corp]", "[sources.\"../x\"]"));
    assert!(e.contains("source name \"../x\" is not allowed"), "{e}");
    for bad in ["`id`", "a b", ".hidden", "x/y"] {
        let e = err(&GOOD.replace("[profiles.dev-admin]", &format!("[profiles.\"{bad}\"]")));
        assert!(
            e.contains("profile name") && e.contains("not allowed"),
            "{bad}: {e}"
        );
        let line = GOOD
            .lines()
            .position(|l| l == "[profiles.dev-admin]")
            .unwrap()
            + 1;
        assert!(e.starts_with(&format!("/c/config.toml:{line}:1:")), "{e}");
    }
}

#[test]
fn config_writable_by_others_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, GOOD).unwrap();
    for (mode, ok) in [(0o600, true), (0o644, true), (0o664, false), (0o646, false)] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        match load(&path) {
            Ok(l) => assert!(ok, "mode {mode:o} accepted: {:?}", l.path),
            Err(e) => {
                assert!(!ok, "mode {mode:o} refused: {e}");
                let e = e.to_string();
                assert_eq!(e.lines().count(), 1, "{e}");
                assert!(e.contains(&format!("chmod go-w {}", path.display())), "{e}");
            }
        }
    }
}

#[test]
fn config_owned_by_another_user_is_refused() {
    // Needs root to give the file away (CI runs as root).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let reason = "giving a file to another user needs root";
        if let Some(log) = std::env::var_os("ROLECALL_SKIP_LOG") {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(log)
            {
                let _ = writeln!(f, "config_owned_by_another_user_is_refused: {reason}");
            }
        }
        eprintln!("SKIP: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, GOOD).unwrap();
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    let e = load(&path).expect_err("owned by nobody").to_string();
    assert!(e.contains("owned by uid 65534"), "{e}");
    std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
    load(&path).unwrap();
}
