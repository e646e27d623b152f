//! The floor for `credential-process`: a process that prints a constant credential_process
//! JSON line and exits. Built with `rustc -O` by tests/benches/credential_process.sh.
use std::io::Write;

fn main() {
    let line = br#"{"Version":1,"AccessKeyId":"ASIAEXAMPLEEXAMPLE00","SecretAccessKey":"0000000000000000000000000000000000000000","SessionToken":"x","Expiration":"2026-11-22T10:00:00Z","AccountId":"111111111111"}
"#;
    let _ = std::io::stdout().lock().write_all(line);
}
