//! Writes the seed inputs of every fuzz target into `fuzz/corpus/<target>/seed-*`: valid and
//! nearly valid inputs the fuzzer mutates from (a signed SAML response from the sandbox's
//! Entra, the docs' example configs, real requests to each endpoint...).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rolecall_fuzz_targets::saml_response::{APP, NOW, REQUEST_ID};
use rolecall_sandbox::saml::response::{build_no_passive, build_success, Grant, Signing};
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = root.join("fuzz/corpus");
    let mut w = Writer { corpus };

    // SAML: a signed success response and its variants, with each mode byte.
    let now = time::OffsetDateTime::from_unix_timestamp(NOW).unwrap();
    let grant = Grant {
        tenant_id: "9c0ffee0-1234-4cde-8f00-c0ffee000001",
        in_response_to: Some(REQUEST_ID),
        audience: APP,
        recipient: "https://signin.aws.amazon.com/saml",
        upn: "alice@contoso.onmicrosoft.com",
        object_id: "a11ce000-0000-4000-8000-000000000001",
        display_name: "Alice Example",
        roles: vec![
            "arn:aws:iam::111122223333:role/EntraReadOnly,arn:aws:iam::111122223333:saml-provider/Entra".into(),
            "arn:aws:iam::111122223333:saml-provider/Entra,arn:aws:iam::111122223333:role/EntraAdmin".into(),
        ],
        session_duration_secs: 14400,
        now,
        validity_secs: 3600,
    };
    let key = rolecall_sandbox::keys::saml_key();
    let signed = build_success(&grant, Signing::With(key)).unwrap();
    let unsigned = build_success(&grant, Signing::Unsigned).unwrap();
    let forged = rolecall_sandbox::saml::wrapping_forgery(
        &signed,
        "arn:aws:iam::111122223333:role/Evil,arn:aws:iam::111122223333:saml-provider/Entra",
    );
    let no_passive = build_no_passive(grant.tenant_id, REQUEST_ID, grant.recipient, now);
    let metadata = rolecall_sandbox::saml::federation_metadata(
        grant.tenant_id,
        "https://login.microsoftonline.com/x/saml2",
        &key.cert_b64(),
    );
    for mode in 0u8..4 {
        for (name, doc) in [
            ("signed", Some(&signed)),
            ("unsigned", Some(&unsigned)),
            ("forged", forged.as_ref()),
            ("nopassive", Some(&no_passive)),
        ] {
            if let Some(doc) = doc {
                w.put(
                    "saml_response",
                    &format!("{name}-{mode}"),
                    &[&[mode], doc.as_bytes()],
                );
            }
        }
    }
    w.put("saml_response", "metadata", &[&[0], metadata.as_bytes()]);
    // The signed seed must pass every check, or the fuzzer starts from refusals only.
    let b64 = STANDARD.encode(&signed);
    let certs = vec![key.cert_der.clone()];
    let exp = rolecall_daemon::saml::response::Expectations {
        app_identifier: APP,
        in_response_to: Some(REQUEST_ID),
        certs: Some(&certs),
        now,
        skew: time::Duration::minutes(2),
    };
    rolecall_daemon::saml::response::check(&b64, &exp).expect("the signed seed is accepted");

    // Config: every TOML example of the docs.
    let mut n = 0;
    for doc in [
        "README.md",
        "docs/chaining.md",
        "docs/containers.md",
        "docs/entra-oidc.md",
        "docs/entra-saml.md",
        "docs/interop.md",
        "docs/shell.md",
    ] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for block in text.split("```toml\n").skip(1) {
            let toml = block.split("```").next().unwrap();
            n += 1;
            w.put("config_parse", &format!("doc{n}"), &[toml.as_bytes()]);
        }
    }

    // Socket API: targets and bodies the CLI sends.
    for (name, target, body) in [
        (
            "credentials",
            "/v1/credentials/dev?interactive=1&wait=30&via=container",
            "",
        ),
        (
            "login",
            "/v1/login/corp",
            r#"{"no_browser":true,"force":false,"saml_response":"PHNhbWw+"}"#,
        ),
        ("loginpoll", "/v1/login/corp?wait=5", ""),
        ("logout", "/v1/logout", r#"{"source":"corp"}"#),
        (
            "mint",
            "/v1/container/tokens",
            r#"{"profile":"dev","bound_pid":4242}"#,
        ),
        (
            "renew",
            "/v1/container/tokens/renew",
            r#"{"profile":"dev"}"#,
        ),
        (
            "revoke",
            "/v1/container/tokens",
            r#"{"id":"ct_1","profile":"dev"}"#,
        ),
        (
            "console",
            "/v1/console",
            r#"{"profile":"dev","service":"s3","region":"eu-west-1","session_duration":3600}"#,
        ),
        ("roles", "/v1/sources/c%6Frp/roles", ""),
        ("whoami", "/v1/whoami/dev%2Fx", ""),
    ] {
        w.put(
            "socket_request",
            name,
            &[target.as_bytes(), &[0], body.as_bytes()],
        );
    }

    // Container endpoint (mode 0) and IMDS (mode 1): the requests SDKs make, and refusals.
    for (name, mode, req) in [
        ("ecs", 0u8, "GET /v1/container/dev HTTP/1.1\r\nHost: {H}\r\nAuthorization: {T}\r\n\r\n"),
        ("ecs-linklocal", 0, "GET /v1/container/d%65v HTTP/1.1\r\nHost: 169.254.170.2\r\nAuthorization: {T}\r\n\r\n"),
        ("pod", 0, "GET /v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\nAuthorization: {T}\r\n\r\n"),
        ("ecs-notoken", 0, "GET /v1/container/dev HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("ecs-origin", 0, "GET /v1/container/dev HTTP/1.1\r\nHost: {H}\r\nOrigin: http://evil.example\r\nAuthorization: {T}\r\n\r\n"),
        ("ecs-pipelined", 0, "GET /v1/container/dev HTTP/1.1\r\nHost: {H}\r\nAuthorization: {T}\r\n\r\nGET /v1/container/other HTTP/1.1\r\nHost: localhost\r\nAuthorization: {T}\r\n\r\n"),
        ("ecs-body", 0, "POST /v1/container/dev HTTP/1.1\r\nHost: {H}\r\nAuthorization: {T}\r\nContent-Length: 4\r\n\r\nabcd"),
        ("imds-put", 1, "PUT /latest/api/token HTTP/1.1\r\nHost: {H}\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\r\n"),
        ("imds-list", 1, "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1\r\nHost: {H}\r\nX-aws-ec2-metadata-token: {S}\r\n\r\n"),
        ("imds-creds", 1, "GET /latest/meta-data/iam/security-credentials/Dev HTTP/1.1\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token: {S}\r\n\r\n"),
        ("imds-v1", 1, "GET /latest/meta-data/iam/security-credentials/Dev HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("imds-forwarded", 1, "PUT /latest/api/token HTTP/1.1\r\nHost: {H}\r\nX-Forwarded-For: 10.0.0.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n"),
    ] {
        w.put("container_request", name, &[&[mode], req.as_bytes()]);
    }

    // Start URL and the Location its custom domain answers.
    for (name, start, loc) in [
        (
            "canonical",
            "https://sso.example.com/start",
            "https://d-1234567890.awsapps.com/start/?hint=x#frag",
        ),
        (
            "relative",
            "https://sso.example.com/start",
            "/portal/start/",
        ),
        (
            "loopback",
            "http://127.0.0.1:8080/start",
            "http://localhost:8080/d-1/start",
        ),
        (
            "downgrade",
            "https://sso.example.com/start",
            "http://evil.example/start",
        ),
        (
            "scheme",
            "https://sso.example.com/start",
            "javascript:alert(1)",
        ),
        (
            "protocol-relative",
            "https://sso.example.com/start",
            "//d-1234567890.awsapps.cn/start",
        ),
    ] {
        w.put("start_url", name, &[start.as_bytes(), &[0], loc.as_bytes()]);
    }

    // ~/.aws/config files: hand-edited, with a block, CRLF, no final newline.
    let hand = "# my settings\n[default]\nregion = us-east-1\n\n[profile legacy]   ; kept\nrole_arn = arn:aws:iam::123456789012:role/Legacy\ns3 =\n    max_concurrent_requests = 20\n[sso-session corp]\nsso_region = eu-west-1\n";
    let with_block = format!("{hand}\n# BEGIN rolecall\n[profile dev]\ncredential_process = rolecall credential-process dev\n# END rolecall\n[profile after]\nregion = eu-central-1");
    for (name, text) in [
        ("hand", hand.to_string()),
        ("block", with_block.clone()),
        ("crlf", with_block.replace('\n', "\r\n")),
        ("empty", String::new()),
    ] {
        w.put(
            "awsconfig_block",
            name,
            &[text.as_bytes(), &[0], b"dev\nprod-eu\nlegacy\ndefault"],
        );
    }
}

struct Writer {
    corpus: PathBuf,
}

impl Writer {
    fn put(&mut self, target: &str, name: &str, parts: &[&[u8]]) {
        let dir = self.corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), parts.concat()).unwrap();
    }
}
