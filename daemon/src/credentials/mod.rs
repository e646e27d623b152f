//! Role credentials, the neutral type between the login sources (which produce them) and the
//! servers (which hand them out), and the shapes clients read them in ([`render`]):
//! `credential_process` JSON, the container endpoint's reply (and its EKS Pod Identity
//! variant), and the IMDS reply. Sources and servers both depend on this module, never on
//! each other.

pub mod render;

use std::fmt;
use zeroize::Zeroizing;

/// Short-lived AWS role credentials.
#[derive(Clone)]
pub struct RoleCredentials {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Zeroizing<String>,
    /// Epoch seconds.
    pub expiration: i64,
    pub account_id: String,
    pub role_arn: String,
}

impl fmt::Debug for RoleCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &"** redacted **")
            .field("expiration", &self.expiration)
            .field("account_id", &self.account_id)
            .field("role_arn", &self.role_arn)
            .finish()
    }
}
