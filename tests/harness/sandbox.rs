//! The sandbox as a process: `rolecall-sandbox --listen 127.0.0.1:0 [--auto-approve] [--seed F]`,
//! its base URL read from the first stdout line, and helpers for its admin API under
//! `/_sandbox/` (counts, faults, pending logins, revocation). Killed on drop.

use crate::http::{self, Reply};
use crate::{bin_path, kill_child};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Approve every browser step (authorize, device verification, SAML) as soon as it is visited.
    pub auto_approve: bool,
    /// A seed directory TOML (`--seed`).
    pub seed: Option<PathBuf>,
    /// A fixed listen address instead of `127.0.0.1:0`.
    pub listen: Option<String>,
}

/// A running sandbox process.
pub struct Sandbox {
    child: Option<Child>,
    url: String,
    stderr_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sandbox {
    /// Starts a sandbox that approves browser steps by itself.
    pub fn start_auto_approve() -> Self {
        Self::start(SandboxOptions {
            auto_approve: true,
            ..Default::default()
        })
        .expect("start the sandbox")
    }

    /// Starts a sandbox whose browser steps wait for [`Sandbox::approve_all`].
    pub fn start_manual() -> Self {
        Self::start(SandboxOptions::default()).expect("start the sandbox")
    }

    pub fn start(opts: SandboxOptions) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("rc-sbx").tempdir()?;
        let stderr_path = dir.path().join("sandbox.stderr");
        let stderr = std::fs::File::create(&stderr_path)?;
        let mut cmd = Command::new(bin_path("rolecall-sandbox"));
        cmd.arg("--listen")
            .arg(opts.listen.as_deref().unwrap_or("127.0.0.1:0"));
        if opts.auto_approve {
            cmd.arg("--auto-approve");
        }
        if let Some(seed) = &opts.seed {
            cmd.arg("--seed").arg(seed);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("spawn rolecall-sandbox")?;
        let stdout = child.stdout.take().context("sandbox stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = tx.send(first);
            // Keep draining so that the sandbox never blocks on a full pipe.
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let first = match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(line) => line,
            Err(_) => {
                kill_child(&mut child);
                bail!("the sandbox printed no base URL within 15 s");
            }
        };
        let url = first.trim().trim_end_matches('/').to_string();
        if !url.starts_with("http://127.0.0.1:") {
            kill_child(&mut child);
            let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            bail!("the sandbox's first line is not its base URL: {first:?}; stderr: {err}");
        }
        Ok(Self {
            child: Some(child),
            url,
            stderr_path,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// What the sandbox wrote on stderr (its log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.stderr_path
    }

    /// Stops the sandbox now (a "sandbox down" test keeps the URL in the config).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_child(&mut c);
        }
    }

    /// Any request to the sandbox.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Reply> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let headers: &[(&str, &str)] = if bytes.is_some() {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        http::tcp_request(&self.url, method, path, headers, bytes.as_deref())
    }

    /// An admin API call that must succeed; its JSON reply (Null for an empty body).
    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        // The admin API takes a JSON object with every POST and DELETE.
        let body = match (method, body) {
            ("POST" | "DELETE", None) => Some(json!({})),
            (_, b) => b,
        };
        let reply = self
            .request(method, path, body.as_ref())
            .unwrap_or_else(|e| panic!("sandbox admin {method} {path}: {e:#}"));
        assert!(
            (200..300).contains(&reply.status),
            "sandbox admin {method} {path}: {} {}",
            reply.status,
            reply.text()
        );
        if reply.body.is_empty() {
            Value::Null
        } else {
            reply.json().unwrap_or(Value::Null)
        }
    }

    /// Calls per operation (`sso:GetRoleCredentials`, `ssooidc:RegisterClient`, …).
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let v = self.admin("GET", "/_sandbox/counts", None);
        let mut out = BTreeMap::new();
        if let Some(map) = v.get("counts").and_then(Value::as_object).or(v.as_object()) {
            for (k, n) in map {
                if let Some(n) = n.as_u64() {
                    out.insert(k.clone(), n);
                }
            }
        }
        out
    }

    pub fn count(&self, operation: &str) -> u64 {
        self.counts().get(operation).copied().unwrap_or(0)
    }

    pub fn reset_counts(&self) {
        self.admin("POST", "/_sandbox/counts/reset", None);
    }

    /// Injects a fault on `operation` for its next `count` calls.
    pub fn fault(&self, operation: &str, fault: Fault, count: u32) {
        let mut body = json!({ "operation": operation, "count": count });
        match fault {
            Fault::Status(s) => {
                body["kind"] = json!("status");
                body["status"] = json!(s);
            }
            Fault::Throttle => body["kind"] = json!("throttle"),
            Fault::Latency(ms) => {
                body["kind"] = json!("latency");
                body["latency_ms"] = json!(ms);
            }
            Fault::Drop => body["kind"] = json!("drop"),
        }
        self.admin("POST", "/_sandbox/faults", Some(body));
    }

    pub fn clear_faults(&self) {
        self.admin("DELETE", "/_sandbox/faults", None);
    }

    /// The logins waiting for a user (device codes, authorize requests, SAML requests).
    pub fn pending(&self) -> Value {
        self.admin("GET", "/_sandbox/pending", None)
    }

    /// Approves every pending browser step (as the directory's first user).
    pub fn approve_all(&self) {
        self.admin("POST", "/_sandbox/approve", Some(json!({ "all": true })));
    }

    /// Denies every pending browser step.
    pub fn deny_all(&self) {
        self.admin("POST", "/_sandbox/deny", Some(json!({ "all": true })));
    }

    /// Revokes every Identity Center refresh token the sandbox issued.
    pub fn revoke_refresh_tokens(&self) {
        self.admin("POST", "/_sandbox/revoke-refresh-tokens", None);
    }

    /// Makes every Identity Center access token the sandbox issued expire now.
    pub fn expire_access_tokens(&self) {
        self.admin("POST", "/_sandbox/expire-access-tokens", None);
    }

    /// Every secret string the sandbox handed out (role credentials, OIDC tokens and client
    /// secrets), for scans that prove none of them leaks.
    pub fn issued_secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for path in ["/_sandbox/issued", "/_sandbox/oidc"] {
            if let Ok(r) = self.request("GET", path, None) {
                if r.status == 200 {
                    if let Ok(v) = r.json() {
                        collect_secret_strings(&v, &mut out);
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Sets lifetimes (seconds) of what the sandbox issues, e.g.
    /// `{"role_credentials_secs": 3600, "access_token_secs": 60}`.
    pub fn lifetimes(&self, body: Value) {
        self.admin("POST", "/_sandbox/lifetimes", Some(body));
    }
}

/// String values of members whose names say they are secret (tokens, secret keys).
fn collect_secret_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let k = k.to_ascii_lowercase();
                match x.as_str() {
                    Some(s) if (k.contains("token") || k.contains("secret")) && s.len() >= 8 => {
                        out.push(s.to_string())
                    }
                    Some(_) => {}
                    None => collect_secret_strings(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_secret_strings(x, out)),
        _ => {}
    }
}

/// A fault the sandbox injects.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer with this HTTP status (the service's error shape).
    Status(u16),
    /// The service's throttling error.
    Throttle,
    /// Added latency in milliseconds.
    Latency(u64),
    /// Close the connection without a reply.
    Drop,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop();
    }
}
