//! The audit log's format, shared by the daemon (which writes it) and `rolecall audit` (which
//! reads the files directly, so the log can be read while no daemon runs).
//!
//! One JSON object per line in `audit.jsonl` in the state dir; older lines in `audit.jsonl.1`,
//! `audit.jsonl.2`, … (higher is older). A line records one hand-out of credentials — never the
//! secret key, the session token or a container/IMDS token, only identifiers — or says how many
//! records were dropped because the writer could not keep up.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The current file, in the state dir.
pub const FILE_NAME: &str = "audit.jsonl";

/// `audit.jsonl` for 0, `audit.jsonl.N` for the N-th older file.
pub fn file_path(state_dir: &Path, n: u32) -> PathBuf {
    if n == 0 {
        state_dir.join(FILE_NAME)
    } else {
        state_dir.join(format!("{FILE_NAME}.{n}"))
    }
}

/// How the credentials left the daemon.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Interface {
    /// `rolecall credential-process` over the socket.
    CredentialProcess,
    /// `rolecall exec` over the socket (its `--static` keys, or the sign-in check before a
    /// container token is minted; the child's own fetches are `container` lines).
    Exec,
    /// `rolecall env` over the socket.
    Env,
    /// Another client of the socket API that did not say what it is.
    Socket,
    /// The container credentials endpoint.
    Container,
    /// The IMDSv2 emulation.
    Imds,
}

impl Interface {
    /// The value of the socket API's `via` query parameter (and of the JSON field).
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::CredentialProcess => "credential_process",
            Interface::Exec => "exec",
            Interface::Env => "env",
            Interface::Socket => "socket",
            Interface::Container => "container",
            Interface::Imds => "imds",
        }
    }

    /// What a socket client may claim with `via=` (the endpoints are not claimed, they are
    /// where the request arrived).
    pub fn from_via(via: Option<&str>) -> Interface {
        match via {
            Some("credential_process") => Interface::CredentialProcess,
            Some("exec") => Interface::Exec,
            Some("env") => Interface::Env,
            _ => Interface::Socket,
        }
    }
}

/// Who asked. Socket clients are named by the kernel (`SO_PEERCRED`): `pid` is the process
/// that connected — the `rolecall` CLI — and `ppid`/`parent_exe` the program that ran it (the
/// `aws` CLI, python, a shell). TCP clients (container, IMDS) are named by their address and,
/// on loopback, by the uid the kernel reports for their socket.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Caller {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_exe: Option<String>,
    /// `ip:port` of a TCP client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
}

/// The container token a request presented: its id (what `rolecall status` lists), never its
/// value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct TokenRef {
    pub id: String,
    /// The process the token is bound to (`rolecall exec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_pid: Option<u32>,
}

/// One line of the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record {
    Credentials(Box<Handout>),
    /// `count` records were lost (the writer's queue was full, or writing failed) since the
    /// previous line.
    Dropped {
        time: String,
        count: u64,
    },
}

impl Record {
    pub fn time(&self) -> &str {
        match self {
            Record::Credentials(h) => &h.time,
            Record::Dropped { time, .. } => time,
        }
    }
}

/// Credentials handed out once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Handout {
    /// RFC 3339, UTC, seconds.
    pub time: String,
    pub interface: Interface,
    pub profile: String,
    /// The profile's role as configured: a permission set name (identity-center) or a role ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The role's ARN when the source reports it (Identity Center does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    pub account_id: String,
    pub access_key_id: String,
    /// When the credentials handed out expire (RFC 3339).
    pub expiration: String,
    pub caller: Caller,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenRef>,
    /// For credentials of a scoped session: the hash of its session policies
    /// (`sha256:<16 hex>`, see `rolecall_proto::scope::SessionScope::policy_hash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_policy: Option<String>,
    /// How many identical hand-outs this line stands for, when more than one: the same
    /// credentials to the same connection through the same token within the writer's batch
    /// window (a few milliseconds). Absent: one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_documented_shape() {
        let r = Record::Credentials(Box::new(Handout {
            time: "2026-12-04T10:00:00Z".into(),
            interface: Interface::CredentialProcess,
            profile: "dev".into(),
            role: Some("R".into()),
            role_arn: Some("arn:aws:iam::1:role/R".into()),
            account_id: "1".into(),
            access_key_id: "ASIAX".into(),
            expiration: "2026-12-04T11:00:00Z".into(),
            caller: Caller {
                uid: Some(1000),
                pid: Some(5),
                ..Caller::default()
            },
            token: None,
            session_policy: None,
            count: None,
        }));
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"event":"credentials","time":"2026-12-04T10:00:00Z","interface":"credential_process","profile":"dev","role":"R","role_arn":"arn:aws:iam::1:role/R","account_id":"1","access_key_id":"ASIAX","expiration":"2026-12-04T11:00:00Z","caller":{"uid":1000,"pid":5}}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), r);
        let d = serde_json::to_string(&Record::Dropped {
            time: "t".into(),
            count: 3,
        })
        .unwrap();
        assert_eq!(d, r#"{"event":"dropped","time":"t","count":3}"#);
        assert_eq!(file_path(Path::new("/s"), 2), Path::new("/s/audit.jsonl.2"));
        for i in [
            Interface::CredentialProcess,
            Interface::Exec,
            Interface::Env,
        ] {
            assert_eq!(Interface::from_via(Some(i.as_str())), i);
        }
        assert_eq!(Interface::from_via(Some("imds")), Interface::Socket);
    }
}
