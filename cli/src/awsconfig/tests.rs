use super::*;

const EXE: &str = "/usr/local/bin/rolecall";

fn profiles(names: &[(&str, Option<&str>)]) -> Vec<BlockProfile> {
    names
        .iter()
        .map(|(n, r)| BlockProfile {
            name: (*n).into(),
            region: r.map(Into::into),
        })
        .collect()
}

fn update(text: &str, p: &[BlockProfile]) -> String {
    let s = split(text).unwrap();
    apply(text, &s, &render_block(p, EXE))
}

const HAND_EDITED: &str = "\
# my settings
[default]
region = us-east-1
output = json

[profile legacy]   ; kept by hand
role_arn = arn:aws:iam::123456789012:role/Legacy
source_profile = default
s3 =
    max_concurrent_requests = 20
    multipart_threshold = 64MB

[sso-session corp]
sso_start_url = https://d-1234567890.awsapps.com/start
sso_region = eu-west-1
[services local]
sts =
  endpoint_url = http://127.0.0.1:4566";

#[test]
fn block_format() {
    let b = render_block(
        &profiles(&[("dev/Admin", Some("eu-west-1")), ("odd name", None)]),
        "/opt/my tools/rolecall",
    );
    assert_eq!(
        b,
        format!(
            "{BEGIN}\n{NOTE}\n\
             [profile dev/Admin]\n\
             credential_process = '/opt/my tools/rolecall' credential-process dev/Admin\n\
             region = eu-west-1\n\
             \n\
             [profile odd name]\n\
             credential_process = '/opt/my tools/rolecall' credential-process 'odd name'\n\
             {END}\n"
        )
    );
    assert!(!b.contains("sso_"));
}

#[test]
fn appends_to_a_hand_edited_file_and_keeps_it_byte_for_byte() {
    let p = profiles(&[("a", Some("eu-west-1"))]);
    let once = update(HAND_EDITED, &p);
    assert!(once.starts_with(HAND_EDITED), "{once}");
    assert_eq!(&once[HAND_EDITED.len()..HAND_EDITED.len() + 2], "\n\n");
    assert!(once.ends_with(&render_block(&p, EXE)));
    // Idempotent: the second run changes nothing.
    assert_eq!(update(&once, &p), once);
}

#[test]
fn replaces_the_block_in_place_and_leaves_the_rest_alone() {
    let before = "[default]\nregion = us-east-1\n\n";
    let after = "\n# trailing comment\n[profile mine]\nregion = eu-north-1\n";
    let text = format!(
        "{before}{}{after}",
        render_block(&profiles(&[("a", None), ("b", None)]), EXE)
    );
    let new = update(&text, &profiles(&[("b", Some("us-west-2")), ("c", None)]));
    assert!(new.starts_with(before));
    assert!(new.ends_with(after));
    assert!(!new.contains("[profile a]"));
    assert!(new.contains("[profile b]\ncredential_process = /usr/local/bin/rolecall credential-process b\nregion = us-west-2\n"));
    assert!(new.contains("[profile c]"));
}

#[test]
fn crlf_files_and_indented_markers_are_handled() {
    let text = format!(
        "[default]\r\nregion = us-east-1\r\n{}",
        render_block(&profiles(&[("a", None)]), EXE).replace('\n', "\r\n")
    );
    let s = split(&text).unwrap();
    assert_eq!(s.before, "[default]\r\nregion = us-east-1\r\n");
    assert_eq!(s.after, "");
    assert!(s.block.unwrap().starts_with(BEGIN));
}

#[test]
fn empty_and_missing_files() {
    let p = profiles(&[("a", None)]);
    assert_eq!(update("", &p), render_block(&p, EXE));
    assert_eq!(
        update("[default]", &p),
        format!("[default]\n\n{}", render_block(&p, EXE))
    );
}

#[test]
fn outside_sections_are_listed() {
    let s = split(HAND_EDITED).unwrap();
    assert_eq!(
        s.outside_sections,
        [
            "default",
            "profile legacy",
            "sso-session corp",
            "services local"
        ]
    );
    assert_eq!(s.outside_profiles(), ["default", "legacy"]);
    assert_eq!(profile_name("profile\tx "), Some("x".into()));
    assert_eq!(profile_name("profiles"), None);
}

#[test]
fn malformed_files_are_reported_with_their_line() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "[default]\nregion = x\njust words\n",
            3,
            "expected `[section]` or `key = value`",
        ),
        ("region = x\n[default]\n", 1, "before any `[section]`"),
        ("[default\nregion = x\n", 1, "closing `]`"),
        ("[]\n", 1, "empty section"),
        ("[default] junk\n", 1, "after the section header"),
        ("[default]\n= x\n", 2, "without a name"),
        (
            "[default]\n# BEGIN rolecall\n[profile a]\n",
            2,
            "without a matching",
        ),
        ("[default]\n# END rolecall\n", 2, "without a `# BEGIN"),
        (
            "# BEGIN rolecall\n# END rolecall\n# BEGIN rolecall\n# END rolecall\n",
            3,
            "second",
        ),
        (
            "# BEGIN rolecall\n# BEGIN rolecall\n# END rolecall\n",
            2,
            "again",
        ),
    ];
    for (text, line, msg) in cases {
        let e = split(text).unwrap_err();
        assert_eq!(e.line, *line, "{text:?}: {e}");
        assert!(e.message.contains(msg), "{text:?}: {e}");
    }
}

#[test]
fn inside_the_block_anything_goes() {
    // The block is rewritten, so a user's stray edit inside it does not block the update.
    let text = "# BEGIN rolecall\nnot ini at all\n# END rolecall\n";
    let new = update(text, &profiles(&[("a", None)]));
    assert!(!new.contains("not ini"));
}

#[test]
fn credentials_sections_for_the_shadowing_warning() {
    assert_eq!(
        credentials_sections("[default]\naws_access_key_id = x\n[ dev ]\nbad line\n"),
        ["default", "dev"]
    );
}

#[test]
fn shell_words() {
    assert_eq!(shell_word("/usr/bin/rolecall"), "/usr/bin/rolecall");
    assert_eq!(shell_word("a b"), "'a b'");
    assert_eq!(shell_word("it's"), "'it'\\''s'");
    assert_eq!(shell_word(""), "''");
    assert_eq!(shell_word("x;rm -rf"), "'x;rm -rf'");
}

#[test]
fn shell_words_split_back_in_a_real_shell() {
    for w in ["/opt/my tools/rolecall", "it's", "$(id)", "a\"b"] {
        let o = crate::spawn::command("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_word(w)))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), w);
    }
}

#[test]
fn atomic_write_keeps_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/config");
    write_atomic(&path, "one").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_atomic(&path, "two").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // No temporary file left behind.
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1
    );
}

#[test]
fn sections_and_settings() {
    let s = sections(HAND_EDITED);
    assert_eq!(s.len(), 4);
    assert_eq!(s[1].name, "profile legacy");
    assert_eq!(s[1].get("source_profile"), Some("default"));
    // Nested settings are not top-level keys.
    assert_eq!(s[1].get("max_concurrent_requests"), None);
    assert_eq!(s[2].get("sso_region"), Some("eu-west-1"));
}
