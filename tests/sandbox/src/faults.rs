//! Per-operation call counters and fault injection.
//!
//! Operations are named `<service>:<Operation>` (`ssooidc:CreateToken`, `sso:GetRoleCredentials`,
//! `sts:AssumeRoleWithSAML`, `entra:token`, ...). A fault applies to the next `count` calls of
//! one operation (or of every operation with `"*"`): an HTTP status in the service's error shape,
//! the service's own throttling error, added latency, or a dropped connection.

use crate::http::{self, Interrupt, Resp};
use ::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    Status,
    Throttle,
    Latency,
    Drop,
}

/// One injected fault, as posted to `POST /_sandbox/faults`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// `<service>:<Operation>`, or `*` for every operation.
    pub operation: String,
    pub kind: FaultKind,
    /// For `status`: the HTTP status to answer (default 500).
    #[serde(default)]
    pub status: Option<u16>,
    /// For `latency`: the delay before the normal answer.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// How many of the next calls it applies to (default 1).
    #[serde(default)]
    pub count: Option<u32>,
}

impl FaultSpec {
    pub fn validate(&self) -> Result<(), String> {
        if self.operation != "*" && !self.operation.contains(':') {
            return Err(format!(
                "operation '{}' must be '<service>:<Operation>' or '*'",
                self.operation
            ));
        }
        if let Some(s) = self.status {
            if !(400..=599).contains(&s) {
                return Err(format!("status {s} is not an HTTP error status (400-599)"));
            }
        }
        if self.kind == FaultKind::Latency && self.latency_ms.is_none() {
            return Err("a latency fault needs latency_ms".into());
        }
        if self.count == Some(0) {
            return Err("count must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
struct ActiveFault {
    spec: FaultSpec,
    remaining: u32,
}

/// Counters and the queue of pending faults.
#[derive(Debug, Default)]
pub struct Faults {
    counts: Mutex<BTreeMap<String, u64>>,
    active: Mutex<Vec<ActiveFault>>,
}

/// What `Faults::take` decided for one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Proceed,
    Status(u16),
    Throttle,
    Latency(Duration),
    Drop,
}

impl Faults {
    pub fn add(&self, spec: FaultSpec) -> Result<(), String> {
        spec.validate()?;
        let remaining = spec.count.unwrap_or(1);
        self.active
            .lock()
            .expect("faults lock")
            .push(ActiveFault { spec, remaining });
        Ok(())
    }

    pub fn clear(&self) {
        self.active.lock().expect("faults lock").clear();
    }

    pub fn list(&self) -> serde_json::Value {
        let active = self.active.lock().expect("faults lock");
        serde_json::to_value(&*active).unwrap_or_default()
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().expect("counts lock").clone()
    }

    pub fn count(&self, op: &str) -> u64 {
        self.counts
            .lock()
            .expect("counts lock")
            .get(op)
            .copied()
            .unwrap_or(0)
    }

    pub fn reset_counts(&self) {
        self.counts.lock().expect("counts lock").clear();
    }

    /// Counts one call of `op` and consumes the first fault that matches it.
    pub fn take(&self, op: &str) -> Action {
        *self
            .counts
            .lock()
            .expect("counts lock")
            .entry(op.to_string())
            .or_insert(0) += 1;
        let mut active = self.active.lock().expect("faults lock");
        let Some(i) = active
            .iter()
            .position(|f| f.spec.operation == op || f.spec.operation == "*")
        else {
            return Action::Proceed;
        };
        let f = &mut active[i];
        f.remaining -= 1;
        let action = match f.spec.kind {
            FaultKind::Status => Action::Status(f.spec.status.unwrap_or(500)),
            FaultKind::Throttle => Action::Throttle,
            FaultKind::Latency => {
                Action::Latency(Duration::from_millis(f.spec.latency_ms.unwrap_or(0)))
            }
            FaultKind::Drop => Action::Drop,
        };
        if f.remaining == 0 {
            active.remove(i);
        }
        action
    }
}

impl crate::Sandbox {
    /// Counts a call of `op` and applies an injected fault. Handlers call it first:
    /// `sb.enter("sso:GetRoleCredentials").await?;`
    pub async fn enter(&self, op: &str) -> Result<(), Interrupt> {
        match self.faults.take(op) {
            Action::Proceed => Ok(()),
            Action::Latency(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Action::Drop => Err(Interrupt::Drop),
            Action::Throttle => Err(Interrupt::Reply(throttle_reply(op))),
            Action::Status(s) => Err(Interrupt::Reply(status_reply(op, s))),
        }
    }
}

fn service(op: &str) -> &str {
    op.split(':').next().unwrap_or("")
}

/// The STS query-protocol error document.
pub fn sts_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Resp {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        http::escape_xml(message),
        uuid::Uuid::new_v4()
    );
    http::xml(status, body)
}

/// Entra's OAuth error document (AADSTS code in the description, as Entra answers).
pub fn entra_error(status: StatusCode, error: &str, aadsts: u32, description: &str) -> Resp {
    let trace = uuid::Uuid::new_v4();
    let corr = uuid::Uuid::new_v4();
    let ts = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    http::json(
        status,
        &serde_json::json!({
            "error": error,
            "error_description": format!("AADSTS{aadsts}: {description} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}"),
            "error_codes": [aadsts],
            "timestamp": ts,
            "trace_id": trace.to_string(),
            "correlation_id": corr.to_string(),
        }),
    )
}

/// The service's own throttling error.
pub fn throttle_reply(op: &str) -> Resp {
    match service(op) {
        "sts" => sts_error(
            StatusCode::BAD_REQUEST,
            "Sender",
            "Throttling",
            "Rate exceeded",
        ),
        "sso" => http::aws_json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            serde_json::json!({"message": "Too many requests"}),
        ),
        // The OIDC model's only throttling error.
        "ssooidc" => http::aws_json_error(
            StatusCode::BAD_REQUEST,
            "SlowDownException",
            serde_json::json!({"error": "slow_down", "error_description": "Rate exceeded"}),
        ),
        "entra" => {
            let mut r = entra_error(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                50196,
                "The server terminated an operation because it encountered a client request loop.",
            );
            r.headers_mut()
                .insert("retry-after", ::http::HeaderValue::from_static("1"));
            r
        }
        _ => http::text(StatusCode::TOO_MANY_REQUESTS, "too many requests\n"),
    }
}

/// An injected HTTP status, in the service's error shape.
pub fn status_reply(op: &str, status: u16) -> Resp {
    let st = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let server = status >= 500;
    match service(op) {
        "sts" => {
            let code = match status {
                503 => "ServiceUnavailable",
                s if s >= 500 => "InternalFailure",
                _ => "InvalidAction",
            };
            sts_error(
                st,
                if server { "Receiver" } else { "Sender" },
                code,
                "injected fault",
            )
        }
        "sso" | "ssooidc" => {
            let et = match status {
                503 => "ServiceUnavailableException",
                s if s >= 500 => "InternalServerException",
                _ => "InvalidRequestException",
            };
            let body = if service(op) == "sso" {
                serde_json::json!({"message": "injected fault"})
            } else {
                serde_json::json!({"error": if server {"server_error"} else {"invalid_request"}, "error_description": "injected fault"})
            };
            http::aws_json_error(st, et, body)
        }
        "entra" => entra_error(
            st,
            if server {
                "temporarily_unavailable"
            } else {
                "invalid_request"
            },
            if server { 90033 } else { 900144 },
            "injected fault",
        ),
        _ => http::text(st, "injected fault\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(op: &str, kind: FaultKind, count: u32) -> FaultSpec {
        FaultSpec {
            operation: op.into(),
            kind,
            status: None,
            latency_ms: Some(5),
            count: Some(count),
        }
    }

    #[test]
    fn counts_and_consumes() {
        let f = Faults::default();
        f.add(spec("sso:GetRoleCredentials", FaultKind::Drop, 2))
            .unwrap();
        assert_eq!(f.take("sso:ListAccounts"), Action::Proceed);
        assert_eq!(f.take("sso:GetRoleCredentials"), Action::Drop);
        assert_eq!(f.take("sso:GetRoleCredentials"), Action::Drop);
        assert_eq!(f.take("sso:GetRoleCredentials"), Action::Proceed);
        assert_eq!(f.count("sso:GetRoleCredentials"), 3);
        f.reset_counts();
        assert_eq!(f.count("sso:GetRoleCredentials"), 0);
    }

    #[test]
    fn wildcard_and_validation() {
        let f = Faults::default();
        f.add(spec("*", FaultKind::Throttle, 1)).unwrap();
        assert_eq!(f.take("sts:GetCallerIdentity"), Action::Throttle);
        assert!(f.add(spec("nocolon", FaultKind::Drop, 1)).is_err());
        assert!(f.add(spec("a:b", FaultKind::Drop, 0)).is_err());
        let mut s = spec("a:b", FaultKind::Status, 1);
        s.status = Some(200);
        assert!(f.add(s).is_err());
    }

    #[test]
    fn throttle_shapes() {
        assert_eq!(throttle_reply("sso:ListAccounts").status(), 429);
        let r = throttle_reply("ssooidc:CreateToken");
        assert_eq!(r.headers()["x-amzn-errortype"], "SlowDownException");
        assert_eq!(throttle_reply("sts:AssumeRoleWithSAML").status(), 400);
    }
}
