//! `rolecall console`: the federation sign-in URL against the sandbox's `/federation`
//! emulation, followed by a real headless Chromium to the sandbox's console page.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use rolecall_tests::http::tcp_request;
use rolecall_tests::World;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The skip convention of the test suite: recorded when `ROLECALL_SKIP_LOG` is set, never a pass
/// in silence.
fn skip(test: &str, reason: &str) {
    if let Some(log) = std::env::var_os("ROLECALL_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{test}: {reason}");
        }
    }
    eprintln!("SKIP: {reason}");
}

/// `rolecall console <profile> --print <extra>`: the one URL line on stdout.
fn print_url(w: &World, profile: &str, extra: &[&str]) -> String {
    let mut args = vec!["console", profile, "--print"];
    args.extend_from_slice(extra);
    let run = w.inst.rolecall(args).timeout(Duration::from_secs(60)).run();
    run.assert_success();
    assert_eq!(run.stdout.lines().count(), 1, "one line: {:?}", run.stdout);
    run.stdout.trim_end().to_string()
}

/// The path and query of a sandbox URL.
fn path_of<'a>(w: &World, url: &'a str) -> &'a str {
    url.strip_prefix(w.sandbox.url())
        .unwrap_or_else(|| panic!("URL is not the sandbox's: {url}"))
}

fn query_param(url: &str, key: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| {
            let v = v.replace('+', " ");
            let bytes = v.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
                    let h = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(h, 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        })
    })
}

