//! `rolecall populate` as a whole process, on real files: the rolecall config and a
//! hand-edited `~/.aws/config`, checked byte for byte, and by botocore's own parser.
//!
//! The daemon's side is a stand-in on the real Unix socket that serves the contract's
//! `GET /v1/sources/{source}/roles` (`rolecall_proto::api::AvailableRoles`) from a list the
//! test controls, so that adding and removing accounts is deterministic. The same command
//! against the real daemon and sandbox is in `populate_sandbox.rs`.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod shell_common;

use rolecall_proto::api::{AvailableRole, AvailableRoles};
use shell_common::{stderr, stdout, Install, BIN};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::{Arc, Mutex};

const RC_CONFIG: &str = "\
# my rolecall config
[daemon]
notifications = false   # quiet please

[sources.corp]
kind = \"identity-center\"
start_url = \"https://d-1234567890.awsapps.com/start\"
region = \"eu-west-1\"

[profiles.hand-made]
source = \"corp\"
account = \"500000000000\"
role = \"GeneratedSet01\"
region = \"us-east-2\"
";

const AWS_BEFORE: &str = "\
# personal settings
[default]
region = us-east-1
output = json

[profile legacy]   ; by hand
role_arn = arn:aws:iam::123456789012:role/Legacy
source_profile = default
s3 =
    max_concurrent_requests = 20
";

const AWS_AFTER: &str = "
[services local]
sts =
  endpoint_url = http://127.0.0.1:4566
";

fn roles(accounts: usize, sets: usize) -> Vec<AvailableRole> {
    let mut v = Vec::new();
    for a in 0..accounts {
        for s in 0..sets {
            v.push(AvailableRole {
                account_id: format!("{:012}", 500_000_000_000u64 + a as u64),
                account_name: Some(format!("generated-{:04}", a + 1)),
                role: format!("GeneratedSet{:02}", s + 1),
                principal: None,
            });
        }
    }
    v
}

/// Serves the roles listing and `/v1/reload` on the installation's socket until dropped.
struct StandIn {
    roles: Arc<Mutex<Vec<AvailableRole>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl StandIn {
    fn start(ins: &Install, initial: Vec<AvailableRole>) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let rt = ins.path().join("runtime");
        std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o700)).unwrap();
        let listener = UnixListener::bind(rt.join("rolecalld.sock")).unwrap();
        let roles = Arc::new(Mutex::new(initial));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (r, q) = (roles.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let mut reader = BufReader::new(conn);
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let line = first.trim().to_owned();
                q.lock().unwrap().push(line.clone());
                let (status, json) = match line.split(' ').take(2).collect::<Vec<_>>()[..] {
                    ["GET", "/v1/sources/corp/roles"] => (
                        200,
                        serde_json::to_string(&AvailableRoles {
                            source: "corp".into(),
                            roles: r.lock().unwrap().clone(),
                        })
                        .unwrap(),
                    ),
                    ["POST", "/v1/reload"] => (200, "{\"ok\":true}".to_owned()),
                    _ => (
                        404,
                        "{\"error\":{\"code\":\"unknown_source\",\"message\":\"unknown source\"}}"
                            .to_owned(),
                    ),
                };
                let mut conn = reader.into_inner();
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\nx-rolecall-version: 0.1.0\r\n\
                     x-rolecall-protocol: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
                    rolecall_proto::PROTOCOL_VERSION,
                    json.len()
                );
            }
        });
        StandIn { roles, requests }
    }

    fn set_roles(&self, v: Vec<AvailableRole>) {
        *self.roles.lock().unwrap() = v;
    }
}

fn setup() -> (Install, std::path::PathBuf) {
    let ins = Install::new();
    std::fs::write(ins.path().join("config.toml"), RC_CONFIG).unwrap();
    let aws = ins.path().join("home/.aws/config");
    std::fs::create_dir_all(aws.parent().unwrap()).unwrap();
    std::fs::write(&aws, format!("{AWS_BEFORE}{AWS_AFTER}")).unwrap();
    (ins, aws)
}

