//! The admin API under `/_sandbox/` (JSON), for tests and the demo: pending logins and their
//! approval, token expiry and revocation, call counts, fault injection, lifetimes, the clock.
//! Documented in `tests/sandbox/README.md`.

use crate::faults::FaultSpec;
use crate::http::{self, HandlerResult, Req, Resp};
use crate::oidc;
use crate::pending::{Decision, Selector};
use crate::Sandbox;
use ::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

fn bad(msg: &str) -> Resp {
    http::json(StatusCode::BAD_REQUEST, &json!({"error": msg}))
}

fn ok(v: Value) -> HandlerResult {
    Ok(http::json(StatusCode::OK, &v))
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

pub async fn handle(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    let sub = req
        .path()
        .trim_start_matches("/_sandbox")
        .trim_end_matches('/');
    let body = if req.method() == Method::POST || req.method() == Method::DELETE {
        match req.json() {
            Ok(v) if v.is_object() => v,
            Ok(_) => return Ok(bad("body must be a JSON object")),
            Err(e) => return Ok(bad(&e)),
        }
    } else {
        json!({})
    };
    let now = sb.clock.now_unix();
    match (req.method().clone(), sub) {
        (Method::GET, "/health" | "") => ok(json!({
            "ok": true,
            "base_url": sb.base_url,
            "auto_approve": sb.auto_approve(),
            "clock_offset_secs": sb.clock.offset_secs(),
        })),
        (Method::POST, "/signin/sessions") => match crate::signin_oauth::start_session(sb, &body) {
            Ok(v) => ok(v),
            Err(e) => Ok(bad(&e)),
        },
        (Method::GET, "/signin/sessions") => ok(crate::signin_oauth::stats(sb)),
        (Method::GET, "/pending") => {
            let all = sb.pending.list();
            let pending: Vec<_> = all
                .into_iter()
                .filter(|p| p.decision == Decision::Pending)
                .collect();
            ok(json!({"pending": pending}))
        }
        (Method::POST, "/approve") => {
            let user = match s(&body, "user") {
                Some(u) => match sb.dir().user(u) {
                    Some(u) => u.upn.clone(),
                    None => return Ok(bad(&format!("unknown user '{u}'"))),
                },
                None => sb.dir().default_user().upn.clone(),
            };
            decide(sb, &body, Decision::Approved { user }, "approved")
        }
        (Method::POST, "/deny") => decide(sb, &body, Decision::Denied, "denied"),
        (Method::POST, "/auto-approve") => match body.get("enabled").and_then(Value::as_bool) {
            Some(on) => {
                sb.set_auto_approve(on);
                ok(json!({"auto_approve": on}))
            }
            None => Ok(bad("expected {\"enabled\": true|false}")),
        },
        (Method::POST, "/expire-access-tokens") => {
            let n = sb.state::<oidc::State>().expire_access(
                s(&body, "user"),
                s(&body, "client_id"),
                s(&body, "access_token"),
                now,
            );
            ok(json!({"expired": n}))
        }
        (Method::POST, "/revoke-refresh-tokens") => {
            let n = sb
                .state::<oidc::State>()
                .revoke_refresh(s(&body, "user"), s(&body, "client_id"));
            ok(json!({"revoked": n}))
        }
        (Method::POST, "/expire-client") => match s(&body, "client_id") {
            Some(c) if sb.state::<oidc::State>().expire_client(c, now) => ok(json!({"expired": 1})),
            Some(_) => Ok(http::json(
                StatusCode::NOT_FOUND,
                &json!({"error": "unknown client_id"}),
            )),
            None => Ok(bad("client_id is required")),
        },
        (Method::GET, "/oidc") => ok(sb.state::<oidc::State>().summary()),
        (Method::GET, "/counts") => {
            ok(serde_json::to_value(sb.faults.counts()).unwrap_or_default())
        }
        (Method::POST, "/counts/reset") => {
            sb.faults.reset_counts();
            ok(json!({"reset": true}))
        }
        (Method::GET, "/faults") => ok(json!({"faults": sb.faults.list()})),
        (Method::POST, "/faults") => match serde_json::from_value::<FaultSpec>(body) {
            Ok(spec) => match sb.faults.add(spec) {
                Ok(()) => ok(json!({"faults": sb.faults.list()})),
                Err(e) => Ok(bad(&e)),
            },
            Err(e) => Ok(bad(&format!("bad fault: {e}"))),
        },
        (Method::DELETE, "/faults") => {
            sb.faults.clear();
            ok(json!({"faults": []}))
        }
        (Method::GET, "/lifetimes") => ok(serde_json::to_value(sb.lifetimes()).unwrap_or_default()),
        (Method::POST, "/lifetimes") => {
            let mut lt = sb.lifetimes.write().expect("lifetimes lock");
            match lt.merge_json(&body) {
                Ok(()) => ok(serde_json::to_value(&*lt).unwrap_or_default()),
                Err(e) => Ok(bad(&e)),
            }
        }
        (Method::POST, "/sts/saml-single-use") => {
            match body.get("enabled").and_then(Value::as_bool) {
                Some(on) => {
                    sb.state::<crate::sts::saml_action::SingleUse>().set(on);
                    ok(json!({"saml_single_use": on}))
                }
                None => Ok(bad("expected {\"enabled\": true|false}")),
            }
        }
        (Method::GET, "/clock") => ok(json!({"now": now, "offset_secs": sb.clock.offset_secs()})),
        (Method::POST, "/clock") => match body.get("advance_secs").and_then(Value::as_i64) {
            Some(n) if n >= 0 => {
                sb.clock.advance(n);
                ok(json!({"now": sb.clock.now_unix(), "offset_secs": sb.clock.offset_secs()}))
            }
            _ => Ok(bad("expected {\"advance_secs\": N} with N >= 0")),
        },
        (Method::GET, "/issued") => ok(json!({"credentials": sb.issued.list()})),
        (Method::GET, "/directory") => ok(serde_json::to_value(&*sb.dir()).unwrap_or_default()),
        // Entra's switches (revoke, SAML signing/validity/recipient) live with Entra (sbxb).
        (_, p) if p.starts_with("/entra/") => {
            let rest: Vec<&str> = p["/entra/".len()..].split('/').collect();
            crate::entra::admin(sb, req, &rest).await
        }
        _ => Ok(http::json(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no admin endpoint {} {}", req.method(), req.path())}),
        )),
    }
}

fn decide(sb: &Sandbox, body: &Value, decision: Decision, verb: &str) -> HandlerResult {
    let sel = Selector {
        id: s(body, "id").map(str::to_string),
        user_code: s(body, "user_code").map(str::to_string),
        kind: s(body, "kind").map(str::to_string),
        all: body.get("all").and_then(Value::as_bool).unwrap_or(false),
    };
    if sel.id.is_none() && sel.user_code.is_none() && !sel.all {
        return Ok(bad("give \"id\", \"user_code\" or \"all\": true"));
    }
    let n = sb.pending.decide(&sel, decision);
    if n == 0 && !sel.all {
        return Ok(http::json(
            StatusCode::NOT_FOUND,
            &json!({"error": "no pending login matches", verb: 0}),
        ));
    }
    ok(json!({ verb: n }))
}
