//! The socket API's request parsing: `Request::parse` (the router's one parser, shared with the
//! typed CLI client) on the request target as hyper parses it, and the JSON body of every
//! request type. Routing itself needs a running daemon (the black-box tests cover it);
//! everything it decides on comes from these.
//!
//! Input: the method (first byte picks GET/POST/DELETE/other), the request target, a NUL,
//! then the body.

use rolecall_proto::api::{
    ConsoleRequest, LoginRequest, LogoutRequest, MintTokenRequest, RenewTokenRequest,
    RevokeTokenRequest,
};
use rolecall_proto::request::Request;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub fn run(data: &[u8]) {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let method = ["GET", "POST", "DELETE", "PUT"][usize::from(m % 4)];
    let (target, body) = crate::two_parts(rest);
    if let Ok(uri) = http::Uri::try_from(target) {
        let target = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string());
        if let Ok(request) = Request::parse(method, &target) {
            // What the router accepted, the client writes back to the same request: names
            // never smuggle a separator, a flag or a wait past the encoding.
            assert_eq!(request.method().as_str(), method, "{target:?}");
            let again = Request::parse(method, &request.path())
                .unwrap_or_else(|e| panic!("{target:?} → {:?} is refused: {e}", request.path()));
            assert_eq!(again, request, "{target:?} does not round-trip");
            if let Request::Credentials { wait: Some(w), .. }
            | Request::LoginState { wait: Some(w), .. } = &request
            {
                assert!(*w <= 600, "a wait beyond the cap: {w}");
            }
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
