//! The AWS SDK for Rust as a client: `aws-config`'s default chain reads a profile with
//! `credential_process = … rolecall credential-process <profile>`, and STS GetCallerIdentity
//! (against the sandbox's STS, which checks the SigV4 signature with the issued keys) names the
//! permission set's assumed role in the right account.

// aws-config re-exports aws-runtime's types under these (deprecated) names; using them keeps
// aws-runtime out of our direct dependencies.
#[allow(deprecated)]
use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::BehaviorVersion;
use rolecall_tests::{World, REGION};

/// Profiles whose credential_process carries the installation's variables: the SDK runs it
/// with this test process's environment, which is not the isolated one.
fn write_sdk_profiles(w: &World, names: &[&str]) -> std::path::PathBuf {
    let mut text = String::new();
    for n in names {
        text.push_str(&format!(
            "[profile {n}]\ncredential_process = {}\nregion = {REGION}\n\n",
            w.inst.credential_process_line_with_env(n)
        ));
    }
    let path = w.inst.root().join("sdk-aws-config");
    std::fs::write(&path, text).unwrap();
    path
}

#[allow(deprecated)]
async fn caller_identity(
    config_file: &std::path::Path,
    profile: &str,
    sts_url: &str,
) -> (String, String) {
    let files = ProfileFiles::builder()
        .with_file(ProfileFileKind::Config, config_file)
        .build();
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .profile_files(files)
        .profile_name(profile)
        .endpoint_url(sts_url)
        .load()
        .await;
    let sts = aws_sdk_sts::Client::new(&conf);
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetCallerIdentity for {profile}: {e:?}"));
    (
        out.account().unwrap_or_default().to_string(),
        out.arn().unwrap_or_default().to_string(),
    )
}

/// `arn:aws:sts::<account>:assumed-role/AWSReservedSSO_<set>_<16 hex>/<user>`
fn assert_permission_set_arn(arn: &str, account: &str, set: &str) {
    let prefix = format!("arn:aws:sts::{account}:assumed-role/AWSReservedSSO_{set}_");
    assert!(
        arn.starts_with(&prefix),
        "{arn} does not start with {prefix}"
    );
    let rest = &arn[prefix.len()..];
    let (suffix, user) = rest.split_once('/').expect("role/session");
    assert_eq!(suffix.len(), 16, "{arn}");
    assert!(suffix.bytes().all(|b| b.is_ascii_hexdigit()), "{arn}");
    assert!(!user.is_empty());
}

#[test]
fn aws_config_default_chain_uses_credential_process() {
    let w = World::new();
    w.login();
    let config = write_sdk_profiles(&w, &["dev-admin", "staging-power"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (acct, arn) = rt.block_on(caller_identity(&config, "dev-admin", w.sandbox.url()));
    assert_eq!(acct, "111111111111");
    assert_permission_set_arn(&arn, "111111111111", "DeveloperAdmin");
    // A second profile on another account: never crosses over.
    let (acct2, arn2) = rt.block_on(caller_identity(&config, "staging-power", w.sandbox.url()));
    assert_eq!(acct2, "222222222222");
    assert_permission_set_arn(&arn2, "222222222222", "DeveloperPowerUser");
}