/// Headless Chromium following `url`; the DOM of the page it lands on.
fn chromium_dump_dom(url: &str, profile_dir: &Path) -> String {
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile_dir.display()))
        .args(["--dump-dom", url])
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn printed_url_signs_chromium_in_to_the_console_as_the_role() {
    if !Path::new(CHROMIUM).exists() {
        return skip(
            "printed_url_signs_chromium_in_to_the_console_as_the_role",
            "no Chromium at /usr/bin/chromium",
        );
    }
    let w = World::new();
    w.login();
    let url = print_url(
        &w,
        "dev-admin",
        &["--service", "s3", "--region", "eu-west-1"],
    );
    let path = path_of(&w, &url);
    assert!(
        path.starts_with("/federation?Action=login&Issuer=rolecall&Destination="),
        "{path}"
    );
    assert_eq!(
        query_param(&url, "Destination").as_deref(),
        Some("https://console.aws.amazon.com/s3/home?region=eu-west-1")
    );
    let token = query_param(&url, "SigninToken").expect("a SigninToken");
    assert!(token.len() >= 32, "token {token:?}");
    assert_eq!(w.sandbox.count("signin:GetSigninToken"), 1);

    let tmp = tempfile::tempdir().unwrap();
    let dom = chromium_dump_dom(&url, tmp.path());
    assert!(dom.contains("AWS Management Console (sandbox)"), "{dom}");
    assert!(
        dom.contains("arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_DeveloperAdmin_"),
        "the console names the role: {dom}"
    );
    assert!(
        dom.contains("https://console.aws.amazon.com/s3/home?region=eu-west-1"),
        "{dom}"
    );
    assert_eq!(w.sandbox.count("signin:Console"), 1);

    // The URL is a bearer secret: it never reaches the daemon's log.
    let log = w.inst.daemon_log();
    assert!(
        log.contains("console sign-in"),
        "the sign-in is logged: {log}"
    );
    assert!(
        !log.contains(&token),
        "the SigninToken is in the daemon log"
    );
    assert!(!log.contains("SigninToken"), "the URL is in the daemon log");
    for s in w.sandbox.issued_secrets() {
        assert!(
            !log.contains(&s),
            "a credential secret is in the daemon log"
        );
    }

    // A default console page and a session duration AWS accepts.
    let url = print_url(&w, "staging-power", &["--session-duration", "3600"]);
    assert!(
        url.contains(
            "Destination=https%3A%2F%2Fconsole.aws.amazon.com%2Fconsole%2Fhome%3Fregion%3D"
        ),
        "{url}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dom = chromium_dump_dom(&url, tmp.path());
    assert!(
        dom.contains("arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_DeveloperPowerUser_"),
        "{dom}"
    );
}

#[test]
fn without_print_the_browser_gets_the_url_and_stdout_stays_empty() {
    let w = World::new();
    w.login();
    let before = w.inst.browser_launches();
    let run = w
        .inst
        .rolecall(["console", "dev-ro", "--service", "ec2"])
        .timeout(Duration::from_secs(60))
        .run();
    run.assert_success();
    assert!(run.stdout.is_empty(), "nothing on stdout: {}", run.stdout);
    assert!(
        run.stderr.contains("opened the AWS console"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("SigninToken"), "{}", run.stderr);
    assert_eq!(w.inst.browser_launches(), before + 1);
    let url = w.inst.browser_urls().pop().unwrap();
    assert!(
        path_of(&w, &url).starts_with("/federation?Action=login&"),
        "{url}"
    );
    // The robot browser followed it to the console page.
    assert!(
        rolecall_tests::wait_until(Duration::from_secs(10), || w
            .sandbox
            .count("signin:Console")
            == 1),
        "the browser never reached the console"
    );
}

#[test]
fn bad_sessions_and_tokens_are_refused_like_aws() {
    let w = World::new();
    w.login();
    let sb = &w.sandbox;
    let get = |path: &str| tcp_request(sb.url(), "GET", path, &[], None).unwrap();

    // Malformed JSON, forged keys, a known key with a wrong secret.
    let r = get("/federation?Action=getSigninToken&Session=%7Bnot-json");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("Invalid Session parameter"),
        "{}",
        r.text()
    );
    let forged = "%7B%22sessionId%22%3A%22ASIAFORGEDFORGEDFORG%22%2C%22sessionKey%22%3A%22x%22%2C%22sessionToken%22%3A%22y%22%7D";
    let r = get(&format!(
        "/federation?Action=getSigninToken&Session={forged}"
    ));
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("Invalid credentials parameter"),
        "{}",
        r.text()
    );
    w.credential_process("dev-admin").assert_success();
    let issued = sb.admin("GET", "/_sandbox/issued", None);
    let key = issued["credentials"][0]["access_key_id"]
        .as_str()
        .expect("an issued key")
        .to_string();
    let wrong = format!(
        "%7B%22sessionId%22%3A%22{key}%22%2C%22sessionKey%22%3A%22wrong%22%2C%22sessionToken%22%3A%22wrong%22%7D"
    );
    let r = get(&format!(
        "/federation?Action=getSigninToken&Session={wrong}"
    ));
    assert_eq!(r.status, 400, "{}", r.text());

    // A forged sign-in token is an error page, not a console.
    let r = get("/federation?Action=login&Issuer=x&Destination=https%3A%2F%2Fconsole.aws.amazon.com%2F&SigninToken=forged");
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("invalid or expired sign-in token"),
        "{}",
        r.text()
    );

    // An unknown profile and a service that would change the destination: one line each.
    let run = w.inst.rolecall(["console", "nope", "--print"]).run();
    let line = run.assert_one_line_failure();
    assert!(line.contains("unknown profile 'nope'"), "{line}");
    let run = w
        .inst
        .rolecall(["console", "dev-admin", "--print", "--service", "s3/../evil"])
        .run();
    let line = run.assert_one_line_failure();
    assert!(
        line.contains("service \"s3/../evil\" is not valid"),
        "{line}"
    );

    // An out-of-range session duration never leaves the CLI.
    let run = w
        .inst
        .rolecall([
            "console",
            "dev-admin",
            "--print",
            "--session-duration",
            "60",
        ])
        .run();
    assert!(!run.success());
    assert!(run.stdout.is_empty());

    // A sign-in token older than 15 minutes is refused.
    let url = print_url(&w, "dev-admin", &[]);
    sb.admin(
        "POST",
        "/_sandbox/clock",
        Some(serde_json::json!({"advance_secs": 16 * 60})),
    );
    let r = get(path_of(&w, &url));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("invalid or expired sign-in token"));

    // Credentials the sandbox sees as expired (its clock moved past them; the daemon's cache
    // did not): the sign-in endpoint refuses them and the CLI says so in one line.
    sb.admin(
        "POST",
        "/_sandbox/clock",
        Some(serde_json::json!({"advance_secs": 24 * 3600})),
    );
    let run = w
        .inst
        .rolecall(["console", "dev-admin", "--print"])
        .timeout(Duration::from_secs(60))
        .run();
    let line = run.assert_one_line_failure();
    assert!(
        line.contains("refused the credentials of profile 'dev-admin'"),
        "{line}"
    );
    assert!(line.contains("expired"), "{line}");
    assert!(run.stdout.is_empty());
}
