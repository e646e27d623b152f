//! (being written)
use crate::http::{self, HandlerResult, Req};
use crate::Sandbox;
use std::sync::Arc;

pub async fn handle(_sb: &Arc<Sandbox>, _req: &Req) -> HandlerResult {
    Ok(http::text(
        ::http::StatusCode::NOT_IMPLEMENTED,
        "not implemented yet\n",
    ))
}