fn populate(ins: &Install, args: &[&str]) -> std::process::Output {
    let mut all = vec!["populate", "corp"];
    all.extend_from_slice(args);
    ins.rolecall(&all)
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn writes_900_profiles_keeps_hand_edits_and_is_idempotent() {
    let (ins, aws) = setup();
    let standin = StandIn::start(&ins, roles(300, 3));
    let o = populate(&ins, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("900 roles listed; 899 added"),
        "{}",
        stdout(&o)
    );

    let cfg = read(&ins.path().join("config.toml"));
    // The user's text is untouched and first; the matching hand-made profile is reused.
    assert!(cfg.starts_with(RC_CONFIG), "{cfg}");
    assert!(!cfg.contains("\"generated-0001.GeneratedSet01\""));
    assert!(cfg.contains(
        "[profiles.\"generated-0001.GeneratedSet02\"]\nsource = \"corp\"\naccount = \"500000000000\"\n\
         account_name = \"generated-0001\"\nrole = \"GeneratedSet02\"\n"
    ));
    assert_eq!(cfg.matches("[profiles.").count(), 900);

    let text = read(&aws);
    assert!(text.starts_with(AWS_BEFORE), "{text}");
    // Without a block, the block goes at the end, after what the user wrote.
    assert!(text.starts_with(&format!("{AWS_BEFORE}{AWS_AFTER}\n# BEGIN rolecall\n")));
    assert!(text.ends_with("# END rolecall\n"));
    assert_eq!(text.matches("\n[profile ").count(), 901); // 900 + legacy
    assert!(!text.contains("sso_"));
    assert!(text.contains(&format!(
        "[profile hand-made]\ncredential_process = {} credential-process hand-made\nregion = us-east-2\n",
        std::fs::canonicalize(BIN).unwrap().display()
    )));
    assert!(text.contains("credential-process generated-0300.GeneratedSet03\nregion = eu-west-1\n"));
    // The daemon was asked to reload the config it now has.
    assert!(standin
        .requests
        .lock()
        .unwrap()
        .contains(&"POST /v1/reload HTTP/1.1".to_owned()));

    // Twice: nothing changes, byte for byte.
    let o = populate(&ins, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing to change"), "{}", stdout(&o));
    assert_eq!(read(&ins.path().join("config.toml")), cfg);
    assert_eq!(read(&aws), text);

    // The user edits around the block later; the next run keeps those edits too.
    let edited = text.replace("# personal settings\n", "# personal settings, edited\n")
        + "\n[profile after-block]\nregion = ap-south-1\n";
    std::fs::write(&aws, &edited).unwrap();
    let o = populate(&ins, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&aws), edited);
}

#[test]
fn botocore_reads_the_generated_profiles() {
    let (ins, aws) = setup();
    let _standin = StandIn::start(&ins, roles(20, 3));
    assert!(populate(&ins, &[]).status.success());
    let py = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/.venv/bin/python");
    let script = r#"
import sys, shlex, botocore.session
s = botocore.session.Session(profile=None)
profiles = s.full_config["profiles"]
gen = {k: v for k, v in profiles.items() if "credential_process" in v}
assert len(gen) == 60, len(gen)
for name, v in gen.items():
    assert not any(k.startswith("sso_") for k in v), name
    argv = shlex.split(v["credential_process"])
    assert argv[1:] == ["credential-process", name], argv
    assert "region" in v, name
assert profiles["legacy"]["role_arn"].endswith("role/Legacy")
print("ok", len(gen))
"#;
    let o = ins
        .command(py.to_str().unwrap())
        .arg("-c")
        .arg(script)
        .env("AWS_CONFIG_FILE", &aws)
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "ok 60\n", "{}", stderr(&o));
}

