//! The socket API's request parsing, through the pure functions the router uses: the request
//! target (`http::Uri`, as hyper parses it), its `/v1/…` segments and query parameters, and the
//! JSON body of every request type. Routing itself needs a running daemon (the black-box
//! tests cover it); everything it decides on comes from these.
//!
//! Input: the request target, a NUL, then the body.

use rolecall_daemon::serve::socket::router::{segments, Query};
use rolecall_proto::api::{
    ConsoleRequest, LoginRequest, LogoutRequest, MintTokenRequest, RenewTokenRequest,
    RevokeTokenRequest,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub fn run(data: &[u8]) {
    let (target, body) = crate::two_parts(data);
    if let Ok(uri) = http::Uri::try_from(target) {
        let path = uri.path();
        if let Some(segs) = segments(path) {
            // Decoded segments never smuggle a separator back into a name (no `/` survives
            // inside a segment unless it was percent-encoded in the target).
            let raw = path.strip_prefix("/v1/").expect("segments needs /v1/");
            assert_eq!(segs.len(), raw.split('/').count());
        }
        let q = Query::parse(uri.query());
        for key in ["interactive", "via"] {
            if let Ok(flag) = q.flag(key) {
                let v = q.get(key);
                assert_eq!(flag, matches!(v, Some("1" | "true" | "yes")));
            }
        }
        if let Ok(Some(wait)) = q.wait() {
            assert!(wait.as_secs() <= 600, "a wait beyond the cap: {wait:?}");
        }
    }
    body_round_trips::<LoginRequest>(body);
    body_round_trips::<LogoutRequest>(body);
    body_round_trips::<MintTokenRequest>(body);
    body_round_trips::<RenewTokenRequest>(body);
    body_round_trips::<RevokeTokenRequest>(body);
    body_round_trips::<ConsoleRequest>(body);
}

/// A body the daemon accepts means the same after the client serialises it again.
fn body_round_trips<T: DeserializeOwned + Serialize + PartialEq>(body: &[u8]) {
    let Ok(v) = serde_json::from_slice::<T>(body) else {
        return;
    };
    let again: T = serde_json::to_vec(&v)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| panic!("{} does not round-trip", std::any::type_name::<T>()));
    assert!(
        again == v,
        "{} changed in a round trip",
        std::any::type_name::<T>()
    );
}
