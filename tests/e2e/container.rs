//! The AWS SDK for Rust (`aws-config`) against rolecall's container credentials endpoint: the
//! ECS provider and the default chain read `AWS_CONTAINER_CREDENTIALS_FULL_URI` +
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN` printed by `rolecall container`, and STS
//! GetCallerIdentity against the sandbox names the permission set's role.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

#[allow(deprecated)]
use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::BehaviorVersion;
use rolecall_tests::World;
use std::collections::BTreeMap;

fn container_vars(w: &World, profile: &str) -> BTreeMap<String, String> {
    let run = w.inst.rolecall(["container", profile]).run();
    run.assert_success();
    run.stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn arn_with(conf: &aws_config::SdkConfig) -> String {
    let sts = aws_sdk_sts::Client::new(conf);
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetCallerIdentity: {e:?}"));
    out.arn().unwrap_or_default().to_string()
}

// One test in this binary: it sets the process environment the SDK reads.
#[test]
fn aws_config_fetches_from_the_container_endpoint() {
    let w = World::new();
    w.login();
    let vars = container_vars(&w, "dev-admin");
    assert!(vars.contains_key("AWS_CONTAINER_CREDENTIALS_FULL_URI"));
    assert!(!vars.contains_key("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"));
    for k in [
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        std::env::remove_var(k);
    }
    for (k, v) in &vars {
        std::env::set_var(k, v);
    }
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let empty = w.inst.root().join("empty-aws-config");
    std::fs::write(&empty, "").unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The ECS provider itself.
        let ecs = aws_config::ecs::EcsCredentialsProvider::builder().build();
        let conf = aws_config::defaults(BehaviorVersion::latest())
            .credentials_provider(ecs)
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url(w.sandbox.url())
            .load()
            .await;
        let arn = arn_with(&conf).await;
        assert!(
            arn.starts_with(
                "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_DeveloperAdmin_"
            ),
            "{arn}"
        );

        // The default chain, with no profile files to find anything else in.
        #[allow(deprecated)]
        let files = ProfileFiles::builder()
            .with_file(ProfileFileKind::Config, &empty)
            .with_file(ProfileFileKind::Credentials, &empty)
            .build();
        let conf = aws_config::defaults(BehaviorVersion::latest())
            .profile_files(files)
            .endpoint_url(w.sandbox.url())
            .load()
            .await;
        assert_eq!(conf.region().map(|r| r.as_ref()), Some("eu-west-1"));
        let arn = arn_with(&conf).await;
        assert!(arn.contains("AWSReservedSSO_DeveloperAdmin_"), "{arn}");
    });

    // A revoked token: the provider fails with the daemon's 401.
    w.inst
        .rolecall(["container", "--revoke", "dev-admin"])
        .run()
        .assert_success();
    rt.block_on(async {
        let ecs = aws_config::ecs::EcsCredentialsProvider::builder().build();
        use aws_credential_types::provider::ProvideCredentials as _;
        assert!(ecs.provide_credentials().await.is_err());
    });
}
