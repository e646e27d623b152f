//! `rolecall import` as a whole process: the SSO setup of a real `~/.aws/config` becomes
//! rolecall sources and profiles; `--dry-run` writes nothing; a second run adds nothing; the
//! AWS config itself is never changed.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod shell_common;

use shell_common::{stderr, stdout, Install};

const AWS: &str = "\
# mine
[default]
region = us-east-1

[sso-session corp]
sso_start_url = https://d-1234567890.awsapps.com/start
sso_region = eu-west-1
sso_registration_scopes = sso:account:access

[profile dev]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = DeveloperAdmin
region = eu-central-1

[profile legacy]
sso_start_url = https://d-9999999999.awsapps.com/start
sso_region = us-east-1
sso_account_id = 222222222222
sso_role_name = ReadOnly
";

#[test]
fn import_dry_run_then_for_real_then_again() {
    let ins = Install::new();
    let cfg_path = ins.path().join("config.toml");
    std::fs::remove_file(&cfg_path).unwrap();
    let aws = ins.path().join("home/.aws/config");
    std::fs::create_dir_all(aws.parent().unwrap()).unwrap();
    std::fs::write(&aws, AWS).unwrap();

    let o = ins.rolecall(&["import", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("+[sources.corp]"), "{}", stdout(&o));
    assert!(!cfg_path.exists());

    let o = ins.rolecall(&["import"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("2 sources and 2 profiles added"),
        "{}",
        stdout(&o)
    );
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    assert!(cfg.contains("[sources.corp]\nkind = \"identity-center\"\nstart_url = \"https://d-1234567890.awsapps.com/start\"\nregion = \"eu-west-1\"\n"), "{cfg}");
    assert!(cfg.contains("[profiles.legacy]\nsource = \"d-9999999999\"\naccount = \"222222222222\"\nrole = \"ReadOnly\"\n"), "{cfg}");
    assert_eq!(std::fs::read_to_string(&aws).unwrap(), AWS);

    // The completions see them at once.
    let o = ins.rolecall(&["names", "profiles"]);
    assert_eq!(stdout(&o), "dev\nlegacy\n");

    let o = ins.rolecall(&["import"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("0 sources and 0 profiles added"),
        "{}",
        stdout(&o)
    );
    assert_eq!(std::fs::read_to_string(&cfg_path).unwrap(), cfg);
}

#[test]
fn import_without_sso_settings_or_with_a_broken_file_fails_cleanly() {
    let ins = Install::new();
    let aws = ins.path().join("home/.aws/config");
    std::fs::create_dir_all(aws.parent().unwrap()).unwrap();
    std::fs::write(&aws, "[default]\nregion = us-east-1\n").unwrap();
    let o = ins.rolecall(&["import"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no IAM Identity Center"),
        "{}",
        stderr(&o)
    );

    std::fs::write(&aws, "[default]\nnonsense\n").unwrap();
    let o = ins.rolecall(&["import"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains(":2: "), "{}", stderr(&o));
}
