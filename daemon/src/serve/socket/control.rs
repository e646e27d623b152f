//! What the socket API reads and asks of the daemon beyond the broker: its status, a reload, a
//! sign-out that also revokes container tokens, the stop signal and the audit log. The wiring
//! (`crate::app`) implements it; the servers never see how the daemon is put together.

use super::SocketPeer;
use crate::broker::Broker;
use crate::credentials::RoleCredentials;
use crate::endpoints::EnvSnapshot;
use crate::opener::Browser;
use crate::serve::container::ContainerState;
use crate::shutdown::Shutdown;
use rolecall_proto::api::{ErrorBody, Status};
use std::sync::Arc;

#[async_trait::async_trait]
pub trait Control: Send + Sync + 'static {
    fn broker(&self) -> &Arc<Broker>;
    /// The daemon's environment at start (endpoint overrides for whoami and the console).
    fn env(&self) -> &Arc<EnvSnapshot>;
    /// Opens URLs for the user (`rolecall console --open`).
    fn browser(&self) -> &Arc<dyn Browser>;
    fn shutdown(&self) -> &Shutdown;
    /// The container endpoint's state, when it is running.
    fn container(&self) -> Option<Arc<ContainerState>>;
    /// Reads the config file again; on error the config in use stays.
    fn reload(&self) -> Result<(), crate::config::ConfigError>;
    /// Signs out of one source (or all) and revokes what was handed out under it.
    async fn logout(&self, source: Option<&str>) -> Result<(), ErrorBody>;
    async fn status(&self) -> Status;
    /// Records credentials handed out over the socket.
    fn audit_socket(
        &self,
        profile: &str,
        via: Option<&str>,
        peer: Option<SocketPeer>,
        creds: &RoleCredentials,
    );
}