#[test]
fn prune_removes_gone_accounts_only_when_asked() {
    let (ins, aws) = setup();
    let standin = StandIn::start(&ins, roles(5, 3));
    assert!(populate(&ins, &[]).status.success());
    standin.set_roles(roles(4, 2));
    let o = populate(&ins, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("7 no longer available (remove them with --prune)"),
        "{}",
        stdout(&o)
    );
    assert!(read(&aws).contains("[profile generated-0005.GeneratedSet02]"));
    let o = populate(&ins, &["--prune"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("7 removed"), "{}", stdout(&o));
    let cfg = read(&ins.path().join("config.toml"));
    let text = read(&aws);
    assert_eq!(cfg.matches("[profiles.").count(), 8);
    assert!(!text.contains("generated-0005"));
    assert!(!text.contains("GeneratedSet03"));
    // hand-made (account 0, set 1) is still listed, so it stays.
    assert!(cfg.contains("[profiles.hand-made]"));
    assert!(text.starts_with(AWS_BEFORE));
}

#[test]
fn dry_run_prints_a_diff_that_patch_applies_and_writes_nothing() {
    let (ins, aws) = setup();
    let _standin = StandIn::start(&ins, roles(3, 2));
    let cfg_before = read(&ins.path().join("config.toml"));
    let aws_before = read(&aws);
    let o = populate(
        &ins,
        &[
            "--dry-run",
            "--prefix",
            "corp.",
            "--name-template",
            "{account_id}-{role}",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&ins.path().join("config.toml")), cfg_before);
    assert_eq!(read(&aws), aws_before);
    let diff = stdout(&o);
    assert!(
        diff.contains("+[profiles.\"corp.500000000002-GeneratedSet02\"]"),
        "{diff}"
    );
    assert!(
        diff.contains("+[profile corp.500000000001-GeneratedSet01]"),
        "{diff}"
    );
    assert!(stderr(&o).contains("dry run, nothing written"));

    // The printed diff, applied with patch(1) to copies, gives exactly what a real run writes.
    let copy = tempfile::tempdir().unwrap();
    let root = copy.path();
    std::fs::create_dir_all(root.join("home/.aws")).unwrap();
    std::fs::copy(ins.path().join("config.toml"), root.join("config.toml")).unwrap();
    std::fs::copy(&aws, root.join("home/.aws/config")).unwrap();
    // The headers name the real files; point them at the copies.
    let relative = diff.replace(&format!("{}/", ins.path().display()), "./");
    let mut child = std::process::Command::new("patch")
        .args(["-s", "-p0", "-d"])
        .arg(root)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(relative.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "{relative}");
    let o = populate(
        &ins,
        &[
            "--prefix",
            "corp.",
            "--name-template",
            "{account_id}-{role}",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        read(&root.join("config.toml")),
        read(&ins.path().join("config.toml"))
    );
    assert_eq!(read(&root.join("home/.aws/config")), read(&aws));
}

#[test]
fn malformed_aws_config_is_reported_with_its_line_and_left_alone() {
    let (ins, aws) = setup();
    let standin = StandIn::start(&ins, roles(2, 2));
    let bad = "[default]\nregion = us-east-1\nthis is not ini\n";
    std::fs::write(&aws, bad).unwrap();
    let cfg_before = read(&ins.path().join("config.toml"));
    let o = populate(&ins, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("rolecall: {}:3: ", aws.display())),
        "{err}"
    );
    assert_eq!(read(&aws), bad);
    assert_eq!(read(&ins.path().join("config.toml")), cfg_before);
    // Checked before the daemon is even asked.
    assert!(standin.requests.lock().unwrap().is_empty());
}

#[test]
fn unknown_source_and_bad_template_are_one_line_errors() {
    let (ins, _aws) = setup();
    let o = ins.rolecall(&["populate", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("rolecall: unknown source 'nope'"),
        "{}",
        stderr(&o)
    );
    let o = ins.rolecall(&["populate", "corp", "--name-template", "{role}"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).lines().count(), 1);
    assert!(stderr(&o).contains("--name-template"), "{}", stderr(&o));
}

#[test]
fn warns_when_the_credentials_file_shadows_a_profile() {
    let (ins, _aws) = setup();
    let _standin = StandIn::start(&ins, roles(1, 1));
    std::fs::write(
        ins.path().join("home/.aws/credentials"),
        "[hand-made]\naws_access_key_id = AKIAEXAMPLE\n",
    )
    .unwrap();
    let o = populate(&ins, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("has a [hand-made] section"),
        "{}",
        stderr(&o)
    );
    // The key never leaks into output.
    assert!(!stderr(&o).contains("AKIAEXAMPLE"));
}

#[test]
fn aws_config_file_env_is_honoured_and_paths_with_spaces_are_quoted() {
    let (ins, _aws) = setup();
    let _standin = StandIn::start(&ins, roles(1, 1));
    let spaced = ins.path().join("my tools");
    std::fs::create_dir_all(&spaced).unwrap();
    let exe = spaced.join("rolecall");
    std::fs::copy(BIN, &exe).unwrap();
    let target = ins.path().join("elsewhere/aws config");
    let o = ins
        .command(exe.to_str().unwrap())
        .args(["populate", "corp"])
        .env("AWS_CONFIG_FILE", &target)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = read(&target);
    let real = std::fs::canonicalize(&exe).unwrap();
    assert!(
        text.contains(&format!(
            "credential_process = '{}' credential-process hand-made\n",
            real.display()
        )),
        "{text}"
    );
}
