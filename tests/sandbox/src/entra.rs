//! PLACEHOLDER written by sbxa so the router compiles; part B (sbxb) replaces this file.
//! Contract: `pub async fn handle(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult` (see `crate::http`).

use crate::http::{self, HandlerResult, Req};
use crate::Sandbox;
use std::sync::Arc;

pub async fn handle(_sb: &Arc<Sandbox>, _req: &Req) -> HandlerResult {
    Ok(http::text(
        ::http::StatusCode::NOT_IMPLEMENTED,
        "entra: not implemented yet\n",
    ))
}
